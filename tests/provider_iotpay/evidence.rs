//! Issue 16 for IOT Pay: what IOT Pay has shown is never forgotten. A create_order answer that
//! carries the order is evidence: a query_order that then says "no such order", past every
//! window and across a kill -9, leaves the sale unknown (reason `contradiction`), and the order
//! found later settles it. A refusal is never read by its words ("Transaction refused" holds
//! "used"): it is followed by one query_order. create_order SUCCESS with status 0 or 1 is the
//! document's "error occurs" (002 lines 121-124), never a charge on its own; a query_order
//! answer with the order at the top level is read. And the document's field lengths in the
//! config.

use super::*;

/// Asks get_result at least 3 times and until `for_how_long` has passed: every answer must be
/// unknown with reason `contradiction` (asserting that nothing settles it; no bound on how fast
/// anything happens: a slow machine asks fewer times in the span, never fewer than 3).
fn stays_contradicted(t: &Rig, id: &str, for_how_long: Duration) {
    let until = Instant::now() + for_how_long;
    let mut asked = 0;
    while asked < 3 || Instant::now() < until {
        let a =
            t.d.request(json!({"action": "get_result", "request_id": id}));
        assert_error(&a, "unknown_result_error", "contradiction");
        asked += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn an_acknowledged_sale_that_query_order_cannot_find_stays_unknown_across_a_kill() {
    // create_order answers SUCCESS with payOrder status 1 (the order exists: evidence); then
    // query_order is blind for as long as this replica runs.
    let mut t = rig_with(KEY, &[("query_blind", "1000000")], "timeout_ms = 1000");
    let first = t.pay("blind-1", 1061);
    assert_error(&first, "unknown_result_error", "contradiction");
    assert!(
        first["message"].as_str().unwrap().contains("create_order"),
        "{first}"
    );
    // Well past not_found_final_ms (500 ms) after the create_order wait: still unknown.
    stays_contradicted(&t, "blind-1", Duration::from_secs(3));
    t.d.kill9();
    t.d.restart();
    // After a restart the no-evidence window is timeout_ms + 10 s + not_found_final_ms
    // (11.5 s); the journaled evidence holds past it.
    stays_contradicted(&t, "blind-1", Duration::from_secs(13));
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() >= 5);
    // IOT Pay's status path sees the order again: it was paid.
    let (state, addr) = (t.r.state.clone(), t.r.addr().to_owned());
    t.r.kill();
    t.r = Replica::start_at(&state, &addr, "iotpay", KEY, &with_mch(&[]));
    let last = t.settled("blind-1", Duration::from_secs(60));
    assert_approved(&last);
    assert_eq!(last["data"]["amount"], 1061, "{last}");
    assert_eq!(t.charges("blind-1"), 1);
    assert_eq!(
        t.r.requests().get("/v1/create_order"),
        None,
        "never sent again"
    );
    t.assert_no_secret();
}

#[test]
fn transaction_refused_is_one_query_order_then_final_with_iotpays_words() {
    let t = rig(&[]);
    let a = t.pay("refused-1", 1053);
    assert_error(&a, "default_error", "declined");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("Transaction refused"), "{a}");
    assert!(msg.contains("Nothing was charged"), "{a}");
    assert_eq!(t.r.requests()["/v1/create_order"], 1);
    assert_eq!(
        t.r.requests()["/v1/query_order"],
        1,
        "exactly one query_order"
    );
    assert!(t.order("refused-1").is_null());
    // A refusal after which the order does exist (a proxy resent the POST: "already exists")
    // is followed, never final on its words: see not_final.rs.
    t.assert_no_secret();
}

#[test]
fn create_order_success_with_status_0_or_1_is_never_a_charge_on_its_own() {
    let t = rig(&[]);
    // Status 0, the terminal then declines: declined, though create_order said SUCCESS twice.
    let declined = t.pay("early-0", 1062);
    let declined = t.final_of("early-0", declined, Duration::from_secs(20));
    assert_error(&declined, "default_error", "declined");
    assert!(
        declined["message"]
            .as_str()
            .unwrap()
            .contains("Transaction Not Completed 05"),
        "{declined}"
    );
    // Status 1, the terminal then pays: approved only by what query_order shows.
    let queries = t.r.requests()["/v1/query_order"].as_u64().unwrap_or(0);
    let paid = t.pay("early-1", 1061);
    let paid = t.final_of("early-1", paid, Duration::from_secs(20));
    assert_approved(&paid);
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() > queries);
    assert_eq!(t.charges("early-0") + t.charges("early-1"), 2);
    assert!(
        t.d.log().contains("error occurs"),
        "the log quotes the document's rule"
    );
    t.assert_no_secret();
}

