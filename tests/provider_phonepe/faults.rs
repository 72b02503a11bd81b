//! PhonePe under faults: every injected failure of the init ends in the right error_type, and
//! after reconciliation in the real outcome, with exactly one init per sale; a kill -9 of the
//! daemon mid-sale loses nothing and charges once.

use std::time::Duration;

use serde_json::json;

use super::{common, in_background, wait_for, Setup, INIT};

#[test]
fn a_slow_init_still_approves_once() {
    let s = Setup::new(&[], &[]);
    s.replica
        .arm(json!({"path": INIT, "kind": "slow", "delay_ms": 600}));
    let a = s.pay("slow-1", 1000, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("slow-1"), 1);
    s.no_secret_in_log();
}

#[test]
fn an_init_phonepe_takes_longer_than_our_timeout_to_act_on_is_not_called_lost() {
    // We give up after 1 s; PhonePe acts after 1.5 s. A "not found" in between must not be
    // taken as "never received".
    let s = Setup::new(&[("init_delay_ms", "1500")], &[]);
    let a = s.pay("late-1", 1000, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("late-1"), 1);
    s.no_secret_in_log();
}

#[test]
fn an_error_before_the_init_acts_ends_not_processed_with_nothing_charged() {
    let s = Setup::new(&[], &[]);
    s.replica
        .arm(json!({"path": INIT, "kind": "error", "after": false}));
    // "Not found" is believed once the 1 s handover window and the margin have passed.
    let a = s.pay("err-before", 1000, json!({"handover_seconds": 1}));
    assert_eq!(a["error_type"], "default_error", "{a}");
    assert_eq!(a["reason"], "not_processed");
    assert_eq!(s.calls("err-before"), 0);
    assert_eq!(s.inits(), 1);
    assert!(s.txn("err-before").is_null());
    s.no_secret_in_log();
}

#[test]
fn an_error_after_the_init_acted_is_followed_to_approved_once() {
    let s = Setup::new(&[], &[]);
    s.replica
        .arm(json!({"path": INIT, "kind": "error", "after": true}));
    let a = s.pay("err-after", 1000, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("err-after"), 1);
    s.no_secret_in_log();
}

#[test]
fn a_dropped_connection_after_the_init_is_followed_to_approved_once() {
    let s = Setup::new(&[], &[]);
    s.replica.arm(json!({"path": INIT, "kind": "drop"}));
    let a = s.pay("drop-1", 1000, json!({}));
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("drop-1"), 1);
    s.no_secret_in_log();
}

#[test]
fn a_garbage_answer_to_the_init_is_followed_to_its_real_outcome_once() {
    let s = Setup::new(&[], &[]);
    s.replica.arm(json!({"path": INIT, "kind": "garbage"}));
    let a = s.pay("garbage-51", 1051, json!({}));
    assert_eq!(a["reason"], "declined", "{a}");
    assert_eq!(s.calls("garbage-51"), 1);
    s.no_secret_in_log();
}

#[test]
fn an_init_that_never_answers_is_unknown_then_reconciled_to_approved() {
    // The whole operation is bounded (800 ms) below one request's timeout (1 s).
    let s = Setup::new(&[], &[("timeout_ms", "800")]);
    s.replica.arm(json!({"path": INIT, "kind": "timeout"}));
    let a = s.pay("hang-1", 1000, json!({}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    assert_eq!(a["reason"], "timeout");
    let r = s.settled("hang-1", Duration::from_secs(15));
    assert_eq!(r["data"]["status"], "approved", "{r}");
    assert_eq!(s.calls("hang-1"), 1);
    assert_eq!(s.replica.requests()[INIT], 1, "never re-sent");
    s.no_secret_in_log();
}

#[test]
fn a_request_phonepe_never_got_reconciles_to_not_processed() {
    // The answer is lost before PhonePe acts; the operation's bound (500 ms) ends before a
    // "not found" can be believed (2 x 1 s request timeout + 100 ms), so reconciliation decides.
    let s = Setup::new(&[], &[("timeout_ms", "500")]);
    s.replica
        .arm(json!({"path": INIT, "kind": "timeout", "after": false}));
    let a = s.pay("lost-1", 1000, json!({"handover_seconds": 1}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    let r = s.settled("lost-1", Duration::from_secs(15));
    assert_eq!(r["error_type"], "default_error", "{r}");
    assert_eq!(r["reason"], "not_processed");
    assert_eq!(s.calls("lost-1"), 0);
    s.no_secret_in_log();
}

#[test]
fn kill9_mid_sale_then_restart_gives_the_real_outcome_with_one_init() {
    let mut s = Setup::new(&[("pay_after_ms", "2500")], &[]);
    let pay = in_background(
        &s.d,
        json!({"action": "pay", "request_id": "crash-1", "amount": 1500}),
    );
    wait_for("the init", Duration::from_secs(10), || {
        s.txn("crash-1").is_object()
    });
    s.d.kill9();
    assert!(pay.join().unwrap().is_none(), "the killed daemon answered");
    s.d.restart();
    let r = s.settled("crash-1", Duration::from_secs(20));
    assert_eq!(r["data"]["status"], "approved", "{r}");
    assert_eq!(r["data"]["rrn"], s.txn("crash-1")["reference_number"]);
    assert_eq!(s.calls("crash-1"), 1);
    assert_eq!(s.replica.requests()[INIT], 1);
    assert!(s.d.log().contains("crash-1"));
    s.no_secret_in_log();
}

#[test]
fn a_refund_whose_answer_is_lost_is_followed_not_resent() {
    let s = Setup::new(&[("refund_after_ms", "400")], &[]);
    let a = s.pay("sale-rl", 1000, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    s.replica
        .arm(json!({"path": "/v3/credit/backToSource", "kind": "drop"}));
    let r = s.d.request(
        json!({"action": "refund", "request_id": "refund-lost", "amount": 1000,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(r["data"]["status"], "refunded", "{r}");
    assert_eq!(s.calls("refund-lost"), 1);
    s.no_secret_in_log();
}

#[test]
fn phonepe_going_away_mid_sale_and_coming_back_loses_nothing() {
    let mut s = Setup::new(&[("pay_after_ms", "1500")], &[]);
    let pay = in_background(
        &s.d,
        json!({"action": "pay", "request_id": "away-1", "amount": 800}),
    );
    wait_for("the init", Duration::from_secs(10), || {
        s.txn("away-1").is_object()
    });
    let (state, addr) = (s.replica.state.clone(), s.replica.addr().to_owned());
    s.replica.kill();
    std::thread::sleep(Duration::from_millis(400));
    s.replica = common::replica::Replica::start_at(&state, &addr, "phonepe", super::SALT, &[]);
    let a = pay.join().unwrap().expect("the pay's answer");
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(s.calls("away-1"), 1);
    s.no_secret_in_log();
}
