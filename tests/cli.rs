//! The command-line client against the real daemon (DESIGN.md §4): output, `--json`, and the
//! exit codes 0 ok, 1 error answer, 2 usage, 3 unknown outcome, 4 local error.

mod common;

use std::process::{Command, Output};

use common::{Daemon, BIN};
use serde_json::{json, Value};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing everything the command printed if it is wrong.
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}stderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Runs a `--json` command: exactly one line on stdout, parsed.
fn json_cli(d: &Daemon, args: &[&str]) -> (Output, String, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let o = d.cli(&all);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "--json prints exactly one line: {out:?}");
    let v = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    (o, lines[0].to_owned(), v)
}

#[test]
fn pay_prints_approved_and_exits_0() {
    let d = Daemon::start();
    let o = d.cli(&["pay", "--amount", "1234", "--request-id", "cli-1"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("approved 1234 INR via sim"), "{out}");
    assert!(out.contains("cli-1"), "{out}");
    assert_eq!(d.sim_calls("cli-1"), 1);
}

#[test]
fn pay_json_prints_the_stored_answer_as_one_line() {
    let d = Daemon::start();
    let args = [
        "pay",
        "--amount",
        "500",
        "--request-id",
        "cli-j",
        "--meta",
        "till=4",
    ];
    let (o, line, v) = json_cli(&d, &[&args[..], &["--param", "delay_ms=20"]].concat());
    assert_exit(&o, 0);
    assert_eq!(v["code"], 0, "{line}");
    assert_eq!(v["request_id"], "cli-j", "{line}");
    assert_eq!(v["metadata"], json!({"till": "4"}), "{line}");
    assert_eq!(v["data"]["amount"], 500, "{line}");
    let stored = d
        .client()
        .line(r#"{"action":"get_result","request_id":"cli-j"}"#);
    assert_eq!(stored, line, "--json prints the daemon's answer unchanged");
}

#[test]
fn declined_pay_exits_1() {
    let d = Daemon::start();
    let o = d.cli(&["pay", "--amount", "351", "--request-id", "cli-d"]);
    assert_exit(&o, 1);
    assert!(stdout(&o).starts_with("declined: "), "{}", stdout(&o));
    let (o, _, v) = json_cli(&d, &["pay", "--amount", "451"]);
    assert_exit(&o, 1);
    assert_eq!(v["reason"], "declined", "{v}");
}

#[test]
fn unknown_outcome_exits_3_and_tells_how_to_ask_again() {
    let d = Daemon::start();
    let o = d.cli(&["pay", "--amount", "191", "--request-id", "cli-u"]);
    assert_exit(&o, 3);
    let out = stdout(&o);
    assert!(out.starts_with("outcome unknown (timeout)"), "{out}");
    assert!(out.contains("posbridge get-result cli-u"), "{out}");
}

#[test]
fn get_result_prints_the_stored_outcome() {
    let d = Daemon::start();
    assert_exit(
        &d.cli(&["pay", "--amount", "700", "--request-id", "cli-g"]),
        0,
    );
    let o = d.cli(&["get-result", "cli-g"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("approved 700 INR"), "{}", stdout(&o));
    let missing = d.cli(&["get-result", "nope"]);
    assert_exit(&missing, 1);
    assert!(
        stdout(&missing).starts_with("not_found: "),
        "{}",
        stdout(&missing)
    );
}

#[test]
fn refund_with_primary_id_fetches_the_pay_and_refunds_it() {
    let d = Daemon::start();
    assert_exit(
        &d.cli(&["pay", "--amount", "1000", "--request-id", "cli-p"]),
        0,
    );
    let args = [
        "refund",
        "--amount",
        "300",
        "--primary",
        "cli-p",
        "--request-id",
        "cli-r",
    ];
    let (o, line, v) = json_cli(&d, &args);
    assert_exit(&o, 0);
    assert_eq!(v["data"]["status"], "refunded", "{line}");
    assert_eq!(v["data"]["amount"], 300, "{line}");
    assert_eq!(v["data"]["primary"]["request_id"], "cli-p", "{line}");
    let over = d.cli(&["refund", "--amount", "701", "--primary", "cli-p"]);
    assert_exit(&over, 1);
    assert!(
        stdout(&over).starts_with("invalid_request: amount:"),
        "{}",
        stdout(&over)
    );
}

#[test]
fn refund_of_a_pay_without_a_result_is_a_local_error() {
    let d = Daemon::start();
    let o = d.cli(&["refund", "--amount", "300", "--primary", "ghost"]);
    assert_exit(&o, 4);
    let err = stderr(&o);
    assert!(err.starts_with("posbridge: error: cannot refund"), "{err}");
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn cancel_with_primary_json_cancels_the_pay() {
    let d = Daemon::start();
    let pay = d.request(json!({"action": "pay", "request_id": "cli-c", "amount": 900}));
    let primary = pay["data"].to_string();
    let o = d.cli(&["cancel", "--amount", "900", "--primary-json", &primary]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("cancelled 900 INR via sim"),
        "{}",
        stdout(&o)
    );
    let bad = d.cli(&["cancel", "--amount", "900", "--primary-json", "{not json"]);
    assert_exit(&bad, 4);
    assert!(
        stderr(&bad).contains("--primary-json is not valid JSON"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn close_shift_prints_the_totals() {
    let d = Daemon::start();
    for amount in ["1000", "2000", "551"] {
        d.cli(&["pay", "--amount", amount]);
    }
    let o = d.cli(&["close-shift"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("shift 1 closed"), "{out}");
    assert!(out.contains("  pay     2 for 3000\n"), "{out}");
    assert!(out.contains("  refund  0 for 0\n"), "{out}");
    assert!(out.contains("  net     3000 INR"), "{out}");
}

#[test]
fn results_lists_the_newest_first_up_to_the_limit() {
    let d = Daemon::start();
    for id in ["cli-a", "cli-b", "cli-c"] {
        assert_exit(&d.cli(&["pay", "--amount", "100", "--request-id", id]), 0);
    }
    let o = d.cli(&["results", "--limit", "2"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("cli-c ") && lines[1].starts_with("cli-b "),
        "{out}"
    );
    assert!(lines[0].contains("approved"), "{out}");
    let (_, _, v) = json_cli(&d, &["results", "--limit", "3"]);
    assert_eq!(v["data"]["results"][2]["request_id"], "cli-a", "{v}");
}

#[test]
fn status_prints_the_journal() {
    let d = Daemon::start();
    d.cli(&["pay", "--amount", "100"]);
    d.cli(&["pay", "--amount", "151"]);
    let o = d.cli(&["status"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("journal     2 of 500 (0 in flight, 0 unknown)"),
        "{out}"
    );
    assert!(out.contains("provider    sim"), "{out}");
    let (_, _, v) = json_cli(&d, &["status"]);
    assert_eq!(v["data"]["journal"]["entries"], 2, "{v}");
}

#[test]
fn duplicate_request_id_exits_1() {
    let d = Daemon::start();
    assert_exit(
        &d.cli(&["pay", "--amount", "100", "--request-id", "cli-dup"]),
        0,
    );
    let o = d.cli(&["pay", "--amount", "100", "--request-id", "cli-dup"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).starts_with("duplicate_request: "),
        "{}",
        stdout(&o)
    );
    assert_eq!(d.sim_calls("cli-dup"), 1);
}

#[test]
fn unreachable_daemon_exits_4_naming_the_socket_and_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-daemon.sock");
    let o = Command::new(BIN)
        .args(["pay", "--amount", "100"])
        .env("POSBRIDGE_SOCKET", &socket)
        .output()
        .unwrap();
    assert_exit(&o, 4);
    let err = stderr(&o);
    assert!(err.starts_with("posbridge: error: "), "{err}");
    assert!(
        err.contains(&socket.display().to_string()),
        "names the socket: {err}"
    );
    assert!(
        err.contains("No such file or directory (os error 2)"),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn config_check_accepts_a_good_file_and_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "default_provider = \"sim\"\n[journal]\ncapacity = 42\n",
    )
    .unwrap();
    let o = common::config_check(&good);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("ok") && stdout(&o).contains("42"),
        "{}",
        stdout(&o)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[journal]\ncapacity = 42\nretention_days = 7\n").unwrap();
    let o = common::config_check(&bad);
    assert_exit(&o, 4);
    let err = stderr(&o);
    assert!(err.starts_with("posbridge: error: "), "{err}");
    assert!(err.contains("retention_days"), "names the key: {err}");
}

#[test]
fn pay_without_amount_is_a_usage_error_exit_2() {
    let d = Daemon::start();
    let o = d.cli(&["pay", "--request-id", "cli-x"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--amount"), "{}", stderr(&o));
    let later = d.request(json!({"action": "get_result", "request_id": "cli-x"}));
    assert_eq!(later["reason"], "not_found", "nothing was sent: {later}");
}

/// `pay` shows the sale's progress: for a person on stderr (plain lines when stderr is not a
/// terminal, as here), the answer on stdout as before; `--json` stays one line unless
/// `--progress` asks for the event lines, which then come before the answer.
#[test]
fn pay_shows_progress_and_json_prints_events_only_when_asked() {
    let d = Daemon::start();
    let o = d.cli(&[
        "pay",
        "--amount",
        "1000",
        "--request-id",
        "cli-ev1",
        "--param",
        "delay_ms=100",
    ]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("approved 1000 INR via sim"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    let shown: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert_eq!(shown.len(), 2, "{err}");
    assert!(shown[0].starts_with("progress: sent: "), "{err}");
    assert!(shown[1].starts_with("progress: authorising: "), "{err}");
    // --json without --progress: one line, as scripts expect.
    let (_, _, v) = json_cli(&d, &["pay", "--amount", "1000", "--param", "delay_ms=100"]);
    assert_eq!(v["code"], 0, "{v}");
    // --json --progress: the event lines, then the answer.
    let o = d.cli(&[
        "pay",
        "--amount",
        "1000",
        "--request-id",
        "cli-ev2",
        "--param",
        "delay_ms=100",
        "--json",
        "--progress",
    ]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| {
            common::schema::check_answer(l);
            serde_json::from_str(l).unwrap()
        })
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        common::stages(&lines[..2]),
        ["sent", "authorising"],
        "{out}"
    );
    assert_eq!(lines[2]["request_id"], "cli-ev2", "{out}");
    assert_eq!(lines[2]["code"], 0, "{out}");
}

/// On a terminal `pay` shows its progress as one line that updates: each event rewrites the
/// line (carriage return, erase), and the line is cleared before the answer is printed, so the
/// terminal is left with the answer alone. stderr is a pty here; stdout is piped.
#[test]
fn pay_on_a_terminal_shows_progress_as_one_updating_line() {
    use std::io::Read;
    let d = Daemon::start();
    let (mut master, slave) = common::pty();
    let o = Command::new(BIN)
        .args([
            "pay",
            "--amount",
            "1000",
            "--request-id",
            "cli-tty",
            "--param",
            "delay_ms=100",
        ])
        .env("POSBRIDGE_SOCKET", &d.socket)
        .stderr(slave)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("approved 1000 INR via sim"),
        "{}",
        stdout(&o)
    );
    // The child has exited and the parent's copy of the slave went into the Command: reading
    // the master ends (EIO) once what the child wrote is read.
    let mut shown = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    let shown = String::from_utf8_lossy(&shown);
    let erase = "\r\x1b[K";
    assert!(
        !shown.contains('\n'),
        "one line, never a new one: {shown:?}"
    );
    assert!(shown.starts_with(&format!("{erase}sent: ")), "{shown:?}");
    assert!(
        shown.contains(&format!("{erase}authorising: ")),
        "{shown:?}"
    );
    assert!(
        shown.ends_with(erase),
        "cleared before the answer: {shown:?}"
    );
}
