//! kill -9 in the middle of sales (DESIGN.md §2, "a sale is never lost and never charged
//! twice"): after a restart every interrupted operation is reconciled with the backend's own
//! ledger, every answer given before the crash is replayed byte-for-byte, nothing runs twice.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{send_in_thread, Daemon};
use serde_json::{json, Value};

/// Polls `cond` until it holds; panics naming `what` after `limit` (an upper bound only).
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the sim backend has received `id`, kills the daemon, restarts it.
fn crash_while_running(d: &mut Daemon, id: &str, pending: JoinHandle<Option<String>>) {
    wait_until(
        &format!("{id} reaches the sim backend"),
        Duration::from_secs(10),
        || d.sim_calls(id) == 1,
    );
    d.kill9();
    let answer = pending.join().expect("client thread");
    assert_eq!(answer, None, "the daemon answered before it was killed");
    d.restart();
}

/// Polls get_result until the outcome is no longer unknown (or 15 s pass).
fn settled(d: &Daemon, id: &str) -> Value {
    d.await_result(id, Duration::from_secs(15), |v| {
        v["error_type"] != "unknown_result_error"
    })
}

/// No journal entry is left in flight: neither in `status` counts nor in `results`.
fn assert_nothing_in_flight(d: &Daemon) {
    let status = d.request(json!({"action": "status"}));
    assert_eq!(status["data"]["journal"]["in_flight"], 0, "{status}");
    let results = d.request(json!({"action": "results", "limit": 1000}));
    let list = results["data"]["results"].as_array().expect("data.results");
    assert!(!list.is_empty(), "{results}");
    for e in list {
        assert_ne!(e["state"], "in_flight", "left in flight: {e}");
    }
}

#[test]
fn kill9_during_a_delayed_pay_is_reconciled_to_approved_and_charged_once() {
    let mut d = Daemon::start();
    let id = "crash-a";
    let req = json!({"action": "pay", "request_id": id, "amount": 1200,
        "metadata": {"till": "4"}, "params": {"delay_ms": 3000}});
    let pending = send_in_thread(&d, req.clone());
    crash_while_running(&mut d, id, pending);

    let v = d.await_result(id, Duration::from_secs(15), |v| v["code"] == 0);
    assert_eq!(v["code"], 0, "never reconciled to approved: {v}");
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(v["data"]["amount"], 1200, "{v}");
    assert_eq!(
        (&v["request_id"], &v["metadata"]["till"]),
        (&json!(id), &json!("4"))
    );

    let again = d.request(req);
    assert_eq!(again["code"], 3, "{again}");
    assert_eq!(again["error_type"], "duplicate_request_error", "{again}");
    assert_eq!(d.sim_calls(id), 1, "the backend was charged again");
    assert_nothing_in_flight(&d);
    let replay = d
        .client()
        .line(&json!({"action": "get_result", "request_id": id}).to_string());
    assert_eq!(
        replay,
        v.to_string(),
        "the reconciled answer is stored for good"
    );
}

#[test]
fn kill9_during_a_delayed_decline_is_reconciled_to_declined() {
    let mut d = Daemon::start();
    let id = "crash-b";
    let req = json!({"action": "pay", "request_id": id, "amount": 2051,
        "params": {"delay_ms": 3000}});
    let pending = send_in_thread(&d, req);
    crash_while_running(&mut d, id, pending);

    let v = settled(&d, id);
    let got = (&v["code"], &v["error_type"], &v["reason"]);
    assert_eq!(
        got,
        (&json!(1), &json!("default_error"), &json!("declined")),
        "{v}"
    );
    assert_eq!(d.sim_calls(id), 1);
    assert_nothing_in_flight(&d);
}

/// What one paying client saw before the crash.
struct Seen {
    answered: Vec<(String, String)>,
    /// Sent, but the connection ended before its answer.
    unanswered: Option<String>,
}

/// Pays one after another on its own connection until the daemon goes away or `stop`.
fn pay_loop(
    d: &Daemon,
    client: usize,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Seen> {
    let stream = UnixStream::connect(&d.socket).expect("connect");
    std::thread::spawn(move || {
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let mut seen = Seen {
            answered: Vec::new(),
            unanswered: None,
        };
        for n in 0.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let id = format!("q-{client}-{n}");
            let req = json!({"action": "pay", "request_id": id, "amount": 100 * n + 7});
            seen.unanswered = Some(id.clone());
            if w.write_all(format!("{req}\n").as_bytes()).is_err() {
                break;
            }
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
            let line = line.trim_end().to_owned();
            common::schema::check_answer(&line);
            let v: Value = serde_json::from_str(&line).expect("a JSON answer");
            assert_eq!(v["code"], 0, "{line}");
            seen.answered.push((id, line));
            seen.unanswered = None;
            count.fetch_add(1, Ordering::SeqCst);
        }
        seen
    })
}

