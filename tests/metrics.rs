//! The metrics endpoint (issue 10, "Also"), through the real binary: sales, unknown outcomes,
//! reconciliation, journal commits and a paired reader move the figures a scraper reads; bad
//! and stalled clients hurt neither the endpoint nor the API; off by default; a LAN address
//! refused by `config check`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::emulator::Emulator;
use common::scrape::{exchange, metrics_addr, scrape, scrape_until, tcp, Scrape};
use common::{send_in_thread, Daemon};
use serde_json::json;

const SIM_PAY: &str = "posbridge_operations_total";

fn sim(outcome: &str) -> [(&str, &str); 3] {
    [("provider", "sim"), ("action", "pay"), ("outcome", outcome)]
}

fn metrics_daemon(extra: &str) -> Daemon {
    Daemon::start_with(
        Some(&format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n[providers.sim]\nstatus_poll_ms = [1500]\n{extra}"
        )),
        &[],
    )
}

#[test]
fn sales_unknown_outcomes_and_commits_move_the_figures() {
    let d = metrics_daemon("");
    let addr = metrics_addr(&d);
    let before = scrape(addr);
    assert_eq!(before.value(SIM_PAY, &sim("approved")), 0.0, "seeded at 0");
    assert_eq!(
        before.value(
            "posbridge_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(before.value("posbridge_operations_unknown", &[]), 0.0);
    assert_eq!(before.value("posbridge_journal_writable", &[]), 1.0);
    assert_eq!(before.value("posbridge_watchdog_withheld", &[]), 0.0);
    assert_eq!(before.value("posbridge_watchdog_enabled", &[]), 0.0);
    let commits = |s: &Scrape| s.value("posbridge_journal_commit_duration_seconds_count", &[]);

    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 151}))["reason"],
        "declined"
    );
    let after = scrape(addr);
    assert_eq!(after.value(SIM_PAY, &sim("approved")), 1.0);
    assert_eq!(after.value(SIM_PAY, &sim("declined")), 1.0);
    assert!(
        commits(&after) >= commits(&before) + 4.0,
        "two intents and two outcomes were committed:\n{}",
        after.text
    );
    let le_inf = after.value(
        "posbridge_journal_commit_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(le_inf, commits(&after));
    assert_eq!(
        after.value("posbridge_journal_commit_failures_total", &[]),
        0.0
    );
    // SQLite's own memory, and each connection's page cache (the sim's ledger too): figures for
    // the operator, no bound asserted here (the benchmark prints them beside the RSS).
    assert!(after.value("posbridge_sqlite_memory_bytes", &[]) > 0.0);
    for connection in ["journal_writer", "journal_reader", "provider_sim"] {
        let cache = after.get(
            "posbridge_sqlite_cache_bytes",
            &[("connection", connection)],
        );
        assert!(
            cache.is_some_and(|b| b > 0.0),
            "{connection}:\n{}",
            after.text
        );
    }

    // A sale whose outcome is unknown (sim: ..91), reconciled 1.5 s later.
    let v = d.request(json!({"action": "pay", "amount": 191, "request_id": "t91"}));
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    let unknown = scrape(addr);
    assert_eq!(unknown.value("posbridge_operations_unknown", &[]), 1.0);
    assert_eq!(unknown.value("posbridge_reconcile_queue_length", &[]), 1.0);
    assert_eq!(
        unknown.value(
            "posbridge_operations_went_unknown_total",
            &[("provider", "sim"), ("action", "pay")]
        ),
        1.0
    );
    let age = unknown.value("posbridge_operations_unknown_oldest_age_seconds", &[]);
    assert!((0.0..30.0).contains(&age), "{age}");
    assert_eq!(unknown.value(SIM_PAY, &sim("approved")), 1.0, "not yet");
    let settled = scrape_until(addr, "reconciled", |s| {
        s.value("posbridge_operations_unknown", &[]) == 0.0
            && s.value("posbridge_reconcile_queue_length", &[]) == 0.0
    });
    assert_eq!(settled.value(SIM_PAY, &sim("approved")), 2.0);
    assert_eq!(
        settled.value("posbridge_operations_unknown_oldest_age_seconds", &[]),
        0.0
    );

    // In flight while it runs, back to 0 after.
    let running = send_in_thread(
        &d,
        json!({"action": "pay", "amount": 300, "params": {"delay_ms": 1500}}),
    );
    scrape_until(addr, "in flight", |s| {
        s.value("posbridge_operations_in_flight", &[]) == 1.0
    });
    assert!(running.join().unwrap().unwrap().contains("\"code\":0"));
    let done = scrape(addr);
    assert_eq!(done.value("posbridge_operations_in_flight", &[]), 0.0);
    assert_eq!(done.value(SIM_PAY, &sim("approved")), 3.0);
}

