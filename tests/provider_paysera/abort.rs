//! Abort from the POS on Paysera (issue 21 item 4): a cancel naming the running sale by its
//! request_id revokes the transaction the sale journaled, before the confirm; the sale, which
//! waits for its customer, stops and answers `cancelled`: nothing charged, nothing reserved.
//! Once the transaction is confirmed the cancel is too late (`already_completed`) and the
//! sale is approved, confirmed once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::paysera::{approved, failed, rig, Rig};
use crate::common::send_in_thread;

fn abort(rig: &Rig, id: &str, pay_id: &str, amount: u64) -> Value {
    rig.d.request(
        json!({"action": "cancel", "request_id": id, "amount": amount,
        "primary_transaction": {"request_id": pay_id, "provider": "paysera", "amount": amount}}),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn answer_of(pay: std::thread::JoinHandle<Option<String>>) -> Value {
    // The window is 60 s: a sale that did not stop would answer only after it.
    wait_for("the sale's answer", || pay.is_finished());
    serde_json::from_str(&pay.join().unwrap().expect("the sale's answer")).unwrap()
}

#[test]
fn an_abort_while_the_customer_has_not_paid_revokes_and_the_sale_ends_cancelled() {
    let rig = rig(60_000, &[]);
    // ..51: the replica's customer never pays.
    let pay = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-ab", "amount": 1251}),
    );
    wait_for("the order at the spot", || {
        !rig.transactions("ps-ab").is_empty() && rig.order("ps-ab")["status"] == "pending"
    });
    let c = abort(&rig, "ps-ab-c", "ps-ab", 1251);
    assert_eq!(c["code"], 0, "{c}");
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    crate::common::assert_ended_as(&rig.d, "ps-ab", &answer_of(pay), "cancelled");
    assert_eq!(rig.transaction("ps-ab")["status"], "revoked");
    assert_eq!(rig.calls("ps-ab"), (1, 0), "one order, never confirmed");
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn an_abort_after_the_confirm_is_too_late_and_the_sale_is_approved() {
    let rig = rig(60_000, &[]);
    let pay = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-late", "amount": 1300}),
    );
    wait_for("the confirm", || {
        rig.transactions("ps-late")
            .first()
            .is_some_and(|t| t["status"] == "confirmed")
    });
    let c = abort(&rig, "ps-late-c", "ps-late", 1300);
    failed(&c, "already_completed");
    let p = answer_of(pay);
    approved(&p);
    assert_eq!(rig.transaction("ps-late")["status"], "confirmed");
    assert_eq!(rig.calls("ps-late"), (1, 1), "confirmed once");
    rig.finish();
}
