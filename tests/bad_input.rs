//! Bad input (DESIGN.md §2): every malformed line gets exactly one `invalid_request` answer that
//! names the field, the connection stays usable, and the daemon is unaffected.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Client, Daemon};
use serde_json::{json, Value};

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

/// A valid pay on `c` after a refused line: the connection must still serve it.
fn assert_still_serves(c: &mut Client, n: usize, after: &str) {
    let id = format!("ok-{n}");
    let v = parse(&c.line(&json!({"action": "pay", "request_id": id, "amount": 100}).to_string()));
    assert_eq!(v["code"], 0, "pay after {after}: {v}");
    assert_eq!(
        v["request_id"],
        id.as_str(),
        "answers stay in order after {after}: {v}"
    );
}

fn assert_invalid(v: &Value, what: &str) {
    assert_eq!(v["code"], 1, "{what}: {v}");
    assert_eq!(v["error_type"], "default_error", "{what}: {v}");
    assert_eq!(v["reason"], "invalid_request", "{what}: {v}");
}

/// Each line is answered `invalid_request` with a message starting `<field>:`.
#[test]
fn each_bad_field_is_named_and_the_connection_stays_usable() {
    let long_id = "x".repeat(65);
    let cases: Vec<(&str, Value)> = vec![
        ("amount", json!({"action": "pay", "amount": "100"})),
        ("amount", json!({"action": "pay", "amount": -5})),
        ("amount", json!({"action": "pay", "amount": 0})),
        ("amount", json!({"action": "pay", "amount": 1.5})),
        ("amount", json!({"action": "pay"})),
        (
            "amount",
            json!({"action": "refund", "primary_transaction": {}}),
        ),
        (
            "action",
            json!({"action": "refund_everything", "amount": 100}),
        ),
        ("action", json!({"amount": 100})),
        ("action", json!({"action": 7, "amount": 100})),
        (
            "request_id",
            json!({"action": "pay", "amount": 100, "request_id": long_id}),
        ),
        (
            "request_id",
            json!({"action": "pay", "amount": 100, "request_id": "bad id!"}),
        ),
        (
            "request_id",
            json!({"action": "pay", "amount": 100, "request_id": ""}),
        ),
        (
            "request_id",
            json!({"action": "pay", "amount": 100, "request_id": 42}),
        ),
        ("request_id", json!({"action": "get_result"})),
        (
            "metadata",
            json!({"action": "pay", "amount": 100, "metadata": "till 7"}),
        ),
        (
            "metadata",
            json!({"action": "pay", "amount": 100, "metadata": {"till": 7}}),
        ),
        (
            "metadata",
            json!({"action": "pay", "amount": 100, "metadata": ["a"]}),
        ),
        (
            "currency",
            json!({"action": "pay", "amount": 100, "currency": "inr"}),
        ),
        (
            "currency",
            json!({"action": "pay", "amount": 100, "currency": "EURO"}),
        ),
        (
            "currency",
            json!({"action": "pay", "amount": 100, "currency": 978}),
        ),
        (
            "primary_transaction",
            json!({"action": "refund", "amount": 100}),
        ),
        (
            "primary_transaction",
            json!({"action": "cancel", "amount": 100}),
        ),
        (
            "primary_transaction",
            json!({"action": "refund", "amount": 1, "primary_transaction": "{"}),
        ),
        (
            "primary_transaction",
            json!({"action": "refund", "amount": 1, "primary_transaction": 5}),
        ),
        (
            "params",
            json!({"action": "pay", "amount": 100, "params": "fast"}),
        ),
        ("limit", json!({"action": "results", "limit": 0})),
    ];
    let d = Daemon::start();
    let mut c = d.client();
    for (n, (field, req)) in cases.iter().enumerate() {
        let v = parse(&c.line(&req.to_string()));
        assert_invalid(&v, &req.to_string());
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(&format!("{field}: ")),
            "{req} should name {field}: {v}"
        );
        assert_still_serves(&mut c, n, &req.to_string());
    }
    let entries = parse(&c.line(r#"{"action":"status"}"#))["data"]["journal"]["entries"].clone();
    assert_eq!(entries, cases.len(), "only the valid pays were journaled");
}

#[test]
fn request_id_of_64_allowed_characters_is_accepted() {
    let d = Daemon::start();
    let id = format!("a.b_c:d-E9{}", "z".repeat(54));
    assert_eq!(id.len(), 64);
    let v = d.request(json!({"action": "pay", "request_id": id, "amount": 100}));
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["request_id"], id.as_str(), "{v}");
}