/// The backend's share of a sale: a pay the sim takes 300 ms over lands above the 0.25 s bucket
/// of `posbridge_provider_call_duration_seconds`, and its sum grows by that. (The upper bounds
/// are the 5 s bucket, far above the 300 ms, so that a loaded machine cannot fail the test.)
#[test]
fn each_backend_call_is_timed_by_provider_and_action() {
    let d = metrics_daemon("");
    let addr = metrics_addr(&d);
    let pay = [("provider", "sim"), ("action", "pay")];
    let call = |s: &Scrape, what: &str| {
        s.get(
            &format!("posbridge_provider_call_duration_seconds_{what}"),
            &pay,
        )
        .unwrap_or(0.0)
    };
    let bucket = |s: &Scrape, le: &str| {
        s.value(
            "posbridge_provider_call_duration_seconds_bucket",
            &[pay[0], pay[1], ("le", le)],
        )
    };
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    let quick = scrape(addr);
    assert_eq!(call(&quick, "count"), 1.0, "{}", quick.text);
    assert_eq!(bucket(&quick, "0.25"), 1.0, "{}", quick.text);
    let v = d.request(json!({"action": "pay", "amount": 100, "params": {"delay_ms": 300}}));
    assert_eq!(v["code"], 0, "{v}");
    let slow = scrape(addr);
    assert_eq!(call(&slow, "count"), 2.0);
    assert_eq!(bucket(&slow, "0.25"), 1.0, "{}", slow.text);
    assert_eq!(bucket(&slow, "5"), 2.0, "{}", slow.text);
    assert_eq!(bucket(&slow, "+Inf"), 2.0);
    let took = call(&slow, "sum") - call(&quick, "sum");
    assert!((0.3..5.0).contains(&took), "the slow call took {took} s");
}

