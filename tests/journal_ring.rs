//! The result journal is a ring (DESIGN.md §2): it keeps the last `journal.capacity` results,
//! evicts the oldest final ones, and never evicts an unresolved one.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Daemon};
use serde_json::{json, Value};

fn send(c: &mut Client, req: Value) -> Value {
    let line = c.line(&req.to_string());
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

fn get(c: &mut Client, id: &str) -> Value {
    send(c, json!({"action": "get_result", "request_id": id}))
}

/// Starts a pay the sim holds for `delay_ms` on its own connection, and waits until the
/// journal has it in flight. The connection is returned so the request stays open.
fn start_slow_pay(d: &Daemon, id: &str, delay_ms: u64) -> Client {
    let mut running = d.client();
    let req = json!({"action": "pay", "request_id": id, "amount": 100,
        "params": {"delay_ms": delay_ms}});
    running.send_raw(format!("{req}\n").as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut c = d.client();
    loop {
        let v = get(&mut c, id);
        if v["reason"] == "in_progress" {
            return running;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became in_progress: {v}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn journal(c: &mut Client) -> Value {
    send(c, json!({"action": "status"}))["data"]["journal"].clone()
}

#[test]
fn default_ring_keeps_the_newest_500_and_never_evicts_the_one_in_flight() {
    // The held pay must stay unresolved while the ring fills. With the sim's default timeout
    // (30 s) it turned final on a slow machine, so the test bounded its own run time (< 29 s).
    // Now the sim waits an hour and the pay ten minutes (its longest delay): the pay is in flight
    // for as long as any run takes, and the checks at the end (in_progress, in_flight 1) say so directly.
    let d = Daemon::start_with(Some("[providers.sim]\ntimeout_ms = 3600000\n"), &[]);
    let _running = start_slow_pay(&d, "held", 600_000);
    let mut c = d.client();
    let mut answers = Vec::new();
    for i in 0..510 {
        let line = c.line(
            &json!({"action": "pay", "request_id": format!("q-{i}"), "amount": 1000 + i % 50})
                .to_string(),
        );
        assert!(line.contains(r#""code":0"#), "q-{i}: {line}");
        answers.push(line);
    }
    // 511 entries, 500 kept: the 11 oldest final ones go, the unresolved one stays.
    for i in 0..11 {
        let v = get(&mut c, &format!("q-{i}"));
        assert_eq!(v["code"], 4, "q-{i} should be evicted: {v}");
        assert_eq!(v["error_type"], "result_not_found_error", "{v}");
    }
    for (i, answer) in answers.iter().enumerate().skip(11) {
        let again =
            c.line(&json!({"action": "get_result", "request_id": format!("q-{i}")}).to_string());
        assert_eq!(&again, answer, "q-{i} should be replayed");
    }
    let held = get(&mut c, "held");
    assert_eq!(
        held["reason"], "in_progress",
        "the unresolved pay is never evicted: {held}"
    );
    let j = journal(&mut c);
    assert_eq!(j["capacity"], 500, "{j}");
    assert_eq!(j["entries"], 500, "{j}");
    assert_eq!(j["in_flight"], 1, "{j}");
}

#[test]
fn capacity_5_keeps_exactly_the_newest_five() {
    let d = Daemon::start_with(Some("[journal]\ncapacity = 5\n"), &[]);
    let mut c = d.client();
    // Mixed outcomes: a decline is a final result and takes its place in the ring too.
    let amounts = [100, 200, 351, 400, 500, 651, 700, 800];
    for (i, amount) in amounts.iter().enumerate() {
        send(
            &mut c,
            json!({"action": "pay", "request_id": format!("c-{i}"), "amount": amount}),
        );
    }
    let survivors: Vec<usize> = (0..amounts.len())
        .filter(|i| get(&mut c, &format!("c-{i}"))["code"] != 4)
        .collect();
    assert_eq!(survivors, [3, 4, 5, 6, 7]);
    assert_eq!(
        get(&mut c, "c-5")["reason"],
        "declined",
        "the decline is replayed"
    );
    let j = journal(&mut c);
    assert_eq!(
        (j["capacity"].as_u64(), j["entries"].as_u64()),
        (Some(5), Some(5)),
        "{j}"
    );
    let listed = send(&mut c, json!({"action": "results", "limit": 100}));
    let ids = common::result_ids(&listed);
    assert_eq!(ids, ["c-7", "c-6", "c-5", "c-4", "c-3"], "{listed}");
}

#[test]
fn capacity_5_evicts_around_an_unresolved_entry() {
    // The held pay stays in flight for ten minutes, whatever the machine's speed (it was 20 s).
    let d = Daemon::start_with(
        Some("[journal]\ncapacity = 5\n[providers.sim]\ntimeout_ms = 3600000\n"),
        &[],
    );
    let _running = start_slow_pay(&d, "held", 600_000);
    let mut c = d.client();
    for i in 0..8 {
        send(
            &mut c,
            json!({"action": "pay", "request_id": format!("c-{i}"), "amount": 300}),
        );
    }
    // The held entry is the oldest but unresolved: the ring keeps it plus the newest four.
    let survivors: Vec<usize> = (0..8)
        .filter(|i| get(&mut c, &format!("c-{i}"))["code"] != 4)
        .collect();
    assert_eq!(survivors, [4, 5, 6, 7]);
    assert_eq!(get(&mut c, "held")["reason"], "in_progress");
    let j = journal(&mut c);
    assert_eq!(
        (j["entries"].as_u64(), j["in_flight"].as_u64()),
        (Some(5), Some(1)),
        "{j}"
    );
}
