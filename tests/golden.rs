//! Golden answers: the exact bytes the real daemon answers to a fixed list of request lines,
//! v1 and LIFE POS, recorded in `tests/golden/answers.txt` before the house refactor (issue 18)
//! and kept after it, so any change in an answer's shape, field order or wording shows here.
//!
//! Only what differs from run to run is masked before comparing: RFC 3339 stamps (`<time>`),
//! UUIDs (`<uuid>`), backend ids (`<backend-id>`), the sim's references and the card data it derives from
//! them (`<v>`, `SIM-<ref>`), the release's version in `status` (`<v>`), the test's own directory (`<dir>`), and the
//! numbers under `uptime_s` and `free_bytes`. Everything else must match byte for byte.
//!
//! To record anew (only when an answer is meant to change, and say why in the commit):
//! `POSBRIDGE_GOLDEN=record cargo nextest run --test golden`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Daemon;

const GOLDEN: &str = "tests/golden/answers.txt";

/// Request lines sent in order on one connection; `@DATA(ID)` stands for the `data` of ID's
/// answer (a refund or cancel names its pay the way a POS does). `@wait ID` waits until get_result of ID is
/// no longer unknown (the sim's "timed out but charged" pay settles through reconciliation);
/// `@fresh` opens a new connection (after an answer that closes the old one).
const SCRIPT: &[&str] = &[
    // v1: money operations and their replays.
    r#"{"action":"pay","request_id":"g-pay-1","amount":1000,"metadata":{"till":"7"}}"#,
    r#"{"action":"pay","request_id":"g-pay-meta","amount":1000,"metadata":{"till":7}}"#,
    r#"{"action":"pay","request_id":"g-pay-1","amount":1000}"#,
    r#"{"action":"get_result","request_id":"g-pay-1","metadata":{"ask":"again"}}"#,
    r#"{"action":"pay","request_id":"g-pay-declined","amount":1051,"currency":"INR"}"#,
    r#"{"action":"get_result","request_id":"g-pay-declined"}"#,
    r#"{"action":"pay","request_id":"g-pay-timeout","amount":1091}"#,
    "@wait g-pay-timeout",
    r#"{"action":"get_result","request_id":"g-pay-timeout"}"#,
    r#"{"action":"get_result","request_id":"g-never-sent"}"#,
    r#"{"action":"pay","request_id":"g-pay-2","amount":2500}"#,
    r#"{"action":"refund","request_id":"g-refund-1","amount":500,"primary_transaction":@DATA(g-pay-2)}"#,
    r#"{"action":"refund","request_id":"g-refund-2","amount":5000,"primary_transaction":@DATA(g-pay-2)}"#,
    r#"{"action":"refund","request_id":"g-refund-3","amount":500,"primary_transaction":{"request_id":"g-pay-2","provider":"sim"}}"#,
    r#"{"action":"pay","request_id":"g-pay-3","amount":700}"#,
    r#"{"action":"cancel","request_id":"g-cancel-1","amount":700,"primary_transaction":@DATA(g-pay-3)}"#,
    r#"{"action":"get_result","request_id":"g-cancel-1"}"#,
    r#"{"action":"close_shift","request_id":"g-shift-1"}"#,
    r#"{"action":"get_result","request_id":"g-shift-1"}"#,
    r#"{"action":"results","limit":3}"#,
    r#"{"action":"status","request_id":"g-status"}"#,
    r#"{"action":"devices"}"#,
    r#"{"action":"pair","address":"nowhere","role":"card-reader"}"#,
    r#"{"action":"unpair","id":"nothing-here"}"#,
    r#"{"action":"resolve","request_id":"g-pay-1","decision":"charged","note":"seen on the statement"}"#,
    r#"{"action":"resolve","request_id":"g-unknown-id","decision":"not_charged","note":"n"}"#,
    // v1: refusals.
    r#"{"action":"pay","request_id":"g-bad-amount","amount":-5}"#,
    r#"{"action":"pay","request_id":"g-no-amount"}"#,
    r#"{"action":"pay","request_id":"g-big","amount":1000000000000000}"#,
    r#"{"action":"pay","request_id":"g-prov","amount":100,"provider":"nosuch"}"#,
    r#"{"action":"pay","request_id":"g-phonepe","amount":100,"provider":"phonepe"}"#,
    r#"{"action":"pay","request_id":"g-delay","amount":100,"params":{"delay_ms":"soon"}}"#,
    r#"{"action":"fly","request_id":"g-fly"}"#,
    r#"{"request_id":"g-no-action"}"#,
    r#"{"action":"pay","request_id":7,"amount":100}"#,
    r#"{"action":"pay","request_id":"","amount":100}"#,
    r#"{"action":"pay","amount":100,"metadata":"not an object"}"#,
    r#"{"action":"pay","amount":100,"colour":"blue"}"#,
    r#"{"action":"refund","request_id":"g-refund-bad","amount":100,"primary_transaction":{"provider":5}}"#,
    r#"{"action":"pay""#,
    r#"[1,2,3]"#,
    // (an empty line is skipped without an answer: not sent here)
    // LIFE POS Checkout contract (document 003).
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-pay","amount":1200,"metadata":{"pos":"A"}}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-pay","amount":1200}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.get_result","request_id":"g-lp-pay"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.get_result","request_id":"g-pay-1"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-declined","amount":3051}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.get_result","request_id":"g-lp-missing"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.refund","request_id":"g-lp-refund","amount":1200,"primary_transaction":@DATA(g-lp-pay)}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.close_shift","request_id":"g-lp-shift"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","amount":100,"email":5}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-inn","amount":100,"params":{"email":"a@b"}}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.get_result","request_id":"g-lp-x","phone":"123"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"$$bad id$$","amount":100}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-neg","amount":-1}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.fly","request_id":"g-lp-fly"}"#,
    r#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-cut""#,
    "@toolong",
    "@fresh",
    r#"{"action":"get_result","request_id":"g-lp-declined"}"#,
];

