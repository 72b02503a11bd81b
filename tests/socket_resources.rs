//! Resources at the socket (issue 11 §5): clients that connect and say nothing, send half a
//! line and stall, never read their answers, send a 100 MB line, or pipeline 1,000 requests.
//! The POS is always served, no sale is lost, and the daemon's memory stays bounded: each test
//! prints the daemon's peak RSS (VmHWM) and checks it against a generous bound.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Client, Daemon};
use serde_json::{json, Value};

/// Far above what the daemon needs (about 20 MiB), far below what buffering a 100 MB line or
/// thousands of connections' worth of data would take.
const RSS_BOUND_KIB: u64 = 96 * 1024;

/// A field of /proc/PID/status in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn report_memory(d: &Daemon, what: &str) {
    let (peak, now) = (status_kib(d.pid(), "VmHWM"), status_kib(d.pid(), "VmRSS"));
    println!("{what}: daemon peak RSS {peak} KiB, RSS now {now} KiB");
    assert!(
        peak < RSS_BOUND_KIB,
        "{what}: peak RSS {peak} KiB is over {RSS_BOUND_KIB} KiB"
    );
}

/// A POS connecting now: served, with its sale approved. Prints how long it took and returns
/// the connection, still open.
fn pos_pays(d: &Daemon, id: &str) -> Client {
    let t = Instant::now();
    let mut c = d.client();
    let v = c.request(&json!({"action": "pay", "request_id": id, "amount": 100}));
    println!("{id}: a new POS connection was served in {:?}", t.elapsed());
    assert_eq!(v["code"], 0, "{id}: {v}");
    assert_eq!(d.sim_calls(id), 1, "{id}");
    c
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn send_pay(c: &mut Client, id: &str, delay_ms: u64) {
    c.send_raw(
        format!(
            "{}\n",
            json!({"action": "pay", "request_id": id, "amount": 100,
                   "params": {"delay_ms": delay_ms}})
        )
        .as_bytes(),
    );
}

#[test]
fn ten_thousand_silent_connections_do_not_lock_the_pos_out_nor_cut_a_running_sale() {
    raise_fd_limit();
    let d = Daemon::start();
    // A sale running on its own connection while the flood comes: never closed.
    let mut running = d.client();
    send_pay(&mut running, "during-flood", 2000);
    let mut silent = Vec::with_capacity(10_000);
    let t = Instant::now();
    for _ in 0..10_000 {
        silent.push(UnixStream::connect(&d.socket).expect("connect"));
    }
    println!("10000 silent connections made in {:?}", t.elapsed());
    pos_pays(&d, "pos-after-silent-flood");
    let v: Value = serde_json::from_str(&running.read_line().expect("the running sale")).unwrap();
    assert_eq!(
        (v["code"].clone(), v["request_id"].clone()),
        (json!(0), json!("during-flood"))
    );
    report_memory(&d, "10000 silent connections");
}

#[test]
fn half_lines_that_stall_do_not_lock_the_pos_out() {
    let d = Daemon::start();
    let mut stalled = Vec::new();
    for _ in 0..600 {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(br#"{"action":"pay","amount":1"#).unwrap();
        stalled.push(s);
    }
    pos_pays(&d, "pos-after-half-lines");
    report_memory(&d, "600 stalled half lines");
}

#[test]
fn a_client_that_never_reads_its_answers_neither_grows_the_daemon_nor_locks_the_pos_out() {
    let d = Daemon::start_with(Some("[api]\nmax_connections = 4\n"), &[]);
    let socket = d.socket.clone();
    // Writes status requests and never reads: the daemon's answers pile up until its writes
    // block. The writer stops when the daemon closes the connection.
    let writer = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&socket).unwrap();
        // A test that fails must not hang: a write blocked this long ends the writer.
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let line = b"{\"action\":\"status\"}\n";
        let mut sent = 0u64;
        while sent < 1_000_000 && s.write_all(line).is_ok() {
            sent += 1;
        }
        sent
    });
    // Let it fill its buffers, then take every slot with new clients that stay connected.
    std::thread::sleep(Duration::from_millis(500));
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(pos_pays(&d, &format!("pos-{i}-beside-a-non-reader")));
    }
    let sent = writer.join().unwrap();
    assert!(sent < 1_000_000, "the non-reading client was never closed");
    println!("the non-reading client got {sent} requests in before it was closed");
    // Only the non-reader and the idlest POS connections were closed: the newest still serve.
    let mut newest = clients.pop().unwrap();
    let v = newest.request(&json!({"action": "status"}));
    assert_eq!(v["code"], 0, "{v}");
    report_memory(&d, "a client that never reads");
}

#[test]
fn a_100_mb_line_is_refused_and_closes_only_its_own_connection() {
    let d = Daemon::start();
    let mut bystander = d.client();
    let socket = d.socket.clone();
    let sender = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&socket).unwrap();
        let chunk = vec![b'a'; 64 << 10];
        let mut sent = 0usize;
        while sent < 100 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        (sent, answer)
    });
    let (sent, answer) = sender.join().unwrap();
    println!(
        "the daemon closed the connection after {} KiB of the 100 MB line",
        sent >> 10
    );
    assert!(sent < 100 << 20, "the daemon read the whole 100 MB line");
    let first = answer.lines().next().expect("an answer");
    common::schema::check_answer(first);
    let v: Value = serde_json::from_str(first).unwrap();
    assert_eq!(v["reason"], "invalid_request", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("longer than"),
        "{v}"
    );
    let v = bystander.request(&json!({"action": "pay", "request_id": "bystander", "amount": 100}));
    assert_eq!(v["code"], 0, "{v}");
    report_memory(&d, "a 100 MB line");
}

#[test]
fn a_thousand_pipelined_requests_are_all_answered_in_order_and_charged_once() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut batch = String::new();
    for i in 0..1000 {
        batch.push_str(
            &json!({"action": "pay", "request_id": format!("pipe-{i}"), "amount": 100 * (i + 1)})
                .to_string(),
        );
        batch.push('\n');
    }
    let t = Instant::now();
    let socket_writer = {
        let mut w = c.try_clone_stream();
        std::thread::spawn(move || w.write_all(batch.as_bytes()).unwrap())
    };
    for i in 0..1000 {
        let v: Value = serde_json::from_str(&c.read_line().expect("an answer")).unwrap();
        assert_eq!(v["request_id"], format!("pipe-{i}"), "out of order: {v}");
        assert_eq!(v["code"], 0, "{v}");
        assert_eq!(v["data"]["amount"], 100 * (i + 1), "{v}");
    }
    socket_writer.join().unwrap();
    println!("1000 pipelined pays answered in {:?}", t.elapsed());
    for i in [0, 499, 999] {
        assert_eq!(d.sim_calls(&format!("pipe-{i}")), 1);
    }
    report_memory(&d, "1000 pipelined requests");
}
