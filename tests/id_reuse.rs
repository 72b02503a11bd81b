//! A request_id used again after the journal forgot it is a new sale with its own backend id
//! (issue 9 §1): POS software numbers sales as it likes (`till3-0042` every day, a state
//! directory reset), and an old backend transaction must never answer for a new sale.

mod common;

use std::time::Duration;

use common::Daemon;
use serde_json::{json, Value};

/// The backend ids the sim backend received for `request_id`, oldest first.
fn backend_ids(d: &Daemon, request_id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(d.state.join("sim-backend.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT backend_id FROM calls WHERE request_id = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([request_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The backend id journaled with the intent of `request_id`.
fn journaled_backend_id(d: &Daemon, request_id: &str) -> String {
    let conn = rusqlite::Connection::open(d.state.join("journal.sqlite")).unwrap();
    let op: String = conn
        .query_row(
            "SELECT operation FROM operations WHERE request_id = ?1",
            [request_id],
            |r| r.get(0),
        )
        .unwrap();
    let op: Value = serde_json::from_str(&op).unwrap();
    op["backend_id"].as_str().unwrap().to_owned()
}

/// 600 approved sales on one connection: more than the journal keeps.
fn fill_the_journal(d: &Daemon) {
    let mut c = d.client();
    for i in 0..600 {
        let v =
            c.request(&json!({"action": "pay", "request_id": format!("fill-{i}"), "amount": 100}));
        assert_eq!(v["code"], 0, "{v}");
    }
}

#[test]
fn a_request_id_reused_after_600_sales_is_a_new_sale_charged_once_with_its_own_answer() {
    let d = Daemon::start();
    // Two early sales: one declined, one approved.
    let declined = d.request(json!({"action": "pay", "request_id": "till3-0042", "amount": 151}));
    assert_eq!(declined["reason"], "declined", "{declined}");
    let first = d.request(json!({"action": "pay", "request_id": "till3-0043", "amount": 2500}));
    assert_eq!(first["code"], 0, "{first}");

    fill_the_journal(&d);
    for id in ["till3-0042", "till3-0043"] {
        let gone = d.request(json!({"action": "get_result", "request_id": id}));
        assert_eq!(gone["error_type"], "result_not_found_error", "{gone}");
    }

    // Reused: the backend times out but charges (amount ..91); reconciliation must find THIS
    // charge, not the old decline under the same request_id.
    let again = d.request(json!({"action": "pay", "request_id": "till3-0042", "amount": 191}));
    assert_eq!(again["error_type"], "unknown_result_error", "{again}");
    let settled = d.await_result("till3-0042", Duration::from_secs(20), |v| {
        v["error_type"] != "unknown_result_error"
    });
    assert_eq!(
        settled["code"], 0,
        "a charged sale was answered as {settled}"
    );
    assert_eq!(settled["data"]["amount"], 191, "{settled}");

    // Reused after an approval: its own reference and amount, not the old sale's.
    let second = d.request(json!({"action": "pay", "request_id": "till3-0043", "amount": 300}));
    assert_eq!(second["code"], 0, "{second}");
    assert_eq!(second["data"]["amount"], 300, "{second}");
    assert_ne!(
        second["data"]["provider_reference"], first["data"]["provider_reference"],
        "the new sale was answered with the old transaction"
    );

    // Each sale reached the backend once, under its own id, the one its intent holds.
    for id in ["till3-0042", "till3-0043"] {
        let ids = backend_ids(&d, id);
        assert_eq!(ids.len(), 2, "{id}: {ids:?}");
        assert_ne!(ids[0], ids[1], "{id}: one backend id for two sales");
        assert_eq!(ids[1], journaled_backend_id(&d, id));
    }
}

#[test]
fn after_kill9_mid_sale_recovery_asks_by_the_stored_backend_id() {
    let mut d = Daemon::start();
    let id = "kill-between";
    let pending = {
        let client_socket = d.socket.clone();
        std::thread::spawn(move || {
            let mut c = common::Client::connect(&client_socket).unwrap();
            c.send_raw(
                format!(
                    "{}\n",
                    json!({"action": "pay", "request_id": id, "amount": 4200,
                           "params": {"delay_ms": 5000}})
                )
                .as_bytes(),
            );
            c.read_line()
        })
    };
    // The backend has the call (its ledger row) before the delay: kill then.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while backend_ids(&d, id).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sale never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored = journaled_backend_id(&d, id);
    d.kill9();
    let _ = pending.join();
    d.restart();
    let v = d.await_result(id, Duration::from_secs(15), |v| v["code"] == 0);
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        backend_ids(&d, id),
        vec![stored.clone()],
        "charged again, or under another id"
    );
    assert_eq!(
        journaled_backend_id(&d, id),
        stored,
        "the stored id changed"
    );
}
