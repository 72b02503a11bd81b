//! PhonePe cancels and refunds end to end: a cancel before the customer pays, a cancel of a
//! paid sale (needs a refund), refunds followed until final and never re-sent while pending.

use std::time::Duration;

use serde_json::json;

use super::{in_background, wait_for, Setup};

#[test]
fn cancel_before_the_customer_pays_cancels_the_sale() {
    let s = Setup::new(&[("pay_after_ms", "20000")], &[]);
    let pay = in_background(
        &s.d,
        json!({"action": "pay", "request_id": "sale-c", "amount": 500}),
    );
    wait_for("the init", Duration::from_secs(10), || {
        s.txn("sale-c").is_object()
    });
    let c = s.d.request(
        json!({"action": "cancel", "request_id": "cancel-c", "amount": 500,
        "primary_transaction": {"request_id": "sale-c", "provider": "phonepe", "amount": 500}}),
    );
    assert_eq!(c["code"], 0, "{c}");
    assert_eq!(c["data"]["status"], "cancelled");
    let p = pay.join().unwrap().expect("the pay's answer");
    assert_eq!(p["error_type"], "default_error", "{p}");
    assert_eq!(p["reason"], "cancelled");
    assert_eq!(s.txn("sale-c")["code"], "PAYMENT_CANCELLED");
    // The cancel named the pay's own id, found from its request_id in the journal.
    assert_eq!(s.replica.state()["cancels"][&s.txn_ids("sale-c")[0]], 1);
    s.no_secret_in_log();
}

#[test]
fn cancel_after_payment_says_already_completed_and_asks_for_a_refund() {
    let s = Setup::new(&[], &[]);
    let a = s.pay("sale-p", 700, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let c = s.d.request(
        json!({"action": "cancel", "request_id": "cancel-p", "amount": 700,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(c["error_type"], "default_error", "{c}");
    assert_eq!(c["reason"], "already_completed");
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    assert_eq!(s.txn("sale-p")["status"], "SUCCESS");
    s.no_secret_in_log();
}

#[test]
fn refunds_are_followed_to_the_end_sent_once_and_bounded_by_what_is_left() {
    let s = Setup::new(&[("refund_after_ms", "600")], &[]);
    let a = s.pay("sale-r", 1000, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let r = s.d.request(
        json!({"action": "refund", "request_id": "refund-1", "amount": 400,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(r["code"], 0, "{r}");
    assert_eq!(r["data"]["status"], "refunded");
    assert_eq!(r["data"]["amount"], 400);
    let txn = s.txn("refund-1");
    assert_eq!(txn["status"], "SUCCESS");
    assert_eq!(
        txn["payload"]["originalTransactionId"],
        a["data"]["backend_id"]
    );
    assert_eq!(
        s.calls("refund-1"),
        1,
        "backToSource is never repeated while pending"
    );
    let over = s.d.request(
        json!({"action": "refund", "request_id": "refund-2", "amount": 700,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(over["reason"], "invalid_request", "{over}");
    assert!(
        over["message"]
            .as_str()
            .unwrap()
            .contains("EXCESS_REFUND_AMOUNT"),
        "{over}"
    );
    s.no_secret_in_log();
}

#[test]
fn a_second_refund_while_one_is_pending_is_refused_and_the_first_completes() {
    let s = Setup::new(&[("refund_after_ms", "2500")], &[]);
    let a = s.pay("sale-q", 1000, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let first = in_background(
        &s.d,
        json!({"action": "refund", "request_id": "refund-a",
        "amount": 100, "primary_transaction": a["data"]}),
    );
    wait_for("the first refund", Duration::from_secs(5), || {
        s.txn("refund-a").is_object()
    });
    let second = s.d.request(
        json!({"action": "refund", "request_id": "refund-b", "amount": 100,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(second["reason"], "invalid_request", "{second}");
    let first = first.join().unwrap().expect("the first refund's answer");
    assert_eq!(first["data"]["status"], "refunded", "{first}");
    assert_eq!(s.calls("refund-a"), 1);
    s.no_secret_in_log();
}

#[test]
fn a_refund_or_cancel_of_a_pay_the_journal_no_longer_holds_needs_its_backend_id() {
    let s = Setup::new(&[], &[]);
    let a = s.pay("sale-k", 900, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    // The POS hands back the pay by request_id only, for a pay this journal never held (or
    // evicted): no PhonePe id may be derived from the request_id for a money-moving call.
    let inits = s.inits();
    for action in ["refund", "cancel"] {
        let r = s.d.request(
            json!({"action": action, "request_id": format!("{action}-k"),
            "amount": 900,
            "primary_transaction": {"request_id": "sale-elsewhere", "provider": "phonepe",
                "amount": 900}}),
        );
        assert_eq!(r["error_type"], "default_error", "{r}");
        assert_eq!(r["reason"], "invalid_request", "{r}");
        let msg = r["message"].as_str().unwrap();
        assert!(msg.contains("primary_transaction.backend_id"), "{r}");
        assert!(msg.contains("nothing was sent"), "{r}");
    }
    let state = s.replica.state();
    assert!(
        state["cancels"].as_object().is_none_or(|c| c.is_empty()),
        "no cancel was sent: {state}"
    );
    assert_eq!(s.inits(), inits);
    assert!(s.txn("refund-k").is_null(), "no backToSource was sent");
    // With the backend id the pay's answer carried, the same refund goes through.
    let r = s.d.request(
        json!({"action": "refund", "request_id": "refund-k2", "amount": 900,
        "primary_transaction": {"request_id": "sale-elsewhere", "provider": "phonepe",
            "amount": 900, "backend_id": a["data"]["backend_id"]}}),
    );
    assert_eq!(r["code"], 0, "{r}");
    s.no_secret_in_log();
}
