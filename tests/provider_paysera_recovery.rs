//! Paysera sales whose answers are lost, and kill -9 at each step: the real daemon against the
//! Paysera replica with faults armed. A lost answer is found again only through documented
//! calls (the spot's orders, matched by the journaled transaction key, or the order by its
//! journaled id); every sale ends charged once or not at all, and no order is left pending.

mod common;

use std::time::{Duration, Instant};

use common::paysera::{approved, failed, rig, rig_with, Rig, Setup};
use common::send_in_thread;
use serde_json::{json, Value};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one sale with `fault` armed; returns the first answer and the settled one.
fn with_fault(id: &str, fault: Value) -> (Rig, Value, Value) {
    let rig = rig(3000, &[]);
    rig.r.arm(fault);
    let first = rig.pay(id, 1000);
    let settled = rig.settled(id);
    (rig, first, settled)
}

#[test]
fn a_lost_transaction_answer_is_final_and_nothing_reaches_the_spot() {
    let fault = json!({"path": "/rest/v1/transaction", "kind": "error", "after": true});
    let (rig, first, settled) = with_fault("ps-t1", fault);
    assert_eq!(first["error_type"], "default_error", "{first}");
    assert_eq!(first, settled);
    assert_eq!(rig.transaction("ps-t1")["status"], "new");
    assert_eq!(
        rig.calls("ps-t1"),
        (0, 0),
        "no order carries it: nobody can pay it"
    );
    rig.finish();
}

