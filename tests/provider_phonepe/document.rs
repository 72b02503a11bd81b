//! PhonePe as its init document (seeds/001_206d3d9ac737255e.txt) has it, end to end through the
//! daemon and the replica written from that document: a SUCCESS is a charge whatever
//! `data.amount` says, LONG fields go out as numbers, ids and orderId use the document's
//! characters, only INR is sent, every documented refusal ends with nothing charged, "not
//! found" waits for the sale request's window, and DUPLICATE_TRANSACTION_ID is never an answer.

use std::time::Duration;

use serde_json::json;

use super::{wait_for, Setup, INIT};

#[test]
fn a_success_with_amount_zero_in_status_is_a_charge_and_the_amount_is_recorded() {
    // The replica answers status with `amount: 0`, as PhonePe's public samples do.
    let s = Setup::new(&[], &[]);
    let a = s.pay("zero1", 1500, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(a["data"]["amount"], 1500);
    assert_eq!(
        a["data"]["phonepe_amount"], 0,
        "the status said 0: recorded"
    );
    assert_eq!(s.txn("zero1")["status"], "SUCCESS");
    assert!(s.d.log().contains("amount 0"), "the difference is logged");
    // A status that reports the real amount records nothing extra.
    let r = Setup::new(&[("status_amount", "real")], &[]);
    let a = r.pay("real1", 1500, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert!(a["data"].get("phonepe_amount").is_none(), "{a}");
    s.no_secret_in_log();
}

#[test]
fn long_fields_go_out_as_json_numbers() {
    let s = Setup::new(&[], &[]);
    assert_eq!(s.pay("longe", 300, json!({}))["code"], 0);
    let p = &s.txn("longe")["payload"];
    assert_eq!(p["timeAllowedForHandoverToTerminalSeconds"], json!(60));
    assert_eq!(p["amount"], json!(300));
    let q = Setup::new(&[], &[("solution_type", "\"DQR_DEVICE\"")]);
    assert_eq!(q.pay("longq", 300, json!({}))["code"], 0);
    assert_eq!(q.txn("longq")["payload"]["expiresIn"], json!(60));
    s.no_secret_in_log();
}

#[test]
fn pos_order_ids_with_other_characters_are_mapped_not_refused() {
    let s = Setup::new(&[], &[]);
    let a = s.pay("till3-0042.a", 400, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let p = &s.txn("till3-0042.a")["payload"];
    assert_eq!(p["orderId"], "till3_0042_a");
    let id = p["merchantTransactionId"].as_str().unwrap();
    assert_eq!(a["data"]["backend_id"], id);
    assert!(id.len() < 40 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let b = s.pay("till3-0043", 400, json!({"order_id": "INV 2024/07-1"}));
    assert_eq!(b["code"], 0, "{b}");
    let state = s.replica.state();
    let orders: Vec<&str> = state["transactions"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["payload"]["orderId"].as_str().unwrap())
        .collect();
    assert!(orders.contains(&"INV_2024_07_1"), "{orders:?}");
    s.no_secret_in_log();
}

#[test]
fn a_currency_other_than_inr_is_refused_before_anything_is_sent() {
    let s = Setup::new(&[], &[]);
    let a = s
        .d
        .request(json!({"action": "pay", "request_id": "usd1", "amount": 500, "currency": "USD"}));
    assert_eq!(a["error_type"], "default_error", "{a}");
    assert_eq!(a["reason"], "invalid_request");
    assert!(a["message"].as_str().unwrap().contains("currency"), "{a}");
    assert_eq!(s.inits(), 0, "nothing was sent");
    let stored =
        s.d.request(json!({"action": "get_result", "request_id": "usd1"}));
    assert_eq!(stored, a, "journaled as refused, not charged");
    s.no_secret_in_log();
}

#[test]
fn documented_refusals_end_final_with_nothing_charged() {
    for (code, reason) in [
        ("SHORT_CODE_IS_REQUIRED", "invalid_request"),
        ("SHORT_CODE_NOT_REQUIRED", "invalid_request"),
        ("INVALID_TERMINAL_HANDOVER_TIME", "invalid_request"),
        ("INVALID_STORE_ID", "invalid_request"),
    ] {
        let s = Setup::new(&[("init_refusal", code)], &[]);
        let a = s.pay("ref1", 500, json!({}));
        assert_eq!(a["error_type"], "default_error", "{code}: {a}");
        assert_eq!(a["reason"], reason, "{code}: {a}");
        let msg = a["message"].as_str().unwrap();
        assert!(
            msg.contains(code) && msg.contains("Nothing was charged"),
            "{a}"
        );
        assert_eq!(s.inits(), 1, "{code}: sent once");
        assert!(s.txn("ref1").is_null());
        s.no_secret_in_log();
    }
    // The replica itself refuses a terminal that is not in integrated mode.
    let s = Setup::new(&[("not_integrated", "TERM1")], &[]);
    let a = s.pay("ref2", 500, json!({}));
    assert_eq!(a["reason"], "provider_unavailable", "{a}");
    assert!(a["message"]
        .as_str()
        .unwrap()
        .contains("INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL"));
}

#[test]
fn not_found_before_the_window_ends_is_unknown_and_the_checks_go_on() {
    // PhonePe never got the init; the default 60 s handover window has not passed, so a
    // stray init could still come alive: unknown, and the reconciler keeps asking.
    let s = Setup::new(&[], &[("timeout_ms", "3000")]);
    s.replica
        .arm(json!({"path": INIT, "kind": "timeout", "after": false}));
    let a = s.pay("nf1", 1000, json!({}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    let status_checks = || -> u64 {
        let seen = s.replica.requests();
        let all = seen.as_object().unwrap();
        all.iter()
            .filter(|(p, _)| p.ends_with("/status"))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    let asked = status_checks();
    wait_for("more status checks", Duration::from_secs(10), || {
        status_checks() >= asked + 5
    });
    let r =
        s.d.request(json!({"action": "get_result", "request_id": "nf1"}));
    assert_eq!(r["error_type"], "unknown_result_error", "{r}");
    assert!(s.txn("nf1").is_null());
    s.no_secret_in_log();
}

#[test]
fn a_duplicate_answer_is_settled_only_by_the_status_of_our_own_id() {
    // PhonePe said DUPLICATE but holds nothing under our id: never a final answer from it.
    let s = Setup::new(&[("duplicate", "before")], &[]);
    let a = s.pay("dupb", 1000, json!({"handover_seconds": 1}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    assert!(
        a["message"].as_str().unwrap().contains("already has"),
        "{a}"
    );
    assert_eq!(s.inits(), 1, "never sent again");
    s.no_secret_in_log();
    // PhonePe acted, then said DUPLICATE: the status of our id finds the sale.
    let s = Setup::new(&[("duplicate", "after")], &[]);
    let a = s.pay("dupa", 1000, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("dupa"), 1);
    s.no_secret_in_log();
}
