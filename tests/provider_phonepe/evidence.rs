//! Evidence is never forgotten (issue 16), PhonePe: once PhonePe has shown that a sale exists
//! (init SUCCESS, DUPLICATE_TRANSACTION_ID, a status answer that carries it), a later "not
//! found" never ends it as "nothing was charged", within the request or after a kill -9 and
//! restart: it stays unknown (`contradiction`, then `manual_check`) until PhonePe finds it.
//! The replica plays a status API blind to an id it acknowledged (`status_blind`).

use std::time::Duration;

use serde_json::{json, Value};

use super::common::replica::Replica;
use super::common::Daemon;
use super::{config, in_background, salt_file, wait_for, Setup, SALT};

/// The warning the engine logs when a backend contradicts its own evidence.
const CONTRADICTED: &str = "now has no record of it";

/// A 6 s operation bound (5.7 s of checks) and a 1 s handover window: "not found" becomes
/// believable 2 x 1 s + 1 s + 100 ms after the send, well inside the request.
const QUICK: &[(&str, &str)] = &[("timeout_ms", "6000")];

fn blind_switch(r: &Replica, blind: bool) {
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{}/_replica/status_blind", r.url))
                .json(&json!({ "blind": blind }))
                .send()
                .await
                .unwrap()
                .status()
        });
    assert_eq!(status, 204, "switching status_blind");
}

/// How often the current daemon process logged a contradiction.
fn contradictions(d: &Daemon) -> usize {
    std::fs::read_to_string(d.log_path())
        .unwrap_or_default()
        .matches(CONTRADICTED)
        .count()
}

fn is_unknown(a: &Value) -> bool {
    a["error_type"] == "unknown_result_error"
}

/// After a restart: waits until this daemon process has met PhonePe's "not found" past the
/// window (a contradiction logged), or the outcome turned final; returns get_result's answer.
fn after_a_contradiction(s: &Setup, id: &str) -> Value {
    s.d.await_result(id, Duration::from_secs(30), |a| {
        !is_unknown(a) || contradictions(&s.d) > 0
    })
}

fn assert_contradiction(a: &Value) {
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    assert_eq!(a["reason"], "contradiction", "{a}");
    assert!(
        !a["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing was charged"),
        "{a}"
    );
}

#[test]
fn a_paid_sale_phonepe_cannot_find_is_unknown_in_the_request_and_approved_once_found() {
    let s = Setup::new(&[("status_blind", "on"), ("pay_after_ms", "0")], QUICK);
    let a = s.pay("blind-1", 1000, json!({"handover_seconds": 1}));
    // PhonePe acknowledged it and the customer paid; its status API cannot find it.
    assert_eq!(s.txn("blind-1")["status"], "SUCCESS");
    assert_ne!(
        a["reason"], "not_processed",
        "told 'not charged' for a paid sale: {a}"
    );
    assert_contradiction(&a);
    assert!(a["message"].as_str().unwrap().contains("SUCCESS"), "{a}");
    blind_switch(&s.replica, false);
    let r = s.settled("blind-1", Duration::from_secs(30));
    assert_eq!(r["code"], 0, "{r}");
    assert_eq!(r["data"]["status"], "approved", "{r}");
    assert_eq!(s.calls("blind-1"), 1, "never sent again");
    s.no_secret_in_log();
}

