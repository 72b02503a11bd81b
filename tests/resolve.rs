//! `posbridge resolve` (issue 9 §7): an operator settles an outcome no machine can find out.
//! Driven through the real CLI and socket, against the PhonePe replica made to fail every call
//! (the outcome stays unknown for good, as with a backend that forgot the transaction).

mod common;

use std::time::Duration;

use common::replica::Replica;
use common::{json_of, Daemon};
use serde_json::json;

const SALT: &str = "resolve-salt-test";

struct Rig {
    _dir: tempfile::TempDir,
    replica: Replica,
    d: Daemon,
}

fn rig(extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(dir.path(), "phonepe", SALT, &[]);
    let salt = dir.path().join("salt_key");
    std::fs::write(&salt, SALT).unwrap();
    let config = format!(
        "default_provider = \"phonepe\"\n{extra}\n[providers.phonepe]\nbase_url = {:?}\n\
         merchant_id = \"MERCH1\"\nstore_id = \"STORE1\"\nterminal_id = \"TERM1\"\n\
         salt_key_file = {:?}\nsalt_index = 1\ntimeout_ms = 3000\nrequest_timeout_ms = 500\n\
         status_poll_ms = [100]\n",
        replica.url,
        salt.display().to_string()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    Rig {
        _dir: dir,
        replica,
        d,
    }
}

/// A pay whose outcome stays unknown: the backend answers every call with HTTP 500.
fn unknown_pay(r: &Rig, id: &str) {
    r.replica
        .arm(json!({"path": "/", "kind": "error", "after": false, "count": 100000}));
    let v =
        r.d.request(json!({"action": "pay", "request_id": id, "amount": 4500}));
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    // Reconciliation keeps asking and never settles it.
    std::thread::sleep(Duration::from_millis(500));
    let v =
        r.d.request(json!({"action": "get_result", "request_id": id}));
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
}

#[test]
fn an_operator_settles_an_unknown_sale_as_charged_and_get_result_answers_it_from_then_on() {
    let r = rig("");
    unknown_pay(&r, "till3-0042");
    let out = r.d.cli(&[
        "resolve",
        "till3-0042",
        "--charged",
        "--note",
        "portal shows SUCCESS",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_of(&out);
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(v["data"]["amount"], 4500, "{v}");
    let resolution = &v["data"]["resolution"];
    assert_eq!(resolution["decision"], "charged", "{v}");
    assert_eq!(resolution["note"], "portal shows SUCCESS", "{v}");
    assert!(
        resolution["by"].as_str().unwrap().starts_with("uid "),
        "who: {v}"
    );
    assert!(resolution["at"].as_str().is_some(), "when: {v}");
    // The id the pay was sent under, for a later refund (`primary_transaction.backend_id`).
    let backend_id = v["data"]["backend_id"].as_str().expect("backend_id");
    assert!(backend_id.len() == 29 && backend_id.starts_with('P'), "{v}");
    // The order of `data` is part of the answer: the operator's record, then the id.
    assert_eq!(
        common::keys_of(&v["data"]),
        common::approved_keys("currency resolution backend_id"),
        "{v}"
    );

    let again =
        r.d.request(json!({"action": "get_result", "request_id": "till3-0042"}));
    assert_eq!(again, v, "get_result answers the operator's decision");
    // Stored for good: after a restart too, and a second decision is refused.
    let mut d = r.d;
    d.terminate();
    d.restart();
    let after = d.request(json!({"action": "get_result", "request_id": "till3-0042"}));
    assert_eq!(after, v);
    let out = d.cli(&[
        "resolve",
        "till3-0042",
        "--not-charged",
        "--note",
        "second thoughts",
        "--json",
    ]);
    assert_eq!(json_of(&out)["reason"], "already_final", "{out:?}");
    assert!(
        d.log().contains("settled by an operator"),
        "the log says so"
    );
}

#[test]
fn an_operator_settles_an_unknown_sale_as_not_charged() {
    let r = rig("");
    unknown_pay(&r, "t-2");
    let out = r.d.cli(&[
        "resolve",
        "t-2",
        "--not-charged",
        "--note",
        "reader replaced, customer paid cash",
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(v["reason"], "resolved_not_charged", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("customer paid cash"),
        "{v}"
    );
    let again =
        r.d.request(json!({"action": "get_result", "request_id": "t-2"}));
    assert_eq!(again, v);
}

#[test]
fn resolve_is_refused_for_a_final_or_unknown_id_and_for_bad_input() {
    let r = rig("");
    let missing = r.d.request(
        json!({"action": "resolve", "request_id": "nope", "decision": "charged", "note": "x"}),
    );
    assert_eq!(missing["error_type"], "result_not_found_error", "{missing}");
    let bad = r.d.request(
        json!({"action": "resolve", "request_id": "nope", "decision": "maybe", "note": "x"}),
    );
    assert_eq!(bad["reason"], "invalid_request", "{bad}");
    assert!(
        bad["message"].as_str().unwrap().starts_with("decision:"),
        "{bad}"
    );
    let no_note =
        r.d.request(json!({"action": "resolve", "request_id": "nope", "decision": "charged"}));
    assert!(
        no_note["message"].as_str().unwrap().starts_with("note:"),
        "{no_note}"
    );
    // The CLI needs one decision.
    let out = r.d.cli(&["resolve", "x", "--note", "y"]);
    assert_ne!(out.status.code(), Some(0));
}

/// Issue 16: an outcome still unknown past `daemon.manual_check_after_ms` is named for a
/// person in `status`, `results`, the metrics and `doctor`, and a resolve clears it.
#[test]
fn an_outcome_unknown_past_the_bound_is_named_for_a_person_everywhere_until_resolved() {
    let r = rig("[daemon]\nmanual_check_after_ms = 0\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    unknown_pay(&r, "mc-1");
    let v = r.d.await_result("mc-1", Duration::from_secs(20), |v| {
        v["reason"] == "manual_check"
    });
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("posbridge resolve mc-1"),
        "{v}"
    );
    let status = r.d.request(json!({"action": "status"}));
    assert_eq!(status["data"]["manual_check"], json!(["mc-1"]), "{status}");
    let shown = String::from_utf8_lossy(&r.d.cli(&["status"]).stdout).into_owned();
    assert!(shown.contains("MANUAL CHECK mc-1"), "{shown}");
    assert_eq!(status["data"]["journal"]["manual_check"], 1, "{status}");
    let results = r.d.request(json!({"action": "results", "limit": 5}));
    assert_eq!(
        results["data"]["results"][0]["response"]["reason"], "manual_check",
        "{results}"
    );
    let addr = common::scrape::metrics_addr(&r.d);
    let page = common::scrape::scrape(addr);
    assert_eq!(page.value("posbridge_operations_manual_check", &[]), 1.0);
    let out = r.d.cli(&["doctor", "--json", "--timeout", "3"]);
    let report = json_of(&out);
    let check = common::doctor_check(&report, "journal.manual_check");
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("mc-1"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("posbridge resolve"),
        "{check}"
    );

    let out =
        r.d.cli(&["resolve", "mc-1", "--not-charged", "--note", "portal: none"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let status = r.d.request(json!({"action": "status"}));
    assert_eq!(status["data"]["manual_check"], json!([]), "{status}");
    let page = common::scrape::scrape(addr);
    assert_eq!(page.value("posbridge_operations_manual_check", &[]), 0.0);
}