#[test]
fn amount_beyond_u64_is_refused_as_too_large_not_as_a_fraction() {
    let d = Daemon::start();
    let v = parse(
        &d.client()
            .line(r#"{"action":"pay","amount":18446744073709551616}"#),
    );
    assert_invalid(&v, "amount 2^64");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("amount: must be at most"), "{v}");
}

#[test]
fn refused_request_still_echoes_its_request_id_and_metadata() {
    let d = Daemon::start();
    let req = json!({"action": "pay", "request_id": "b-1", "amount": "1", "metadata": {"t": "2"}});
    let v = d.request(req);
    assert_invalid(&v, "amount as a string");
    assert_eq!(v["request_id"], "b-1", "{v}");
    assert_eq!(v["metadata"], json!({"t": "2"}), "{v}");
    let later = d.request(json!({"action": "get_result", "request_id": "b-1"}));
    assert_eq!(
        later["reason"], "not_found",
        "a refused request is not journaled: {later}"
    );
}

/// Lines that are not a JSON object at all: answered without a field name.
#[test]
fn non_json_and_non_object_lines_are_refused_and_the_connection_stays_usable() {
    let cases: [(&[u8], &str); 7] = [
        (
            br#"{"action":"pay","amount":"#,
            "the request is not valid JSON",
        ),
        (b"pay 100", "the request is not valid JSON"),
        (b"[]", "the request must be a JSON object, not an array"),
        (b"42", "the request must be a JSON object, not a number"),
        (br#""x""#, "the request must be a JSON object, not a string"),
        (b"null", "the request must be a JSON object, not null"),
        (
            b"{\"action\":\"pay\",\"amount\":100,\"metadata\":{\"a\":\"\xff\xfe\"}}",
            "the request is not valid UTF-8",
        ),
    ];
    let d = Daemon::start();
    let mut c = d.client();
    for (n, (bytes, start)) in cases.iter().enumerate() {
        let what = String::from_utf8_lossy(bytes).into_owned();
        c.send_raw(bytes);
        c.send_raw(b"\n");
        let v = parse(&c.read_line().expect("an answer"));
        assert_invalid(&v, &what);
        assert!(
            v["message"].as_str().unwrap().starts_with(start),
            "{what}: {v}"
        );
        assert_eq!(v["request_id"], Value::Null, "{what}: {v}");
        assert_still_serves(&mut c, n, &what);
    }
}

#[test]
fn blank_lines_get_no_answer_and_the_connection_stays_usable() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"\n   \n\r\n\t\n");
    // Had the blank lines been answered, this would read one of those answers instead.
    assert_still_serves(&mut c, 1, "blank lines");
    assert_still_serves(&mut c, 2, "blank lines");
}

/// A pay line of exactly `len` bytes (newline excluded).
fn pay_line_of(len: usize, id: &str) -> String {
    let base = json!({"action": "pay", "request_id": id, "amount": 100, "metadata": {"pad": ""}});
    let pad = len - base.to_string().len();
    let line = json!({"action": "pay", "request_id": id, "amount": 100,
        "metadata": {"pad": "p".repeat(pad)}})
    .to_string();
    assert_eq!(line.len(), len);
    line
}

