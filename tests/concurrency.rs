//! Many clients at once (DESIGN.md §2): every request answered once and correctly, one
//! request_id executed once however many clients race for it, and answers in request order.

mod common;

use std::sync::Barrier;

use common::{Client, Daemon};
use serde_json::{json, Value};

const CLIENTS: usize = 50;
const PAYS_EACH: usize = 4;

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

fn get_line(c: &mut Client, id: &str) -> String {
    c.line(&json!({"action": "get_result", "request_id": id}).to_string())
}

#[test]
fn fifty_clients_paying_at_once_are_all_approved_and_replayed_byte_for_byte() {
    let d = Daemon::start();
    let start = Barrier::new(CLIENTS);
    let per_client: Vec<Vec<(String, u64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let (d, start) = (&d, &start);
                s.spawn(move || {
                    let mut c = d.client();
                    start.wait();
                    let mut done = Vec::new();
                    for k in 0..PAYS_EACH {
                        let id = format!("c{t}-{k}");
                        // Ends in 00..49: never a sim test amount (51, 91).
                        let amount = (100 * (k + 1) + t % 50) as u64;
                        let req = json!({"action": "pay", "request_id": id, "amount": amount});
                        let line = c.line(&req.to_string());
                        done.push((id, amount, line));
                    }
                    for (id, _, line) in &done {
                        assert_eq!(&get_line(&mut c, id), line, "replay of {id}");
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut c = d.client();
    for (id, amount, line) in per_client.iter().flatten() {
        let v = parse(line);
        assert_eq!(v["code"], 0, "{line}");
        assert_eq!(v["request_id"], id.as_str(), "{line}");
        assert_eq!(v["data"]["amount"], *amount, "{line}");
        assert_eq!(v["data"]["status"], "approved", "{line}");
        // Replayed once more from a different connection, after everything settled.
        assert_eq!(&get_line(&mut c, id), line);
    }
    let status = parse(&c.line(r#"{"action":"status"}"#));
    let j = &status["data"]["journal"];
    assert_eq!(j["entries"], CLIENTS * PAYS_EACH, "{status}");
    assert_eq!(
        (j["in_flight"].as_u64(), j["unknown"].as_u64()),
        (Some(0), Some(0)),
        "{j}"
    );
    assert_eq!(d.sim_calls("c17-3"), 1);
}

#[test]
fn fifty_clients_racing_one_request_id_execute_it_exactly_once() {
    let d = Daemon::start();
    let start = Barrier::new(CLIENTS);
    let req = json!({"action": "pay", "request_id": "race-1", "amount": 4200}).to_string();
    let lines: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (d, start, req) = (&d, &start, &req);
                s.spawn(move || {
                    let mut c = d.client();
                    start.wait();
                    c.line(req)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (won, lost): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| parse(l)["code"] == 0);
    assert_eq!(won.len(), 1, "exactly one winner: {lines:#?}");
    for line in &lost {
        let v = parse(line);
        assert_eq!(v["code"], 3, "{line}");
        assert_eq!(v["error_type"], "duplicate_request_error", "{line}");
        assert_eq!(v["reason"], "duplicate_request", "{line}");
        assert_eq!(v["request_id"], "race-1", "{line}");
    }
    assert_eq!(d.sim_calls("race-1"), 1, "the backend was charged once");
    assert_eq!(&get_line(&mut d.client(), "race-1"), won[0]);
}

#[test]
fn twenty_pipelined_lines_in_one_write_get_twenty_answers_in_order() {
    let d = Daemon::start();
    let mut c = d.client();
    // Every fourth line asks get_result of the line before it: served strictly in order, it
    // must see that pay already done.
    let mut batch = String::new();
    let mut expect_ids = Vec::new();
    for i in 0..20 {
        let req = if i % 4 == 3 {
            expect_ids.push(format!("pipe-{}", i - 1));
            json!({"action": "get_result", "request_id": format!("pipe-{}", i - 1)})
        } else {
            expect_ids.push(format!("pipe-{i}"));
            json!({"action": "pay", "request_id": format!("pipe-{i}"), "amount": 300 + i})
        };
        batch.push_str(&format!("{req}\n"));
    }
    c.send_raw(batch.as_bytes());
    let answers: Vec<String> = (0..20).map(|_| c.read_line().expect("an answer")).collect();
    for (i, (line, id)) in answers.iter().zip(&expect_ids).enumerate() {
        let v = parse(line);
        assert_eq!(
            v["request_id"],
            id.as_str(),
            "answer {i} out of order: {line}"
        );
        assert_eq!(v["code"], 0, "{line}");
        if i % 4 == 3 {
            assert_eq!(
                line,
                &answers[i - 1],
                "get_result {i} replays the pay before it"
            );
        } else {
            assert_eq!(v["data"]["amount"], 300 + i, "{line}");
        }
    }
}

#[test]
fn a_slow_request_keeps_later_pipelined_answers_behind_it() {
    let d = Daemon::start();
    let mut c = d.client();
    let slow = json!({"action": "pay", "request_id": "slow", "amount": 100,
        "params": {"delay_ms": 700}});
    let bad = json!({"action": "pay", "request_id": "bad", "amount": -1});
    let fast = json!({"action": "pay", "request_id": "fast", "amount": 200});
    c.send_raw(format!("{slow}\n{bad}\n{fast}\n").as_bytes());
    let ids: Vec<Value> = (0..3)
        .map(|_| parse(&c.read_line().expect("an answer"))["request_id"].clone())
        .collect();
    assert_eq!(ids, [json!("slow"), json!("bad"), json!("fast")]);
}

#[test]
fn concurrent_refunds_never_exceed_the_pay() {
    let d = Daemon::start();
    let pay = d.request(json!({"action": "pay", "request_id": "rr-pay", "amount": 1000}));
    let primary = pay["data"].clone();
    const RACERS: usize = 10;
    let start = Barrier::new(RACERS);
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|i| {
                let (d, start, primary) = (&d, &start, &primary);
                s.spawn(move || {
                    let mut c = d.client();
                    let req = json!({"action": "refund", "request_id": format!("rr-{i}"),
                        "amount": 300, "primary_transaction": primary});
                    start.wait();
                    parse(&c.line(&req.to_string()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let approved = answers.iter().filter(|v| v["code"] == 0).count();
    for v in answers.iter().filter(|v| v["code"] != 0) {
        assert_eq!(v["reason"], "invalid_request", "{v}");
    }
    assert_eq!(
        approved, 3,
        "1000 holds three refunds of 300, not {approved}: {answers:#?}"
    );
    let shift = d.request(json!({"action": "close_shift"}));
    assert_eq!(
        shift["data"]["refund"],
        json!({"count": 3, "total": 900}),
        "{shift}"
    );
}

#[test]
fn a_pay_whose_client_hangs_up_still_completes_and_is_recorded() {
    let d = Daemon::start();
    {
        let mut c = d.client();
        let req = json!({"action": "pay", "request_id": "gone", "amount": 800,
            "params": {"delay_ms": 500}});
        c.send_raw(format!("{req}\n").as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(100));
    } // the POS goes away while the sale runs
    let v = d.await_result("gone", std::time::Duration::from_secs(10), |v| {
        v["code"] == 0
    });
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(v["data"]["amount"], 800, "{v}");
    assert_eq!(d.sim_calls("gone"), 1);
}
