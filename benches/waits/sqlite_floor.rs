//! SQLite's own floor under a pay (issue 20 item 2): the two journal commits of one pay made by
//! SQLite alone, in a process that does nothing else, counted with `strace -c` and timed on
//! tmpfs. No socket, no thread hand-off, no backend, no log: what is left of the daemon's
//! "system calls per pay" and "own cost" once these are taken away is the daemon's.
//!
//! The journal file is made by `Journal::open` (the daemon's schema and pragmas); each pay is
//! then the writer's own statements (`SQL_BEGIN`, then `SQL_SETTLE` and `SQL_EVICT`, from
//! src/journal/writer.rs, each pay's two in their own IMMEDIATE transactions) on a full ring,
//! its size kept as the writer keeps it. Two locking modes:
//! - `shared`: the daemon's (WAL locks in the `-shm` file, a second read-only connection open
//!   as the daemon's reader);
//! - `exclusive`: `PRAGMA locking_mode=EXCLUSIVE` before the first access (no `-shm`, no lock
//!   calls), which the daemon does not take: no other connection, its own reader or
//!   `sqlite3` beside it, could then read the journal while it runs.
//!
//! The least daemon (`served`): the same commits behind a Unix socket, made by one blocking
//! thread that reads a request line and writes an answer line, nothing else: what any daemon
//! that journals a pay this way must pay on this machine, socket wake-ups included. Beside it
//! the same server with two plain records written and fdatasync'ed instead of SQLite
//! (`append`, the floor of any durable journal), and with no commit at all (`echo`).
//!
//! The benchmark binary runs itself as the worker (`ENV` = "mode,pays,path").

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use posbridge::journal::{
    memory, Batching, Journal, SQL_BEGIN, SQL_EVICT, SQL_SETTLE, WAL_CHECKPOINT_PAGES,
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
    if ["server", "append", "echo"].contains(&mode.as_str()) {
        serve(&mode, Path::new(&path));
        std::process::exit(0);
    }
    let times = pay_loop(&mode, pays, Path::new(&path));
    // One write after the pays, so that the calls counted are SQLite's alone.
    let text: String = times.iter().map(|t| format!("{t}\n")).collect();
    print!("{text}");
    std::process::exit(0);
}

/// A journal made by `Journal::open` on a full ring, and the writer's statements to make a
/// pay's two commits on it.
struct Floor {
    c: Connection,
    _reader: Option<Connection>,
    answer: String,
    order: i64,
    entries: i64,
    next: usize,
}

impl Floor {
    fn open(mode: &str, path: &Path) -> Floor {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        // Closed (its writer joined) before the worker opens the file itself.
        Journal::open(path, RING, Batching::default())
            .expect("the journal")
            .close();
        let c = Connection::open(path).expect("open");
        if mode == "exclusive" {
            c.pragma_update(None, "locking_mode", "EXCLUSIVE").unwrap();
        }
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .unwrap();
        memory::bound_cache(&c, memory::WRITER_CACHE_KIB).unwrap();
        let reader = (mode != "exclusive").then(|| {
            let r = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let _: i64 = r
                .query_row("SELECT count(*) FROM operations", [], |row| row.get(0))
                .unwrap();
            r
        });
        let mut floor = Floor {
            c,
            _reader: reader,
            answer: format!(r#"{{"status":"approved","data":"{}"}}"#, "x".repeat(300)),
            order: 0,
            entries: 0,
            next: 0,
        };
        // A full ring first, as on a counter that has sold for a while.
        for _ in 0..RING + 100 {
            floor.pay();
        }
        floor
    }

    /// The intent commit, then the outcome commit with the eviction of the oldest result.
    fn pay(&mut self) {
        let rid = format!("floor-{:08}", self.next);
        self.next += 1;
        let now = "2026-12-07T10:00:00.000000000Z";
        let tx = self
            .c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(SQL_BEGIN)
            .unwrap()
            .execute(params![rid, "pay", "sim", OPERATION, now, now])
            .unwrap();
        tx.commit().unwrap();
        self.order += 1;
        let tx = self
            .c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(SQL_SETTLE)
            .unwrap()
            .execute(params!["final", self.answer, now, self.order, rid])
            .unwrap();
        // The writer keeps the ring's size itself (it counts the entries only when it starts).
        self.entries += 1;
        if self.entries > RING as i64 {
            self.entries -= tx
                .prepare_cached(SQL_EVICT)
                .unwrap()
                .execute(params![self.entries - RING as i64])
                .unwrap() as i64;
        }
        tx.commit().unwrap();
    }
}

fn pay_loop(mode: &str, pays: usize, path: &Path) -> Vec<u128> {
    let mut floor = Floor::open(mode, path);
    (0..pays)
        .map(|_| {
            let t = Instant::now();
            floor.pay();
            t.elapsed().as_nanos()
        })
        .collect()
}

/// The least a daemon could be: one thread, blocking, that reads a request line from one
/// connection on a Unix socket, makes the pay's two commits and writes an answer line. No
/// JSON, no backend, no log, no other thread. The commits are the journal's ("server"), two
/// records each written and fdatasync'ed in a plain file ("append"), or none ("echo").
fn serve(mode: &str, path: &Path) {
    use std::io::{BufRead, BufReader, Write};
    let mut floor = (mode == "server").then(|| Floor::open("shared", path));
    // "append": no SQLite, the least durable store: each commit one write and one fdatasync of
    // a record in a file (overwritten in place, as a ring would), the floor of any journal.
    let store = (mode == "append").then(|| {
        let f = std::fs::File::create(path.with_extension("ring")).expect("ring file");
        f.set_len(RING as u64 * 512).unwrap();
        f.sync_all().unwrap();
        f
    });
    let mut slot = 0u64;
    let socket = socket_of(path);
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    // Connections until one that made pays has closed (the first ones only test the socket).
    for stream in listener.incoming() {
        let stream = stream.expect("accept");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let (mut line, mut served) = (String::new(), 0);
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(f) = floor.as_mut() {
                f.pay();
            }
            if let Some(f) = &store {
                use std::os::unix::fs::FileExt;
                for record in [OPERATION.as_bytes(), b"{\"status\":\"approved\"}"] {
                    f.write_all_at(record, slot % RING as u64 * 512).unwrap();
                    f.sync_data().unwrap();
                    slot += 1;
                }
            }
            line.clear();
            served += 1;
            if writer.write_all(b"{\"code\":0}\n").is_err() {
                break;
            }
        }
        if served > 0 {
            return;
        }
    }
}

fn socket_of(path: &Path) -> std::path::PathBuf {
    path.with_extension("sock")
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

/// Pays through the least daemon (`serve`), one client as the daemon's pays are timed: 50 to
/// warm up, then `pays` timed from the request written to the answer read.
pub fn served(mode: &str, pays: usize, dir: &Path) -> Option<Dist> {
    let path = dir.join("floor.sqlite");
    let mut child = worker(mode, 0, &path).spawn().ok()?;
    let socket = socket_of(&path);
    // The socket's file appears at bind, before listen: wait until a connect is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = crate::common::Conn::open(&socket);
    for i in 0..50 {
        c.pay("floor", &format!("warm-{i}"), 100);
    }
    let times = (0..pays)
        .map(|i| c.pay("floor", &format!("served-{i}"), 100))
        .collect();
    drop(c);
    child.wait().ok()?.success().then(|| Dist::new(times))
}
