//! Abort from the POS on IOT Pay (issue 21 item 4): document 002 has no cancel call, so a
//! cancel naming a running sale by request_id sends nothing that moves money. It reads the
//! order and answers honestly: still at the terminal -> a refusal that says to press cancel on
//! the PAX terminal (nothing cancelled, the sale goes on); paid -> `already_completed`.

use super::*;
use common::send_in_thread;

fn abort(t: &Rig, id: &str, pay_id: &str, amount: u64) -> Value {
    t.d.request(
        json!({"action": "cancel", "request_id": id, "amount": amount,
        "primary_transaction": {"request_id": pay_id, "provider": "iotpay", "amount": amount}}),
    )
}

#[test]
fn an_abort_of_a_sale_at_the_terminal_says_to_press_cancel_there_and_sends_nothing() {
    // ..93: the terminal takes slow_ms; the daemon waits for it.
    let t = rig_with(KEY, &[("slow_ms", "20000")], "timeout_ms = 30000");
    let _pay = send_in_thread(
        &t.d,
        json!({"action": "pay", "request_id": "io-run", "amount": 1093}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.order("io-run").is_object() {
        assert!(
            Instant::now() < deadline,
            "the order never reached the replica"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = abort(&t, "io-run-c", "io-run", 1093);
    assert_error(&c, "default_error", "not_supported");
    let message = c["message"].as_str().unwrap();
    assert!(message.contains("Press cancel on the terminal"), "{c}");
    assert!(message.contains("Nothing was cancelled"), "{c}");
    // One create_order, and nothing else that moves money: no refund, no second order.
    assert_eq!(t.charges("io-run"), 1);
    let state = t.r.state();
    assert!(
        state["refunds"].as_object().is_none_or(|r| r.is_empty()),
        "{state}"
    );
    let stored =
        t.d.request(json!({"action": "get_result", "request_id": "io-run-c"}));
    assert_eq!(stored, c, "the cancel's answer is journaled");
}

#[test]
fn an_abort_of_a_paid_sale_is_too_late_and_the_sale_stays_approved() {
    let t = rig(&[]);
    let sale = t.pay("io-paid", 1000);
    assert_approved(&sale);
    let c = abort(&t, "io-paid-c", "io-paid", 1000);
    assert_error(&c, "default_error", "already_completed");
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    let again =
        t.d.request(json!({"action": "get_result", "request_id": "io-paid"}));
    assert_eq!(again, sale, "the sale stays approved");
    assert_eq!(t.charges("io-paid"), 1, "charged once");
    assert_eq!(t.order("io-paid")["status"], 2);
}
