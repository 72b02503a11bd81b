//! Progress events over the real socket, with the sim (issue 21 item 3): a request with
//! `"progress": true` gets its stages as event lines before its one answer and none after it;
//! without it, nothing but the answer; get_result answers the same either way; a client that
//! never reads its events does not hold up the sale. (The providers' and the reader's own
//! stages: tests/provider_phonepe, tests/provider_paysera, tests/lifepay_reader, tests/ble.)

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::{stages, Daemon};

const LP_PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";

#[test]
fn events_come_in_order_before_the_answer_and_nothing_after_it() {
    let d = Daemon::start();
    let mut c = d.client();
    let pay = json!({"action": "pay", "request_id": "pg-1", "amount": 1000, "progress": true,
        "params": {"delay_ms": 300}});
    let (events, answer) = c.request_with_events(&pay);
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(stages(&events), ["sent", "authorising"], "{events:?}");
    assert_eq!(events[0]["request_id"], "pg-1");
    // The next line on this connection is the next request's answer, not a late event.
    let status = c.request(&json!({"action": "status", "request_id": "pg-s"}));
    assert_eq!(status["request_id"], "pg-s", "{status}");
    // The stored answer is the one that came after the events, byte for byte.
    let mut again = c.request(&json!({"action": "get_result", "request_id": "pg-1"}));
    assert_eq!(again, answer);
    // get_result never has events, even when asked for them.
    let (events, asked) = c.request_with_events(
        &json!({"action": "get_result", "request_id": "pg-1", "progress": true}),
    );
    assert!(events.is_empty(), "{events:?}");
    again = asked;
    assert_eq!(again, answer);
}

#[test]
fn without_progress_the_answer_is_the_only_line() {
    let d = Daemon::start();
    let mut c = d.client();
    let plain = json!({"action": "pay", "request_id": "pg-2", "amount": 1000,
        "params": {"delay_ms": 100}});
    let (events, answer) = c.request_with_events(&plain);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(answer["code"], 0, "{answer}");
    let off = json!({"action": "pay", "request_id": "pg-3", "amount": 1000, "progress": false});
    let (events, answer) = c.request_with_events(&off);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(answer["code"], 0, "{answer}");
}

#[test]
fn progress_that_is_not_a_boolean_is_refused_naming_the_field() {
    let d = Daemon::start();
    let answer = d.request(
        json!({"action": "pay", "request_id": "pg-4", "amount": 1000,
        "progress": "yes"}),
    );
    assert_eq!(answer["reason"], "invalid_request", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("progress: "),
        "{answer}"
    );
    assert_eq!(d.sim_calls("pg-4"), 0);
}

#[test]
fn a_lifepos_request_gets_the_same_events_before_its_contract_answer() {
    let d = Daemon::start();
    let mut c = d.client();
    let pay = json!({"action": LP_PAY, "request_id": "pg-5", "amount": 1000, "progress": true,
        "provider": "sim"});
    let (events, answer) = c.request_with_events(&pay);
    assert_eq!(answer["action"], LP_PAY, "{answer}");
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(stages(&events), ["sent"], "{events:?}");
}

/// A client that reads nothing for a while: its sales (one after the other on its connection)
/// are carried out and stored, other clients are served meanwhile, and what it reads later is
/// each sale's events, then its answer, in order. (No real provider tells enough stages to fill
/// the event queue; a full queue nobody reads is engine::stages_tests'.)
#[test]
fn a_client_that_never_reads_its_events_does_not_hold_up_the_sale() {
    let d = Daemon::start();
    let mut quiet = d.client();
    for n in 0..20 {
        quiet.send_raw(
            format!(
                "{}\n",
                json!({"action": "pay", "request_id": format!("pg-q{n}"), "amount": 1000,
                    "progress": true, "params": {"delay_ms": 20}})
            )
            .as_bytes(),
        );
    }
    let last = d.await_result("pg-q19", Duration::from_secs(60), |a: &Value| {
        a["code"] == 0
    });
    assert_eq!(last["data"]["status"], "approved", "{last}");
    let other = d.request(json!({"action": "pay", "request_id": "pg-o", "amount": 1000}));
    assert_eq!(other["code"], 0, "{other}");
    for n in 0..20 {
        let (events, answer) = quiet.read_with_events();
        assert_eq!(answer["request_id"], format!("pg-q{n}"), "{answer}");
        assert_eq!(stages(&events), ["sent", "authorising"], "{events:?}");
    }
}

/// A client gone before its events are written: writing them fails, and the sale is carried
/// out and stored all the same.
#[test]
fn a_client_that_leaves_before_its_events_does_not_cut_the_sale_short() {
    let d = Daemon::start();
    let mut gone = d.client();
    gone.send_raw(
        format!(
            "{}\n",
            json!({"action": "pay", "request_id": "pg-gone", "amount": 1000, "progress": true,
                "params": {"delay_ms": 500}})
        )
        .as_bytes(),
    );
    drop(gone);
    let settled = d.await_result("pg-gone", Duration::from_secs(60), |a: &Value| {
        a["code"] == 0
    });
    assert_eq!(settled["data"]["status"], "approved", "{settled}");
    assert_eq!(d.sim_calls("pg-gone"), 1);
}
