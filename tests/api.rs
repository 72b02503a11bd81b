//! The socket contract (DESIGN.md §2) against the real daemon: outcomes, replay, duplicates.

mod common;

use std::time::Duration;

use common::Daemon;
use serde_json::json;

#[test]
fn pay_is_approved_and_get_result_replays_it_byte_for_byte() {
    let d = Daemon::start();
    let mut c = d.client();
    let pay = c.line(r#"{"action":"pay","request_id":"r-1","amount":100,"metadata":{"till":"7"}}"#);
    let v: serde_json::Value = serde_json::from_str(&pay).unwrap();
    assert_eq!(v["code"], 0, "{pay}");
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["amount"], 100);
    assert_eq!(v["metadata"]["till"], "7");
    let again = c.line(r#"{"action":"get_result","request_id":"r-1"}"#);
    assert_eq!(again, pay);
}

#[test]
fn amount_ending_in_91_is_unknown_then_reconciled_to_approved() {
    let d = Daemon::start();
    let first = d.request(json!({"action": "pay", "request_id": "t-91", "amount": 1091}));
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    let later = d.await_result("t-91", Duration::from_secs(10), |v| v["code"] == 0);
    assert_eq!(later["data"]["status"], "approved", "{later}");
    assert_eq!(d.sim_calls("t-91"), 1);
}
