//! Abort from the POS on PhonePe (issue 21 item 4): the cashier's cancel of a sale that is
//! still running in posbridge, named by its request_id. The pay's status checks are an hour
//! apart here (`status_poll_ms = [60000]`, the first 60 s after init), so a pay that ends well
//! before that was woken by the cancel: it ends promptly and says what the cancel did
//! (cancelled; or, too late, approved), never the opposite of the cancel's answer.

use std::time::Duration;

use serde_json::{json, Value};

use super::{in_background, wait_for, Setup};

/// Far below the 60 s the first scheduled check would take.
const PROMPTLY: Duration = Duration::from_secs(30);

fn slow_checks(replica: &[(&str, &str)]) -> Setup {
    Setup::new(
        replica,
        &[("status_poll_ms", "[60000]"), ("timeout_ms", "170000")],
    )
}

fn abort(s: &Setup, id: &str, pay_id: &str, amount: u64) -> Value {
    s.d.request(
        json!({"action": "cancel", "request_id": id, "amount": amount,
        "primary_transaction": {"request_id": pay_id, "provider": "phonepe", "amount": amount}}),
    )
}

/// Starts the pay `id` and waits until PhonePe has its init.
fn running_pay(s: &Setup, id: &str, amount: u64) -> std::thread::JoinHandle<Option<Value>> {
    let pay = in_background(
        &s.d,
        json!({"action": "pay", "request_id": id, "amount": amount}),
    );
    wait_for("the init", Duration::from_secs(10), || {
        s.txn(id).is_object()
    });
    pay
}

fn answer_of(pay: std::thread::JoinHandle<Option<Value>>) -> Value {
    wait_for("the pay's answer", PROMPTLY, || pay.is_finished());
    pay.join().unwrap().expect("the pay's answer")
}

#[test]
fn an_abort_while_the_customer_has_not_paid_ends_the_pay_cancelled_at_once() {
    let s = slow_checks(&[("pay_after_ms", "600000")]);
    let pay = running_pay(&s, "ab-pp", 800);
    let c = abort(&s, "ab-pp-c", "ab-pp", 800);
    assert_eq!(c["code"], 0, "{c}");
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    crate::common::assert_ended_as(&s.d, "ab-pp", &answer_of(pay), "cancelled");
    let txn = s.txn("ab-pp");
    assert_eq!(
        (&txn["status"], &txn["code"]),
        (&json!("FAILED"), &json!("PAYMENT_CANCELLED"))
    );
    assert_eq!(
        s.calls("ab-pp"),
        1,
        "one init, nothing else that moves money"
    );
    s.no_secret_in_log();
}

#[test]
fn an_abort_after_the_customer_paid_is_too_late_and_the_pay_ends_approved_at_once() {
    let s = slow_checks(&[("pay_after_ms", "200")]);
    let pay = running_pay(&s, "late-pp", 900);
    // The replica's customer pays 200 ms after the init; the pay's first check is 60 s away.
    std::thread::sleep(Duration::from_millis(400));
    let c = abort(&s, "late-pp-c", "late-pp", 900);
    assert_eq!(
        (&c["error_type"], &c["reason"]),
        (&json!("default_error"), &json!("already_completed")),
        "{c}"
    );
    let p = answer_of(pay);
    assert_eq!(p["code"], 0, "{p}");
    assert_eq!(p["data"]["status"], "approved", "{p}");
    assert_eq!(s.txn("late-pp")["status"], "SUCCESS");
    assert_eq!(s.calls("late-pp"), 1, "charged once");
    s.no_secret_in_log();
}
