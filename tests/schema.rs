//! The socket API's JSON Schemas (schema/, docs/api.md "Schemas") catch what they promise to:
//! a top-level field they do not know in an answer, a LIFE POS `data` string whose content
//! lacks a required field, a misspelt request field; and they take the requests docs/api.md and
//! the examples send. (Every answer every integration test receives is checked against them
//! by tests/common's Client; this file shows that check can fail.)

mod common;

use serde_json::{json, Value};

use common::schema::{check_answer, request_errors};
use common::Daemon;

const LP_PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";
const LP_REFUND: &str = "ru.lifepay.checkout.payment_terminal.transaction.refund";

/// Whether `check_answer` refuses `answer` (it panics on a mismatch).
fn refused(answer: &Value) -> bool {
    let line = answer.to_string();
    std::panic::catch_unwind(|| check_answer(&line)).is_err()
}

#[test]
fn an_answer_with_a_top_level_field_the_schema_does_not_know_fails() {
    let d = Daemon::start();
    let mut c = d.client();
    let paid = c.request(&json!({"action": "pay", "request_id": "s-1", "amount": 1000}));
    assert_eq!(paid["code"], 0, "{paid}");
    assert!(!refused(&paid));
    let mut more = paid.clone();
    more["terminal"] = json!("T1");
    assert!(refused(&more), "a new top-level field must fail: {more}");
    let mut less = paid.clone();
    less.as_object_mut().unwrap().remove("metadata");
    assert!(refused(&less), "a missing field must fail: {less}");
    // A provider's own field inside a transaction's data is allowed.
    let mut extra = paid.clone();
    extra["data"]["terminal_batch"] = json!(7);
    assert!(!refused(&extra), "{extra}");
    // An error answer keeps its reason to the known ones.
    let declined = c.request(&json!({"action": "pay", "request_id": "s-2", "amount": 1051}));
    assert_eq!(declined["reason"], "declined", "{declined}");
    let mut odd = declined.clone();
    odd["reason"] = json!("card_on_fire");
    assert!(refused(&odd), "{odd}");
}

#[test]
fn an_event_line_is_checked_against_event_json() {
    let event = json!({"event": "progress", "request_id": "e-1", "stage": "card_read",
        "message": "card read"});
    assert!(!refused(&event), "{event}");
    let mut odd = event.clone();
    odd["stage"] = json!("card_on_fire");
    assert!(
        refused(&odd),
        "a stage the schema does not list must fail: {odd}"
    );
    let mut more = event.clone();
    more["code"] = json!(0);
    assert!(refused(&more), "an event has no code: {more}");
    // A scan's found event: its device as data.json's scan entry, nothing of a progress event.
    let found = json!({"event": "found", "request_id": null, "device": {
        "address": "C0:FF:EE:00:00:01", "name": "QPOS-mini", "rssi": -48, "bonded": true,
        "paired": false}});
    assert!(!refused(&found), "{found}");
    let mut unbonded = found.clone();
    unbonded["device"].as_object_mut().unwrap().remove("bonded");
    assert!(
        refused(&unbonded),
        "a device must say whether it is bonded: {unbonded}"
    );
    let mut mixed = found.clone();
    mixed["stage"] = json!("card_read");
    assert!(refused(&mixed), "a found event has no stage: {mixed}");
}

#[test]
fn a_lifepos_data_string_is_checked_inside() {
    let d = Daemon::start();
    let paid = d.request(json!({"action": LP_PAY, "request_id": "s-lp", "amount": 1200}));
    assert_eq!(paid["code"], 0, "{paid}");
    assert!(!refused(&paid));
    let mut data: Value = serde_json::from_str(paid["data"].as_str().unwrap()).unwrap();
    data.as_object_mut().unwrap().remove("amount");
    let mut broken = paid.clone();
    broken["data"] = json!(data.to_string());
    assert!(
        refused(&broken),
        "a data string without amount must fail: {broken}"
    );
    let mut not_json = paid.clone();
    not_json["data"] = json!("{\"request_id\":");
    assert!(refused(&not_json), "{not_json}");
}

#[test]
fn the_requests_of_the_docs_match_and_a_misspelt_field_does_not() {
    let data = json!({"request_id": "a1", "operation": "pay", "provider": "sim",
        "status": "approved", "amount": 100, "currency": "INR"});
    let good = [
        json!({"action": "pay", "request_id": "a1", "amount": 100, "metadata": {"till": "3"}}),
        json!({"action": "pay", "amount": 100, "provider": "sim", "params": {"delay_ms": 10}}),
        json!({"action": "refund", "request_id": "r1", "amount": 50, "primary_transaction": data}),
        json!({"action": "get_result", "request_id": "a1"}),
        json!({"action": "close_shift"}),
        json!({"action": "pay", "amount": 100, "progress": true}),
        json!({"action": "scan", "seconds": 3, "progress": true}),
        json!({"action": LP_PAY, "request_id": "a4", "amount": 100, "progress": false}),
        json!({"action": "status"}),
        json!({"action": "results", "limit": 5}),
        json!({"action": "pair", "address": "serial:/dev/posbridge/reader", "role": "card-reader"}),
        json!({"action": "resolve", "request_id": "a1", "decision": "charged", "note": "portal"}),
        json!({"action": LP_PAY, "request_id": "a2", "amount": 100, "email": "b@example.ru"}),
        json!({"action": LP_REFUND, "request_id": "a3", "amount": 100,
            "primary_transaction": data.to_string()}),
    ];
    for r in &good {
        assert_eq!(request_errors(r), None, "{r}");
    }
    let bad = [
        json!({"action": "pay", "request_id": "a1", "amount": 100, "curency": "INR"}),
        json!({"action": "pay", "amount": "100"}),
        json!({"action": "get_result"}),
        json!({"action": "refund", "amount": 50}),
        json!({"action": "status", "email": "b@example.ru"}),
        json!({"action": "pay", "amount": 1, "login": "only-login"}),
        json!({"action": "launch"}),
        json!({"action": "pay", "amount": 1, "progress": "yes"}),
        json!({"action": "get_result", "request_id": "a1", "progress": true}),
    ];
    for r in &bad {
        assert!(request_errors(r).is_some(), "must not match: {r}");
    }
}
