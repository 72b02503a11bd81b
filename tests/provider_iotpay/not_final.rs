//! Answers that must never end a sale: "this order number exists already", an answer of a
//! shape the client does not know, a failed query_order, "no such order" too early, an answer
//! that does not verify (and `posbridge doctor` saying so); and the removed `refund_recheck`.

use super::*;

#[test]
fn a_duplicate_answer_is_followed_by_query_order_by_our_own_id() {
    // A proxy resent the POST: the order was created and charged, the answer is "exists".
    let t = rig(&[("resend_create", "1")]);
    let a = t.pay("dup-1", 1000);
    assert_approved(&a);
    assert_eq!(t.charges("dup-1"), 1);
    assert_eq!(t.order("dup-1")["status"], 2);
    assert!(t.d.log().contains("already exists"), "logged");
    t.assert_no_secret();
}

#[test]
fn a_create_answer_of_an_unknown_shape_is_never_a_decline() {
    // Both codes SUCCESS but no payOrder: the sale was charged.
    let t = rig(&[("create_shapeless", "1")]);
    let a = t.pay("shapeless-1", 1000);
    assert_approved(&a);
    assert_eq!(t.charges("shapeless-1"), 1);
    t.assert_no_secret();
}

#[test]
fn a_failed_query_order_is_never_a_decline() {
    let t = rig(&[("query_busy", "4")]);
    t.r.arm(json!({"path": "/v1/create_order", "kind": "drop", "after": true}));
    let a = t.pay("busy-1", 1000);
    // Unknown for as long as query_order fails, then the real outcome.
    let last = if a["code"] == 0 {
        a
    } else {
        assert_error(&a, "unknown_result_error", "timeout");
        t.settled("busy-1", Duration::from_secs(10))
    };
    assert_approved(&last);
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() >= 5);
    assert_eq!(t.charges("busy-1"), 1);
    t.assert_no_secret();
}

#[test]
fn no_such_order_is_final_only_a_window_after_the_create_order_wait() {
    // The create_order never reaches IOT Pay; our wait lasts timeout_ms (1500 ms); "no such
    // order" may end the sale only not_found_final_ms (1000 ms) after that wait ended.
    let t = rig_with(KEY, &[], "timeout_ms = 1500\nnot_found_final_ms = 1000");
    t.r.arm(json!({"path": "/v1/create_order", "kind": "timeout", "after": false}));
    let started = Instant::now();
    let a = t.pay("nf-1", 1000);
    let last = t.final_of("nf-1", a, Duration::from_secs(10));
    let elapsed = started.elapsed();
    assert_error(&last, "default_error", "not_processed");
    eprintln!("not_processed after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(2500),
        "final {elapsed:?} after the sale began, before the create wait (1.5 s) + 1 s had passed"
    );
    assert!(t.order("nf-1").is_null());
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() >= 3);
    t.assert_no_secret();
}

fn doctor(d: &Daemon) -> Value {
    let out = std::process::Command::new(common::BIN)
        .args(["doctor", "--json", "--timeout", "3", "--socket"])
        .arg(&d.socket)
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--config")
        .arg(d.config.as_ref().unwrap())
        .env_remove("POSBRIDGE_SOCKET")
        .env_remove("POSBRIDGE_CONFIG")
        .env_remove("POSBRIDGE_STATE_DIR")
        .output()
        .unwrap();
    common::json_of(&out)
}

#[test]
fn doctor_says_whether_iotpays_answers_verify() {
    let t = rig(&[]);
    let report = doctor(&t.d);
    let check = common::doctor_check(&report, "backend.iotpay.sign");
    assert_eq!(check["status"], "ok", "{report:#}");
    // The probe asks about an order that cannot exist and moves no money.
    assert_eq!(t.r.requests().get("/v1/create_order"), None);
    assert_eq!(t.r.requests()["/v1/query_order"], 1);
}

#[test]
fn a_wrong_key_never_settles_a_sale_and_doctor_names_the_key() {
    let t = rig_with("wrong-key-1234", &[], "");
    let a = t.pay("wrong-key", 1000);
    // IOT Pay's refusal is signed with the real key: it cannot be verified, so it is not taken
    // as "nothing charged" either; the sale stays unknown and says what to check.
    assert_error(&a, "unknown_result_error", "bad_signature");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("providers.iotpay.key"),
        "{a}"
    );
    assert!(t.order("wrong-key").is_null());
    let report = doctor(&t.d);
    let check = common::doctor_check(&report, "backend.iotpay.sign");
    assert_eq!(check["status"], "fail", "{report:#}");
    let said = format!("{} {}", check["detail"], check["fix"]);
    assert!(
        said.contains("providers.iotpay.key") && said.contains("providers.iotpay.mch_id"),
        "{check}"
    );
    assert!(!report.to_string().contains("wrong-key-1234"));
    t.assert_no_secret();
}

#[test]
fn an_unknown_mch_id_is_refused_and_doctor_names_it() {
    let t = rig(&[("mch_id", "10000999")]);
    let a = t.pay("wrong-mch", 1000);
    // A signed, verified refusal before the bank: nothing charged, and it says what to fix.
    assert_error(&a, "default_error", "unauthorized");
    assert!(a["message"].as_str().unwrap().contains("mch_id"), "{a}");
    assert_eq!(t.order("wrong-mch"), Value::Null);
    let report = doctor(&t.d);
    let check = common::doctor_check(&report, "backend.iotpay.sign");
    assert_eq!(check["status"], "fail", "{report:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("providers.iotpay.mch_id"),
        "{check}"
    );
}

#[test]
fn refund_recheck_reissue_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        "http://127.0.0.1:9",
        dir.path(),
        KEY,
        "",
        "refund_recheck = \"reissue\"",
    );
    let path = dir.path().join("posbridge.toml");
    std::fs::write(&path, text).unwrap();
    let out = common::config_check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("providers.iotpay.refund_recheck") && stderr.contains("twice"),
        "{stderr}"
    );
    // "manual", what posbridge always does now, is still accepted.
    let text = config(
        "http://127.0.0.1:9",
        dir.path(),
        KEY,
        "",
        "refund_recheck = \"manual\"",
    );
    std::fs::write(&path, text).unwrap();
    let out = common::config_check(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
