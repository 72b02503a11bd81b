//! PhonePe's progress events (`"progress": true`), through the replica: init accepted
//! (`sent`), then the sale's status PENDING (`waiting_for_customer`, told once however often
//! it is polled), all before the answer and none after it; get_result unchanged.

use serde_json::json;

use super::Setup;
use crate::common::stages;

#[test]
fn a_sale_tells_sent_then_waiting_for_customer_before_its_answer() {
    // The customer pays 600 ms after init; status is polled every 100 ms.
    let s = Setup::new(&[("pay_after_ms", "600")], &[]);
    let mut c = s.d.client();
    let (events, answer) = c.request_with_events(
        &json!({"action": "pay", "request_id": "pp-ev1", "amount": 1000, "progress": true}),
    );
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(
        stages(&events),
        ["sent", "waiting_for_customer"],
        "{events:?}"
    );
    // The next line is the next request's answer: nothing came after the sale's.
    let status = c.request(&json!({"action": "status", "request_id": "pp-st"}));
    assert_eq!(status["request_id"], "pp-st", "{status}");
    let stored = c.request(&json!({"action": "get_result", "request_id": "pp-ev1"}));
    assert_eq!(stored, answer);
    assert_eq!(s.calls("pp-ev1"), 1);
    s.no_secret_in_log();
}

#[test]
fn a_refused_init_tells_nothing() {
    let s = Setup::new(&[("init_refusal", "INVALID_AMOUNT")], &[]);
    let mut c = s.d.client();
    let (events, answer) = c.request_with_events(
        &json!({"action": "pay", "request_id": "pp-ev2", "amount": 1000, "progress": true}),
    );
    assert_eq!(answer["error_type"], "default_error", "{answer}");
    assert!(
        events.is_empty(),
        "a stage PhonePe never reported: {events:?}"
    );
}
