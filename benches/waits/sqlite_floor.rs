//! SQLite's own floor under a pay (issue 20 item 2): the two journal commits of one pay made by
//! SQLite alone, in a process that does nothing else, counted with `strace -c` and timed on
//! tmpfs. No socket, no thread hand-off, no backend, no log: what is left of the daemon's
//! "system calls per pay" and "own cost" once these are taken away is the daemon's.
//!
//! The journal file is made by `Journal::open` (the daemon's schema and pragmas); each pay is
//! then the writer's own statements (`SQL_BEGIN`, then `SQL_SETTLE`, `SQL_COUNT` and
//! `SQL_EVICT`, from src/journal/writer.rs, each pay's two in their own IMMEDIATE transactions)
//! on a full ring. Two locking modes:
//! - `shared`: the daemon's (WAL locks in the `-shm` file, a second read-only connection open
//!   as the daemon's reader);
//! - `exclusive`: `PRAGMA locking_mode=EXCLUSIVE` before the first access (no `-shm`, no lock
//!   calls), which the daemon does not take: no other connection, its own reader or
//!   `sqlite3` beside it, could then read the journal while it runs.
//!
//! The benchmark binary runs itself as the worker (`ENV` = "mode,pays,path").

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use posbridge::journal::{
    memory, Batching, Journal, SQL_BEGIN, SQL_COUNT, SQL_EVICT, SQL_SETTLE, WAL_CHECKPOINT_PAGES,
};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

use crate::common::Dist;

pub const ENV: &str = "POSBRIDGE_BENCH_SQLITE_FLOOR";
const RING: usize = 500;
/// An intent and an answer of the sizes a sim pay journals.
const OPERATION: &str = r#"{"action":"pay","amount":100,"currency":"INR","provider":"sim","request_id":"floor-00000000","progress":false}"#;

/// System calls per pay by name, and in all.
pub struct Calls {
    pub total: f64,
    pub by_name: Vec<(String, f64)>,
}

/// When the benchmark binary was started as the worker: do the pays and exit.
pub fn worker_if_asked() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ',');
    let (mode, pays, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
        parts.next().unwrap_or_default().to_owned(),
    );
    let times = pay_loop(&mode, pays, Path::new(&path));
    // One write after the pays, so that the calls counted are SQLite's alone.
    let text: String = times.iter().map(|t| format!("{t}\n")).collect();
    print!("{text}");
    std::process::exit(0);
}

fn pay_loop(mode: &str, pays: usize, path: &Path) -> Vec<u128> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // Closed (its writer joined) before the worker opens the file itself.
    Journal::open(path, RING, Batching::default())
        .expect("the journal")
        .close();
    let mut c = Connection::open(path).expect("open");
    if mode == "exclusive" {
        c.pragma_update(None, "locking_mode", "EXCLUSIVE").unwrap();
    }
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
        .unwrap();
    memory::bound_cache(&c, memory::WRITER_CACHE_KIB).unwrap();
    let _reader = (mode == "shared").then(|| {
        let r = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let _: i64 = r
            .query_row("SELECT count(*) FROM operations", [], |row| row.get(0))
            .unwrap();
        r
    });
    let answer = format!(r#"{{"status":"approved","data":"{}"}}"#, "x".repeat(300));
    let mut order = 0i64;
    let mut pay = |i: usize| {
        let rid = format!("floor-{i:08}");
        let now = "2026-12-07T10:00:00.000000000Z";
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(SQL_BEGIN)
            .unwrap()
            .execute(params![rid, "pay", "sim", OPERATION, now, now])
            .unwrap();
        tx.commit().unwrap();
        order += 1;
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(SQL_SETTLE)
            .unwrap()
            .execute(params!["final", answer, now, order, rid])
            .unwrap();
        let total: i64 = tx.query_row(SQL_COUNT, [], |r| r.get(0)).unwrap();
        if total > RING as i64 {
            tx.prepare_cached(SQL_EVICT)
                .unwrap()
                .execute(params![total - RING as i64])
                .unwrap();
        }
        tx.commit().unwrap();
    };
    // A full ring first, as on a counter that has sold for a while.
    for i in 0..RING + 100 {
        pay(i);
    }
    (0..pays)
        .map(|i| {
            let t = Instant::now();
            pay(RING + 100 + i);
            t.elapsed().as_nanos()
        })
        .collect()
}

fn worker(mode: &str, pays: usize, path: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the benchmark binary"));
    cmd.env(ENV, format!("{mode},{pays},{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// `strace -c -f` of the worker with `pays` pays and with none; the difference per pay.
/// `None` without strace.
pub fn calls(mode: &str, pays: usize, dir: &Path) -> Option<Calls> {
    let count = |n: usize| -> Option<std::collections::BTreeMap<String, f64>> {
        let out = dir.join(format!("floor-strace-{mode}-{n}"));
        let w = worker(mode, n, &dir.join("floor.sqlite"));
        let status = Command::new("strace")
            .args(["-c", "-f", "-o"])
            .arg(&out)
            .arg(w.get_program())
            .envs(w.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let text = std::fs::read_to_string(&out).ok()?;
        let _ = std::fs::remove_file(&out);
        status.success().then_some(())?;
        // "% time  seconds  usecs/call  calls  [errors]  syscall"
        Some(
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let name = *f.last()?;
                    let calls = f.get(3)?.parse::<f64>().ok()?;
                    (f.len() >= 5 && name != "total").then(|| (name.to_owned(), calls))
                })
                .collect(),
        )
    };
    let (with, without) = (count(pays)?, count(0)?);
    let mut by_name: Vec<(String, f64)> = with
        .iter()
        .map(|(n, c)| {
            (
                n.clone(),
                (c - without.get(n).unwrap_or(&0.0)) / pays as f64,
            )
        })
        .filter(|(_, c)| *c >= 0.05)
        .collect();
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(Calls {
        total: by_name.iter().map(|(_, c)| c).sum(),
        by_name,
    })
}

/// The time of each of `pays` pays in the worker (its journal in `dir`).
pub fn times(mode: &str, pays: usize, dir: &Path) -> Option<Dist> {
    let out = worker(mode, pays, &dir.join("floor.sqlite"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let v: Vec<Duration> = text
        .lines()
        .filter_map(|l| l.parse().ok().map(Duration::from_nanos))
        .collect();
    (out.status.success() && v.len() == pays).then(|| Dist::new(v))
}