#[test]
fn a_query_order_answer_with_the_order_at_the_top_level_settles_the_sale() {
    let t = rig(&[("query_flat", "1000")]);
    // The create_order answer is lost: only query_order (answering flat) can tell.
    t.r.arm(json!({"path": "/v1/create_order", "kind": "drop", "after": true}));
    let a = t.pay("flat-1", 1000);
    let last = if a["code"] == 0 {
        a
    } else {
        t.settled("flat-1", Duration::from_secs(20))
    };
    assert_approved(&last);
    assert_eq!(
        last["data"]["receipt"]["authNum"].as_str().map(str::len),
        Some(6),
        "{last}"
    );
    assert_eq!(last["data"]["charged_amount"], 1000, "{last}");
    assert_eq!(t.charges("flat-1"), 1);
    // The flat shape with a decline is read too.
    t.r.arm(json!({"path": "/v1/create_order", "kind": "drop", "after": true}));
    let b = t.pay("flat-2", 1051);
    let last = t.final_of("flat-2", b, Duration::from_secs(20));
    assert_error(&last, "default_error", "declined");
    t.assert_no_secret();
}

/// Runs `posbridge daemon` on `config` and returns its exit code and stderr once it exits
/// (it must: a refused config stops it before it listens).
fn daemon_refuses(dir: &std::path::Path, config: &std::path::Path) -> (Option<i32>, String) {
    let log = dir.join("start.log");
    let mut child = std::process::Command::new(common::BIN)
        .arg("daemon")
        .arg("--socket")
        .arg(dir.join("api.sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("POSBRIDGE_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = common::exit_within(
        &mut child,
        Duration::from_secs(60),
        &log,
        "on a refused config",
    );
    (status.code(), std::fs::read_to_string(&log).unwrap())
}

#[test]
fn the_documents_field_lengths_are_refused_at_config_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posbridge.toml");
    let base = config("http://127.0.0.1:9", dir.path(), KEY, "", "");
    // The document's table: mchId String(30), channelId String(24), jobNo String(50), and
    // jobNo ("merchant login name") is required.
    let cases = [
        (
            "mch_id",
            "mch_id = \"10000701\"",
            format!("mch_id = \"{}\"", "1".repeat(31)),
            "30",
        ),
        (
            "channel_id",
            "",
            format!("channel_id = \"{}\"", "C".repeat(25)),
            "24",
        ),
        (
            "job_no",
            "job_no = \"cashier1\"",
            format!("job_no = \"{}\"", "j".repeat(51)),
            "50",
        ),
        (
            "job_no",
            "job_no = \"cashier1\"",
            "job_no = \"\"".to_owned(),
            "required",
        ),
        (
            "mch_id",
            "mch_id = \"10000701\"",
            "mch_id = \"\"".to_owned(),
            "required",
        ),
    ];
    for (key, old, new, said) in &cases {
        let text = if old.is_empty() {
            format!("{base}{new}\n")
        } else {
            base.replace(old, new)
        };
        assert_ne!(text, base);
        std::fs::write(&path, &text).unwrap();
        let out = common::config_check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{key}: {stderr}");
        let named = format!("providers.iotpay.{key}");
        assert!(
            stderr.contains(&named) && stderr.contains(said),
            "{key}: {stderr}"
        );
        let (code, log) = daemon_refuses(dir.path(), &path);
        assert_ne!(code, Some(0), "{key}: {log}");
        assert!(log.contains(&named), "{key}: {log}");
    }
    // At the limits: accepted.
    let text = base
        .replace(
            "mch_id = \"10000701\"",
            &format!("mch_id = \"{}\"", "1".repeat(30)),
        )
        .replace(
            "job_no = \"cashier1\"",
            &format!("job_no = \"{}\"", "j".repeat(50)),
        );
    std::fs::write(&path, format!("{text}channel_id = \"CC_PAX\"\n")).unwrap();
    let out = common::config_check(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