#[test]
fn a_paired_reader_is_shown_up_then_down() {
    let d = metrics_daemon("");
    let addr = metrics_addr(&d);
    let mut emu = Emulator::start("card-reader", d.dir.path(), "reader", &["--serial", "R7"]);
    let out = d.cli(&["pair", &emu.address(), "--role", "card-reader"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let link = [
        ("device", "card-reader-R7"),
        ("role", "card-reader"),
        ("transport", "serial"),
    ];
    scrape_until(addr, "reader up", |s| {
        s.get("posbridge_device_connected", &link) == Some(1.0)
    });
    emu.kill9();
    let down = scrape_until(addr, "reader down", |s| {
        s.get("posbridge_device_connected", &link) == Some(0.0)
    });
    assert!(
        !down.text.contains(&emu.link.display().to_string()),
        "the page names devices by id, not by their address"
    );
}

#[test]
fn a_unix_socket_endpoint_serves_the_same_page() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("metrics.sock");
    let d = Daemon::start_with(
        Some(&format!(
            "[metrics]\nlisten = \"unix:{}\"\n",
            sock.display()
        )),
        &[],
    );
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // HTTP/1.1 (it was 1.0 before hyper): hyper answers a 1.0 request in 1.0 (see below).
    let answer = exchange(&mut s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(Scrape::parse(body).value(SIM_PAY, &sim("approved")), 1.0);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "for the daemon's user and group only");
}

#[test]
fn bad_huge_and_silent_clients_hurt_neither_the_endpoint_nor_the_api() {
    let d = metrics_daemon("");
    let addr = metrics_addr(&d);
    let status = |request: &[u8]| {
        let answer = exchange(&mut tcp(addr), request);
        answer.lines().next().unwrap_or("").to_owned()
    };
    assert!(status(b"\x16\x03\x01garbage\r\n\r\n").contains(" 400 "));
    assert!(status(b"POST /metrics HTTP/1.1\r\n\r\n").contains(" 405 "));
    assert!(status(b"GET /admin HTTP/1.1\r\n\r\n").contains(" 404 "));
    assert!(status(b"HEAD /metrics HTTP/1.1\r\n\r\n").contains(" 200 "));
    // A request line of a megabyte: refused after 8 KiB, the rest unread.
    let mut huge = b"GET /".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    let mut s = tcp(addr);
    let _ = s.write_all(&huge);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.200}"
    );

    // Headers that never end, a little over the limit: a 431 answer, then closed.
    let mut s = tcp(addr);
    let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while head.len() < 9 * 1024 {
        head.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    s.write_all(&head).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");

    // Clients that connect and say nothing: more of them than the endpoint serves at once.
    // The ones it serves are held until the exchange deadline (5 s) and then closed.
    let silent: Vec<TcpStream> = (0..10).map(|_| tcp(addr)).collect();
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    // The API is not held up: the pay was answered while silent clients still held the
    // endpoint (an event order, not a stopwatch: a pay that waited for them would only be
    // answered after they were all closed).
    let still_open = silent
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            let open = matches!(s.peek(&mut [0u8; 1]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            s.set_nonblocking(false).unwrap();
            open
        })
        .count();
    assert!(
        still_open >= 1,
        "the pay was answered only after every silent client was closed"
    );
    // Each is closed by the endpoint (end of file, nothing sent), not left open: a read that
    // times out (a generous 60 s) is a failure, not a close.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("a silent client got {n} bytes"),
            Err(e) => panic!("a silent client was never closed: {e}"),
        }
    }
    let s = scrape(addr);
    assert_eq!(s.value(SIM_PAY, &sim("approved")), 1.0);
    assert_eq!(d.request(json!({"action": "status"}))["code"], 0);
}

/// Inodes of the TCP sockets `pid` listens on (from /proc).
fn tcp_listening(pid: i32) -> Vec<String> {
    let mut fds = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(t) = std::fs::read_link(e.path()) {
            let t = t.display().to_string();
            if let Some(inode) = t.strip_prefix("socket:[") {
                fds.push(inode.trim_end_matches(']').to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN; the inode is the tenth column.
            if cols.len() > 9 && cols[3] == "0A" && fds.contains(&cols[9].to_owned()) {
                out.push(line.to_owned());
            }
        }
    }
    out
}

#[test]
fn metrics_are_off_by_default() {
    let d = Daemon::start();
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    assert!(!d.log().contains("metrics on"), "{}", d.log());
    assert_eq!(tcp_listening(d.pid()), Vec::<String>::new());
    let on = metrics_daemon("");
    metrics_addr(&on);
    assert_eq!(
        tcp_listening(on.pid()).len(),
        1,
        "the check sees a listener"
    );
}

#[test]
fn a_port_already_taken_leaves_sales_working_and_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let d = Daemon::start_with(
        Some(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n")),
        &[],
    );
    assert_eq!(
        d.request(json!({"action": "pay", "amount": 100}))["code"],
        0
    );
    assert!(d.log().contains("metrics are off"), "{}", d.log());
}

#[test]
fn config_check_refuses_a_lan_address_naming_the_key_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("posbridge.toml");
    std::fs::write(&file, "[metrics]\nlisten = \"0.0.0.0:9464\"\n").unwrap();
    let out = common::config_check(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("metrics.listen"), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("sales figures"), "{err}");
    std::fs::write(&file, "[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
    let out = common::config_check(&file);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("metrics on 127.0.0.1:9464"));
}

