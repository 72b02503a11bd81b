//! Abort from the POS (issue 21 item 4) on the sim: a cancel naming a running pay by its
//! request_id only (`{"request_id","provider","amount"}`), while the pay waits for its customer
//! (`params.delay_ms`), aborts it: nothing charged, the cancel answers `cancelled` and the pay
//! `cancelled`. Once the pay has completed the same cancel is too late: `already_completed`,
//! and the pay stays approved, charged once. The other providers' aborts are tested with their
//! replicas and the card reader emulator (provider_*.rs, lifepay_reader.rs).

mod common;

use std::time::{Duration, Instant};

use common::{send_in_thread, Daemon};
use serde_json::{json, Value};

/// The cancel a cashier's "cancel" sends while the pay `pay_id` runs.
fn abort(d: &Daemon, id: &str, pay_id: &str, amount: u64) -> Value {
    d.request(
        json!({"action": "cancel", "request_id": id, "amount": amount,
        "primary_transaction": {"request_id": pay_id, "provider": "sim", "amount": amount}}),
    )
}

/// The sim backend's ledger rows for `request_id`: (action, outcome).
fn ledger(d: &Daemon, request_id: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(d.state.join("sim-backend.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT action, outcome FROM calls WHERE request_id = ?1 ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([request_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The charges the sim backend holds: approved pays.
fn charged(d: &Daemon) -> i64 {
    let conn = rusqlite::Connection::open(d.state.join("sim-backend.sqlite")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM calls WHERE action = 'pay' AND outcome = 'approved'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn wait_until_the_sim_has(d: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.sim_calls(id) == 0 {
        assert!(Instant::now() < deadline, "the pay never reached the sim");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn parse(line: Option<String>) -> Value {
    serde_json::from_str(&line.expect("the pay's answer")).unwrap()
}

#[test]
fn a_pay_waiting_for_its_customer_is_aborted_and_nothing_is_charged() {
    let d = Daemon::start();
    // 20 s: the test never waits for it; an abort that failed would end it approved.
    let pay = send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "ab-pay", "amount": 1500,
            "params": {"delay_ms": 20000}}),
    );
    wait_until_the_sim_has(&d, "ab-pay");
    let c = abort(&d, "ab-cancel", "ab-pay", 1500);
    assert_eq!(c["code"], 0, "{c}");
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    assert_eq!(c["data"]["primary"]["request_id"], "ab-pay", "{c}");
    common::assert_ended_as(&d, "ab-pay", &parse(pay.join().unwrap()), "cancelled");
    assert_eq!(ledger(&d, "ab-pay"), [("pay".into(), "aborted".into())]);
    assert_eq!(charged(&d), 0, "nothing was charged");
    // A second abort finds nothing to stop.
    let again = abort(&d, "ab-cancel-2", "ab-pay", 1500);
    assert_eq!(again["reason"], "declined", "{again}");
    // The cancel's own answer is stored like any operation's.
    let c_again = d.request(json!({"action": "get_result", "request_id": "ab-cancel"}));
    assert_eq!(c_again, c);
}

#[test]
fn an_abort_after_the_customer_paid_is_too_late_and_the_pay_stays_approved() {
    let d = Daemon::start();
    let p = d.request(
        json!({"action": "pay", "request_id": "late-pay", "amount": 900,
        "params": {"delay_ms": 50}}),
    );
    assert_eq!(p["code"], 0, "{p}");
    let c = abort(&d, "late-cancel", "late-pay", 900);
    assert_eq!(
        (&c["error_type"], &c["reason"]),
        (&json!("default_error"), &json!("already_completed")),
        "{c}"
    );
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    let stored = d.request(json!({"action": "get_result", "request_id": "late-pay"}));
    assert_eq!(stored, p, "the pay stays approved");
    assert_eq!(ledger(&d, "late-pay"), [("pay".into(), "approved".into())]);
    assert!(
        ledger(&d, "late-cancel").is_empty(),
        "the refused cancel moved nothing"
    );
    assert_eq!(charged(&d), 1, "charged once");
}

#[test]
fn an_abort_of_a_pay_whose_answer_was_lost_is_too_late_when_it_was_charged() {
    let d = Daemon::start();
    // Amount ending in 91: charged, but the answer "times out" (unknown).
    let p = d.request(json!({"action": "pay", "request_id": "lost-pay", "amount": 1091}));
    assert_eq!(p["reason"], "timeout", "{p}");
    let c = abort(&d, "lost-cancel", "lost-pay", 1091);
    assert_eq!(c["reason"], "already_completed", "{c}");
    let settled = d.await_result("lost-pay", Duration::from_secs(20), |v| v["code"] == 0);
    assert_eq!(settled["data"]["status"], "approved", "{settled}");
    assert_eq!(charged(&d), 1, "charged once");
}

#[test]
fn an_abort_takes_the_pays_notes_from_the_journal_never_from_the_pos() {
    let d = Daemon::start();
    let pay = send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "nt-pay", "amount": 700,
            "params": {"delay_ms": 20000}}),
    );
    wait_until_the_sim_has(&d, "nt-pay");
    let c = d.request(
        json!({"action": "cancel", "request_id": "nt-cancel", "amount": 700,
        "primary_transaction": {"request_id": "nt-pay", "provider": "sim", "amount": 700,
            "pay_notes": {"paysera_transaction_key": "injected-by-the-pos"}}}),
    );
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    assert_eq!(parse(pay.join().unwrap())["reason"], "cancelled");
    // A pay the journal does not have: nothing to take, and nothing of the POS's kept.
    let none = d.request(
        json!({"action": "cancel", "request_id": "nt-none", "amount": 700,
        "primary_transaction": {"request_id": "nt-nowhere", "provider": "sim", "amount": 700,
            "pay_notes": {"paysera_transaction_key": "injected-by-the-pos"}}}),
    );
    assert_eq!(none["reason"], "invalid_request", "{none}");
    let conn = rusqlite::Connection::open(d.state.join("journal.sqlite")).unwrap();
    let intent = |id: &str| -> String {
        conn.query_row(
            "SELECT operation FROM operations WHERE request_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    for id in ["nt-cancel", "nt-none"] {
        assert!(!intent(id).contains("injected"), "{}", intent(id));
    }
    let pay_id = d.backend_id("nt-pay");
    assert!(
        intent("nt-cancel").contains(&pay_id),
        "the pay's backend id"
    );
}

/// The LIFE POS contract's cancel, `primary_transaction` as the JSON string it carries, is the
/// same abort.
#[test]
fn the_life_pos_cancel_naming_a_running_pay_aborts_it_too() {
    let d = Daemon::start();
    let pay = send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "lp-pay", "amount": 1200,
            "params": {"delay_ms": 20000}}),
    );
    wait_until_the_sim_has(&d, "lp-pay");
    let primary = json!({"request_id": "lp-pay", "provider": "sim", "amount": 1200}).to_string();
    let c = d.request(
        json!({"action": "ru.lifepay.checkout.payment_terminal.transaction.cancel",
        "request_id": "lp-cancel", "amount": 1200, "primary_transaction": primary}),
    );
    assert_eq!(c["code"], 0, "{c}");
    let data: Value = serde_json::from_str(c["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["status"], "cancelled", "{c}");
    common::assert_ended_as(&d, "lp-pay", &parse(pay.join().unwrap()), "cancelled");
    assert_eq!(charged(&d), 0);
}