#[test]
fn after_kill9_a_blind_status_stays_unknown_becomes_manual_check_and_settles_when_found() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(
        dir.path(),
        "phonepe",
        SALT,
        &[("status_blind", "on"), ("pay_after_ms", "0")],
    );
    let salt = salt_file(&dir, SALT);
    let cfg = format!(
        "{}[daemon]\nmanual_check_after_ms = 1500\n",
        config(&replica.url, &salt, QUICK)
    );
    let mut s = Setup {
        d: Daemon::start_with(Some(&cfg), &[]),
        replica,
        dir,
    };
    let pay = in_background(
        &s.d,
        json!({"action": "pay", "request_id": "blind-2", "amount": 1200,
            "params": {"handover_seconds": 1}}),
    );
    // The init was acknowledged and a status check has been made (the evidence is journaled
    // before the first one): kill -9 in the middle of the request.
    wait_for("a status check", Duration::from_secs(10), || {
        s.replica
            .requests()
            .as_object()
            .is_some_and(|m| m.keys().any(|p| p.ends_with("/status")))
    });
    s.d.kill9();
    assert!(pay.join().unwrap().is_none(), "the killed daemon answered");
    assert_eq!(s.txn("blind-2")["status"], "SUCCESS", "the customer paid");
    s.d.restart();
    let r = after_a_contradiction(&s, "blind-2");
    assert!(
        is_unknown(&r),
        "told final for a paid sale PhonePe cannot find: {r}"
    );
    // Older than manual_check_after_ms: a person is asked, in status.
    wait_for("manual_check in status", Duration::from_secs(30), || {
        let o = s.d.cli(&["status", "--json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["data"]["manual_check"] == json!(["blind-2"])
    });
    let r =
        s.d.request(json!({"action": "get_result", "request_id": "blind-2"}));
    assert_eq!(r["reason"], "manual_check", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("posbridge resolve"),
        "{r}"
    );
    // PhonePe finds it: the checks, still going on, settle it as charged.
    blind_switch(&s.replica, false);
    let r = s.settled("blind-2", Duration::from_secs(60));
    assert_eq!(r["code"], 0, "{r}");
    assert_eq!(r["data"]["status"], "approved", "{r}");
    let o = s.d.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["manual_check"], json!([]), "{v}");
    assert_eq!(s.calls("blind-2"), 1, "never sent again");
    s.no_secret_in_log();
    // The contradiction is warned about once a process (when it is found), and each check
    // that finds it again is logged at debug: the log stays within journald's rate limit
    // however often a POS asks.
    let log = s.d.log();
    let found: Vec<&str> = log.lines().filter(|l| l.contains(CONTRADICTED)).collect();
    let warned = found.iter().filter(|l| l.contains(" WARN ")).count();
    assert!(
        (1..=2).contains(&warned) && found.len() > warned,
        "{warned} warnings of {} contradictions:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn a_duplicate_then_not_found_stays_unknown_in_the_request_and_after_a_restart() {
    // PhonePe answers DUPLICATE_TRANSACTION_ID and holds nothing under our id.
    let mut s = Setup::new(&[("duplicate", "before")], QUICK);
    let a = s.pay("dup-nf", 1000, json!({"handover_seconds": 1}));
    assert_contradiction(&a);
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("DUPLICATE_TRANSACTION_ID"),
        "{a}"
    );
    assert_eq!(s.inits(), 1, "never sent again");
    // The reconciler of a new process keeps the evidence: the journal has it.
    s.d.kill9();
    s.d.restart();
    let r = after_a_contradiction(&s, "dup-nf");
    assert_contradiction(&r);
    assert_eq!(s.inits(), 1, "never sent again");
    s.no_secret_in_log();
}

#[test]
fn invalid_transaction_id_on_status_is_unclear_never_not_found() {
    // Document 001: INVALID_TRANSACTION_ID is "The format of Transaction ID is invalid", an
    // init refusal. On a status answer it does not say there is no such transaction.
    let s = Setup::new(&[("not_found_code", "INVALID_TRANSACTION_ID")], QUICK);
    s.replica
        .arm(json!({"path": super::INIT, "kind": "error", "after": false}));
    let a = s.pay("itid", 1000, json!({"handover_seconds": 1}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    assert_eq!(a["reason"], "timeout", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("INVALID_TRANSACTION_ID"),
        "{a}"
    );
    // The reconciler reads it the same way: still unknown after more checks.
    let checks = |s: &Setup| -> u64 {
        let seen = s.replica.requests();
        seen.as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with("/status"))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    let before = checks(&s);
    wait_for("more status checks", Duration::from_secs(20), || {
        checks(&s) >= before + 10
    });
    let r =
        s.d.request(json!({"action": "get_result", "request_id": "itid"}));
    assert_eq!(r["error_type"], "unknown_result_error", "{r}");
    assert!(s.txn("itid").is_null());
    s.no_secret_in_log();
}
