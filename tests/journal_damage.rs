//! A torn or damaged journal (issue 11 §3), through the real binary: a journal cut mid-page,
//! one with flipped bits in a page, a file of random bytes and another program's SQLite
//! database. The daemon never starts on one of them (starting empty would forget outcomes
//! still unknown): it exits non-zero naming the file and the salvage command; `journal check`
//! says what is wrong; `journal salvage` moves it aside and keeps every readable row, unknown
//! outcomes first, which the daemon then reconciles after it starts.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Daemon, BIN};
use serde_json::json;

const OPEN: &str = "dmg-open";

/// A stopped daemon whose journal holds `dmg-open` in flight (the backend charged it, the
/// daemon was killed before it recorded the outcome) and 40 final pays after it, all
/// checkpointed into journal.sqlite (no -wal left).
fn journal_with_an_unknown_outcome() -> Daemon {
    let mut d = Daemon::start();
    let _pos = d.cli_in_thread(&[
        "pay",
        "--amount",
        "500",
        "--request-id",
        OPEN,
        "--param",
        "delay_ms=60000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.sim_calls(OPEN) == 0 {
        assert!(Instant::now() < deadline, "the pay never reached the sim");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = d.client();
    for n in 0..40 {
        let v = c.request(&json!({"action": "pay", "request_id": format!("dmg-{n}"),
            "amount": 100 + n}));
        assert_eq!(v["code"], 0, "{v}");
    }
    d.kill9();
    let conn = rusqlite::Connection::open(journal(&d)).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    d
}

fn journal(d: &Daemon) -> std::path::PathBuf {
    d.state.join("journal.sqlite")
}

/// Starts the daemon and expects it to refuse. Its stderr.
fn refused_start(d: &Daemon) -> String {
    d.refused_start("on a damaged journal")
}

fn journal_cmd(d: &Daemon, what: &str) -> Output {
    std::process::Command::new(BIN)
        .args(["journal", what, "--state-dir"])
        .arg(&d.state)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The refusal names the file and the exact commands; `journal check` says what is wrong.
fn refuses_and_checks(d: &Daemon, what: &str) {
    let err = refused_start(d);
    let file = journal(d).display().to_string();
    let salvage = format!(
        "posbridge journal salvage --state-dir {}",
        d.state.display()
    );
    assert!(err.contains(&file), "{err}");
    assert!(err.contains(&salvage), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
    let check = journal_cmd(d, "check");
    let text = stdout(&check);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("{file}: damaged")), "{text}");
    assert!(text.contains(what), "expected {what:?} in: {text}");
    assert!(text.contains(&salvage), "{text}");
}

/// Salvage, start, and the kept unknown outcome is reconciled: approved, charged once.
fn salvage_keeps_the_unknown_outcome(d: &mut Daemon) {
    let damaged = std::fs::read(journal(d)).unwrap();
    let out = journal_cmd(d, "salvage");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("unknown or in-flight outcomes: {OPEN}")),
        "{text}"
    );
    assert_moved_aside(d, &damaged, &text);
    let check = journal_cmd(d, "check");
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let again = stdout(&journal_cmd(d, "salvage"));
    assert!(again.contains("nothing to salvage"), "{again}");

    d.restart();
    let v = d.await_result(OPEN, Duration::from_secs(20), |v| v["code"] == 0);
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(d.sim_calls(OPEN), 1, "reconciled, never re-sent");
    let v = d.request(json!({"action": "get_result", "request_id": "dmg-0"}));
    assert_eq!(v["code"], 0, "a readable final result is kept: {v}");
}

/// The damaged file is kept, byte for byte, under a timestamped name the output names.
fn assert_moved_aside(d: &Daemon, damaged: &[u8], text: &str) {
    let aside: Vec<_> = std::fs::read_dir(&d.state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("journal.damaged-") && name.ends_with(".sqlite")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), damaged);
    assert!(text.contains(&aside[0].display().to_string()), "{text}");
}

fn page_size(path: &Path) -> u64 {
    let head = std::fs::read(path).unwrap();
    u16::from_be_bytes([head[16], head[17]]) as u64
}

#[test]
fn a_journal_cut_mid_page_is_refused_and_salvaged() {
    let mut d = journal_with_an_unknown_outcome();
    let path = journal(&d);
    let len = std::fs::metadata(&path).unwrap().len();
    let cut = len - page_size(&path) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    refuses_and_checks(&d, "cut short");
    salvage_keeps_the_unknown_outcome(&mut d);
}

#[test]
fn a_journal_with_flipped_bits_is_refused_and_salvaged() {
    let mut d = journal_with_an_unknown_outcome();
    let path = journal(&d);
    let mut bytes = std::fs::read(&path).unwrap();
    // The header and cell pointers of the last page: a bad sector, a worn SD card.
    let last = bytes.len() - page_size(&path) as usize;
    for b in &mut bytes[last..last + 12] {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    refuses_and_checks(&d, "malformed");
    // doctor reports the same integrity check, with the command to run.
    let out = std::process::Command::new(BIN)
        .args(["doctor", "--json", "--timeout", "1", "--state-dir"])
        .arg(&d.state)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let report = common::json_of(&out);
    let check = common::doctor_check(&report, "journal");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("malformed"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("posbridge journal salvage"),
        "{check}"
    );
    salvage_keeps_the_unknown_outcome(&mut d);
}

#[test]
fn a_file_of_random_bytes_is_refused_and_moved_aside_keeping_it() {
    let mut d = journal_with_an_unknown_outcome();
    let path = journal(&d);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    // Deterministic "random" bytes (xorshift), so a failure can be replayed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &noise).unwrap();
    refuses_and_checks(&d, "not a SQLite database");
    let out = journal_cmd(&d, "salvage");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("kept 0 unknown"), "{text}");
    assert_moved_aside(&d, &noise, &text);
    d.restart();
    let v = d.request(json!({"action": "pay", "request_id": "after", "amount": 300}));
    assert_eq!(v["code"], 0, "a fresh journal works: {v}");
}

#[test]
fn another_programs_database_is_not_taken_for_an_empty_journal() {
    let mut d = Daemon::start();
    d.terminate();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", journal(&d).display()));
    }
    let conn = rusqlite::Connection::open(journal(&d)).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    drop(conn);
    let before = std::fs::read(journal(&d)).unwrap();
    refuses_and_checks(&d, "not a posbridge journal");
    assert_eq!(
        std::fs::read(journal(&d)).unwrap(),
        before,
        "the file was changed"
    );
}