#[test]
fn an_order_that_never_arrived_ends_not_processed_with_its_transaction_revoked() {
    let fault = json!({"path": "/rest/v1/spot/7/order", "kind": "error", "after": false});
    let (rig, first, settled) = with_fault("ps-f1", fault);
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    failed(&settled, "not_processed");
    assert_eq!(rig.calls("ps-f1"), (0, 0));
    assert_eq!(rig.transaction("ps-f1")["status"], "revoked");
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn a_lost_order_answer_is_found_in_the_spots_orders_and_approved_at_once() {
    for (i, kind) in ["error", "drop", "timeout", "garbage"].iter().enumerate() {
        let id = format!("ps-f2-{i}");
        let fault = json!({"path": "/rest/v1/spot/7/order", "kind": kind, "after": true});
        let (rig, first, settled) = with_fault(&id, fault);
        approved(&first);
        assert_eq!(first, settled, "{kind}");
        assert_eq!(rig.calls(&id), (1, 1), "{kind}");
        rig.assert_spot_clean();
        rig.finish();
    }
}

#[test]
fn slow_and_failing_reads_are_waited_out() {
    let rig = rig(3000, &[]);
    rig.r
        .arm(json!({"path": "/rest/v1/spot/7", "kind": "slow", "delay_ms": 400}));
    rig.r
        .arm(json!({"path": "/rest/v1/order/", "kind": "error", "count": 2}));
    approved(&rig.pay("ps-f3", 1000));
    assert_eq!(rig.calls("ps-f3"), (1, 1));
    rig.finish();
}

#[test]
fn a_lost_confirm_answer_is_read_back_as_approved() {
    let fault = json!({"path": "/rest/v1/transaction/", "kind": "drop", "after": true});
    let (rig, first, _) = with_fault("ps-f4", fault);
    approved(&first);
    assert_eq!(rig.calls("ps-f4"), (1, 1));
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn kill9_between_transaction_and_order_ends_not_processed_once() {
    let mut rig = rig(6000, &[]);
    // The order request hangs without reaching the backend; the daemon dies meanwhile.
    rig.r
        .arm(json!({"path": "/rest/v1/spot/7/order", "kind": "timeout", "after": false}));
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-k0", "amount": 2400}),
    );
    wait_until("the order request is on its way", || {
        rig.r.requests()["/rest/v1/spot/7/order"].as_u64() == Some(1)
    });
    assert_eq!(rig.transaction("ps-k0")["status"], "new");
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    let v = rig.settled("ps-k0");
    failed(&v, "not_processed");
    assert_eq!(rig.calls("ps-k0"), (0, 0));
    assert_eq!(rig.transaction("ps-k0")["status"], "revoked");
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn kill9_between_order_and_its_answer_is_found_and_confirmed_once() {
    let mut rig = rig(6000, &[]);
    // The order is created but its answer never comes; the daemon dies meanwhile.
    rig.r
        .arm(json!({"path": "/rest/v1/spot/7/order", "kind": "timeout", "after": true}));
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-k1", "amount": 2500}),
    );
    wait_until("the order exists", || rig.calls("ps-k1").0 == 1);
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    let v = rig.settled("ps-k1");
    approved(&v);
    assert_eq!(rig.calls("ps-k1"), (1, 1));
    assert_eq!(
        v["data"]["provider_reference"],
        rig.order("ps-k1")["transaction_key"]
    );
    wait_until("the spot is closed", || {
        rig.r.state()["spots"]["7"]["status"] == "closed"
    });
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
/// The sale's start is journaled on the boot clock, so after a restart in the same boot the
/// reconciler can tell the customer's window is still open: the reservation is confirmed.
fn kill9_while_the_customer_scans_is_confirmed_once_after_restart() {
    let mut rig = rig(20_000, &[("reserve_after_ms", "1500")]);
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-k2", "amount": 2500}),
    );
    wait_until("the order exists", || rig.calls("ps-k2").0 == 1);
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    approved(&rig.settled("ps-k2"));
    assert_eq!(rig.calls("ps-k2"), (1, 1));
    rig.finish();
}

#[test]
fn a_request_id_reused_after_eviction_never_lands_on_the_old_order() {
    let rig = rig_with(Setup {
        top: "[journal]\ncapacity = 2",
        ..Default::default()
    });
    let first = rig.pay("ps-same", 1100);
    approved(&first);
    approved(&rig.pay("ps-x1", 100));
    approved(&rig.pay("ps-x2", 100));
    rig.r
        .arm(json!({"path": "/rest/v1/spot/7/order", "kind": "error", "after": true}));
    let again = rig.pay("ps-same", 1300);
    approved(&again);
    assert_ne!(
        again["data"]["provider_reference"], first["data"]["provider_reference"],
        "{again}"
    );
    let list = rig.transactions("ps-same");
    assert_eq!(list.len(), 2);
    for t in &list {
        assert_eq!(
            (t["order_creates"].as_u64(), t["confirms"].as_u64()),
            (Some(1), Some(1)),
            "{t}"
        );
    }
    let new_key = again["data"]["provider_reference"].as_str().unwrap();
    let new = list.iter().find(|t| t["key"] == new_key).unwrap();
    assert_eq!(new["payments"][0]["price"], 1300, "{new}");
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn a_second_sale_while_one_waits_at_the_spot_is_refused_and_creates_nothing() {
    let rig = rig(2000, &[]);
    let waiting = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-w1", "amount": 851}),
    );
    wait_until("the first order exists", || rig.calls("ps-w1").0 == 1);
    let second = rig.pay("ps-w2", 900);
    failed(&second, "spot_busy");
    assert!(rig.transactions("ps-w2").is_empty());
    let first: Value = serde_json::from_str(&waiting.join().unwrap().unwrap()).unwrap();
    failed(&first, "expired");
    rig.assert_spot_clean();
    rig.finish();
}

/// A sale cut off by kill -9 leaves its order pending at the spot; the next sale closes it
/// first, so the next customer sees and pays only their own order, and the cut-off sale ends
/// not charged.
#[test]
fn the_next_sale_closes_an_order_left_pending_by_a_crash() {
    let mut rig = rig(6000, &[]);
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-old", "amount": 1151}),
    );
    wait_until("the old order exists", || rig.calls("ps-old").0 == 1);
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    approved(&rig.pay("ps-new", 1200));
    assert_eq!(rig.calls("ps-new"), (1, 1));
    let (old_order, new_order) = (rig.order("ps-old"), rig.order("ps-new"));
    assert_eq!(old_order["status"], "closed");
    assert!(
        old_order["closed_ms"].as_u64().unwrap() <= new_order["created_ms"].as_u64().unwrap(),
        "the old order was still open when the new one was shown: {old_order} {new_order}"
    );
    let old = rig.settled("ps-old");
    assert_eq!(old["error_type"], "default_error", "{old}");
    assert_eq!(rig.calls("ps-old"), (1, 0));
    assert_eq!(rig.transaction("ps-old")["status"], "revoked");
    rig.assert_spot_clean();
    rig.finish();
}