#[test]
fn kill9_during_quick_pays_every_answer_given_is_replayed_byte_for_byte() {
    let mut d = Daemon::start();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| pay_loop(&d, c, count.clone(), stop.clone()))
        .collect();
    let enough = || count.load(Ordering::SeqCst) >= 120;
    let wait = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("120 pays answered", Duration::from_secs(60), enough)
    }));
    stop.store(wait.is_err(), Ordering::SeqCst);
    d.kill9();
    let seen: Vec<Seen> = clients
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    wait.expect("the clients made progress");
    d.restart();

    let mut c = d.client();
    let mut replayed = 0;
    for (id, line) in seen.iter().flat_map(|s| &s.answered) {
        let again = c.line(&json!({"action": "get_result", "request_id": id}).to_string());
        assert_eq!(&again, line, "{id} is not replayed byte-for-byte");
        assert_eq!(d.sim_calls(id), 1, "{id}");
        replayed += 1;
    }
    assert!(replayed >= 120, "only {replayed} answers seen");
    // A pay cut off by the kill: the journal and the backend's ledger must agree.
    for id in seen.iter().filter_map(|s| s.unanswered.as_deref()) {
        let v = settled(&d, id);
        let calls = d.sim_calls(id);
        match (calls, v["code"].as_i64()) {
            (0, Some(4)) => assert_eq!(v["reason"], "not_found", "{v}"),
            (0, Some(1)) => assert_eq!(v["reason"], "not_processed", "{v}"),
            (1, Some(0)) => assert_eq!(v["data"]["status"], "approved", "{v}"),
            _ => panic!("{id}: backend saw {calls} calls but the daemon answers {v}"),
        }
    }
    assert_nothing_in_flight(&d);
}

#[test]
fn the_log_after_restart_names_the_interrupted_request() {
    let mut d = Daemon::start();
    let id = "crash-d-7";
    let req = json!({"action": "pay", "request_id": id, "amount": 800,
        "params": {"delay_ms": 3000}});
    let pending = send_in_thread(&d, req);
    crash_while_running(&mut d, id, pending);

    // Start-up's summary line may come just after the socket answers.
    let log = d.log_with(
        "1 interrupted operations recovered",
        Duration::from_secs(10),
    );
    let line = log
        .lines()
        .find(|l| l.contains("interrupted") && l.contains(&format!("request_id={id}")))
        .unwrap_or_else(|| panic!("no line names {id} as interrupted:\n{log}"));
    assert!(line.contains("provider=sim"), "{line}");
    assert!(line.contains("action=pay"), "{line}");
    assert!(
        log.contains("1 interrupted operations recovered"),
        "the ready line counts it:\n{log}"
    );
}

#[test]
fn kill9_during_a_delayed_refund_is_reconciled_and_counts_against_the_pay() {
    let mut d = Daemon::start();
    let paid = d.request(json!({"action": "pay", "request_id": "rf-pay", "amount": 1000}));
    assert_eq!(paid["code"], 0, "{paid}");
    let req = json!({"action": "refund", "request_id": "rf-1", "amount": 400,
        "primary_transaction": paid["data"], "params": {"delay_ms": 3000}});
    let pending = send_in_thread(&d, req);
    crash_while_running(&mut d, "rf-1", pending);

    let v = d.await_result("rf-1", Duration::from_secs(15), |v| v["code"] == 0);
    assert_eq!(v["data"]["status"], "refunded", "{v}");
    assert_eq!(v["data"]["amount"], 400, "{v}");
    assert_eq!(d.sim_calls("rf-1"), 1);
    // 600 are left: more is refused, exactly that is refunded.
    let refund = |id: &str, amount: u64| {
        d.request(
            json!({"action": "refund", "request_id": id, "amount": amount,
            "primary_transaction": paid["data"]}),
        )
    };
    let over = refund("rf-2", 700);
    assert_eq!(
        over["code"], 1,
        "the reconciled refund was not counted: {over}"
    );
    let rest = refund("rf-3", 600);
    assert_eq!(rest["data"]["status"], "refunded", "{rest}");
    assert_nothing_in_flight(&d);
}