/// What replaced the unit test of the hand-written parser's `route`: the same cases, through a
/// real TCP connection, with the exact bytes of each refusal (status, headers, body).
#[test]
fn only_get_and_head_of_metrics_are_served_and_refusals_are_short_and_exact() {
    let d = metrics_daemon("");
    let addr = metrics_addr(&d);
    let ask = |request: &[u8]| exchange(&mut tcp(addr), request);
    let refused = |status: &str, allow: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n{allow}\r\n{body}",
            body.len()
        )
    };
    let not_found = refused("404 Not Found", "", "the metrics are at /metrics\n");
    let not_allowed = refused(
        "405 Method Not Allowed",
        "Allow: GET, HEAD\r\n",
        "only GET /metrics\n",
    );
    assert_eq!(ask(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), not_found);
    assert_eq!(ask(b"GET /metricsx HTTP/1.1\r\n\r\n"), not_found);
    assert_eq!(ask(b"POST /metrics HTTP/1.1\r\n\r\n"), not_allowed);
    assert_eq!(ask(b"DELETE /admin HTTP/1.1\r\n\r\n"), not_allowed);
    for garbage in [
        &b"\x00\xff garbage\r\n\r\n"[..],
        b"GET /metrics SMTP/1.0\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
    ] {
        let answer = ask(garbage);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
    }

    // HEAD (a query string is ignored): the head of the page, no body.
    let head = ask(b"HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let (fields, body) = head.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, "", "{head}");
    let length: usize = fields
        .split("\r\nContent-Length: ")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {fields}"));
    assert!(length > 1000, "the page's length, not 0: {fields}");
    assert_eq!(
        fields,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {length}\r\nConnection: close"
        )
    );
    // GET: the same head, and as many bytes of body as it says.
    let get = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (fields, body) = get.split_once("\r\n\r\n").unwrap();
    assert!(fields.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: "), "{fields}");
    assert!(
        fields.ends_with(&format!("{}\r\nConnection: close", body.len())),
        "{fields}"
    );
    assert!(
        body.starts_with("# HELP posbridge_build_info "),
        "{body:.200}"
    );

    // A request hyper cannot parse, or a head over 8 KiB: hyper's own short answer, the reason
    // in the status line and no body (the hand-written parser sent a line of text).
    let refused_by_hyper = |status: &str| {
        format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    };
    assert_eq!(
        ask(b"GET /metrics\r\n\r\n"),
        refused_by_hyper("400 Bad Request")
    );
    let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
    // One field of 9 KiB: under hyper's own limit of 100 fields, over ours of 8 KiB.
    long.extend(
        b"X-Pad: "
            .iter()
            .chain(&[b'a'; 9 * 1024])
            .chain(b"\r\n\r\n"),
    );
    assert_eq!(
        ask(&long),
        refused_by_hyper("431 Request Header Fields Too Large")
    );
    // Not origin form (`*`, `http://host/metrics`): refused as before hyper.
    let not_http = refused("400 Bad Request", "", "not an HTTP request; GET /metrics\n");
    assert_eq!(ask(b"GET http://x/metrics HTTP/1.1\r\n\r\n"), not_http);
    assert_eq!(ask(b"OPTIONS * HTTP/1.1\r\n\r\n"), not_http);
    // An HTTP/1.0 request is answered in HTTP/1.0: hyper always answers a 1.0 client in its
    // own version (the hand-written parser said HTTP/1.1); the rest of the head is the same.
    let old = ask(b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        old.starts_with("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4"),
        "{old:.200}"
    );
}