#[test]
fn every_answer_is_byte_identical_to_the_recorded_one() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut got = String::new();
    for step in SCRIPT {
        match *step {
            "@fresh" => {
                c = d.client();
                continue;
            }
            "@toolong" => {
                let mut line = br#"{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"g-lp-long","amount":1,"metadata":{"pad":""#.to_vec();
                line.resize(70 * 1024, b'x');
                line.push(b'\n');
                c.send_raw(&line);
                let answer = c.read_line().expect("an answer to a too-long line");
                got.push_str(&format!("> (a {} byte LIFE POS pay line)\n", line.len()));
                got.push_str(&format!("< {}\n", mask(&answer, d.dir.path())));
                continue;
            }
            _ => {}
        }
        if let Some(id) = step.strip_prefix("@wait ") {
            d.await_result(id, Duration::from_secs(30), |a| {
                a["error_type"] != "unknown_result_error"
            });
            continue;
        }
        let line = with_data(step, &d);
        let answer = c.line(&line);
        got.push_str(&format!("> {step}\n< {}\n", mask(&answer, d.dir.path())));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var("POSBRIDGE_GOLDEN").as_deref() == Ok("record") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        eprintln!("recorded {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it first (see the top of this file)",
            GOLDEN
        )
    });
    for (n, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        assert_eq!(g, w, "line {} of {GOLDEN} differs", n + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{GOLDEN} has a different number of lines"
    );
}

/// `step` with each `@DATA(ID)` replaced by the `data` of ID's answer (a JSON object; the
/// LIFE POS shape carries it as a string).
fn with_data(step: &str, d: &Daemon) -> String {
    let mut line = step.to_owned();
    while let Some(at) = line.find("@DATA(") {
        let end = at + line[at..].find(')').expect("@DATA(ID)");
        let id = &line[at + 6..end];
        let answer = d.request(serde_json::json!({"action": "get_result", "request_id": id}));
        let data = answer["data"].to_string();
        line.replace_range(at..=end, &data);
    }
    line
}