#[test]
fn a_line_of_exactly_64_kib_is_served_and_one_byte_more_is_not() {
    let d = Daemon::start();
    let mut c = d.client();
    let v = parse(&c.line(&pay_line_of(65_536, "max-1")));
    assert_eq!(v["code"], 0, "{}", v["message"]);
    assert_eq!(v["request_id"], "max-1");
    let mut over = d.client();
    let v = parse(&over.line(&pay_line_of(65_537, "max-2")));
    assert_invalid(&v, "a line one byte over 64 KiB");
    assert_eq!(over.read_line(), None, "that connection closes");
}

#[test]
fn an_over_long_line_gets_one_answer_then_only_that_connection_closes() {
    let d = Daemon::start();
    let mut before = d.client();
    assert_still_serves(&mut before, 0, "connecting");
    let mut long = UnixStream::connect(&d.socket).unwrap();
    long.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The daemon may close before reading it all; a failed write is part of the allowed outcome.
    let _ = long.write_all(format!("{}\n", pay_line_of(70_000, "long-1")).as_bytes());
    let mut reader = BufReader::new(long);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .expect("an answer to the long line");
    common::schema::check_answer(first.trim_end());
    let v = parse(first.trim_end());
    assert_invalid(&v, "70 000 byte line");
    assert!(v["message"].as_str().unwrap().contains("65536"), "{v}");
    let mut rest = String::new();
    let n = reader.read_line(&mut rest).expect("EOF, not a timeout");
    assert_eq!(
        n, 0,
        "the connection should close after the answer, got {rest:?}"
    );
    assert_still_serves(&mut before, 1, "another client's over-long line");
    assert_still_serves(&mut d.client(), 2, "another client's over-long line");
    let later = d.request(json!({"action": "get_result", "request_id": "long-1"}));
    assert_eq!(
        later["reason"], "not_found",
        "the long line was not executed: {later}"
    );
}

/// Connects and returns a client the daemon is serving (the harness' own probe connections
/// may take a moment to be released).
fn served_client(d: &Daemon) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = d.client();
        let v = parse(&c.line(r#"{"action":"status"}"#));
        if v["code"] == 0 {
            return c;
        }
        assert!(Instant::now() < deadline, "never served: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn at_max_connections_the_idlest_connection_makes_room_for_a_new_one() {
    let d = Daemon::start_with(Some("[api]\nmax_connections = 2\n"), &[]);
    let mut a = served_client(&d);
    std::thread::sleep(Duration::from_millis(20));
    let mut b = served_client(&d);
    // A third client is served: the idlest (a) is closed to make room, b stays.
    let mut third = served_client(&d);
    assert_eq!(a.read_line(), None, "the idlest connection was closed");
    assert_still_serves(&mut b, 1, "another connection was let in");
    assert_still_serves(&mut third, 2, "taking an idle connection's place");
}

#[test]
fn connections_beyond_max_connections_all_running_operations_get_busy_and_are_closed() {
    let d = Daemon::start_with(Some("[api]\nmax_connections = 2\n"), &[]);
    // Two connections, each with a sale running: neither may be closed.
    let running: Vec<_> = (0..2)
        .map(|i| {
            let mut c = served_client(&d);
            let id = format!("slow-{i}");
            c.send_raw(
                format!(
                    "{}\n",
                    json!({"action": "pay", "request_id": id, "amount": 100,
                           "params": {"delay_ms": 1500}})
                )
                .as_bytes(),
            );
            (c, id)
        })
        .collect();
    d.wait_in_flight(2, "the two sales");
    let mut third = d.client();
    let v = parse(&third.read_line().expect("a busy answer without asking"));
    assert_eq!(v["code"], 1, "{v}");
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], "busy", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains('2'),
        "names the limit: {v}"
    );
    assert_eq!(third.read_line(), None, "the busy connection is closed");
    for (mut c, id) in running {
        let v = parse(&c.read_line().expect("the running sale is answered"));
        assert_eq!(
            (v["code"].clone(), v["request_id"].clone()),
            (json!(0), json!(id))
        );
    }
}