/// The answer with what differs between runs masked (see the top of this file).
fn mask(answer: &str, dir: &Path) -> String {
    let mut s = answer.replace(&dir.display().to_string(), "<dir>");
    // The sim derives its reference, rrn, approval code and card from a random backend id;
    // the release's version (status) changes with each release, not with an answer's shape.
    for key in [
        "provider_reference",
        "rrn",
        "approval_code",
        "masked_pan",
        "scheme",
        "version",
    ] {
        s = mask_string_after(&s, &format!("\"{key}\":\""), "\"");
        s = mask_string_after(&s, &format!("\\\"{key}\\\":\\\""), "\\\"");
    }
    let s = mask_numbers_after(&s, "\"uptime_s\":");
    let s = mask_numbers_after(&s, "\"free_bytes\":");
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(n) = rfc3339_at(b, i) {
            out.push_str("<time>");
            i += n;
        } else if let Some(n) = uuid_at(b, i) {
            out.push_str("<uuid>");
            i += n;
        } else if shape_at(b, i, &format!("SIM-{}", "h".repeat(16))) {
            out.push_str("SIM-<ref>");
            i += 20;
        } else if let Some(n) = backend_id_at(b, i) {
            out.push_str("\"<backend-id>\"");
            i += n;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every string value that starts after `key` (up to `close`) replaced by `<v>`.
fn mask_string_after(s: &str, key: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let end = tail.find(close).unwrap_or(tail.len());
        out.push_str("<v>");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn mask_numbers_after(s: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(if digits > 0 { "<n>" } else { "" });
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Matches `pattern` at `b[i..]`: `d` a digit, `h` a lower-case hex digit, anything else itself.
fn shape_at(b: &[u8], i: usize, pattern: &str) -> bool {
    pattern.bytes().enumerate().all(|(k, p)| {
        b.get(i + k).is_some_and(|&c| match p {
            b'd' => c.is_ascii_digit(),
            b'h' => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            _ => c == p,
        })
    })
}

fn rfc3339_at(b: &[u8], i: usize) -> Option<usize> {
    if !shape_at(b, i, "dddd-dd-ddTdd:dd:dd") {
        return None;
    }
    let mut n = 19;
    if b.get(i + n) == Some(&b'.') {
        n += 1;
        while b.get(i + n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    match b.get(i + n) {
        Some(b'Z') => Some(n + 1),
        Some(b'+' | b'-') if shape_at(b, i + n + 1, "dd:dd") => Some(n + 6),
        _ => Some(n),
    }
}

fn uuid_at(b: &[u8], i: usize) -> Option<usize> {
    shape_at(b, i, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh").then_some(36)
}

/// A quoted backend id: `"P"`, `"R"`, `"C"` or `"S"` and 28 hex digits.
fn backend_id_at(b: &[u8], i: usize) -> Option<usize> {
    let quoted = b.get(i) == Some(&b'"')
        && matches!(b.get(i + 1), Some(b'P' | b'R' | b'C' | b'S'))
        && shape_at(b, i + 2, &"h".repeat(28))
        && b.get(i + 30) == Some(&b'"');
    quoted.then_some(31)
}

#[test]
fn the_mask_hides_only_what_varies() {
    let dir = Path::new("/tmp/xyz");
    assert_eq!(
        mask(
            r#"{"a":"2026-12-07T00:25:40.123Z","b":"P0123456789abcdef0123456789ab","u":"0b6e1c2a-1f0e-4c1e-9e7a-3f1d2c3b4a5f","p":"/tmp/xyz/j","uptime_s":12,"n":1091}"#,
            dir
        ),
        r#"{"a":"<time>","b":"<backend-id>","u":"<uuid>","p":"<dir>/j","uptime_s":<n>,"n":1091}"#
    );
    assert_eq!(
        mask(r#"{"rrn":"12","data":"{\"rrn\":\"34\",\"x\":\"5\"}"}"#, dir),
        r#"{"rrn":"<v>","data":"{\"rrn\":\"<v>\",\"x\":\"5\"}"}"#
    );
    // Not a backend id: too short, or not closed.
    assert_eq!(mask(r#"{"b":"P0123"}"#, dir), r#"{"b":"P0123"}"#);
}
