//! The journal's single writer: group commit of queued intents and outcomes.
//!
//! Every write goes into one queue, and whoever sits at the desk (the write connection)
//! commits everything queued in one transaction. A caller that finds the desk free sits down
//! and commits on its own thread, so a sale alone crosses no thread for its two commits (each
//! hand-off to a sleeping thread costs 10-18 µs on the virtual machine the benchmark runs on:
//! docs/performance.md). A caller that finds the desk taken leaves its write queued; whoever
//! leaves the desk with writes still queued rings for the writer thread, which commits them
//! all (should that thread be gone, the one leaving commits them itself). So under load many
//! operations share one fsync.
//!
//! What that costs the async runtime, and its bound: the caller is a runtime worker, and it
//! blocks for one transaction (at most `max_batch` writes and one fsync). Only the one at the
//! desk blocks (the others queue and await), so while the writer thread lives at most one
//! worker waits on the disk at any time, whatever the load; a disk that hangs holds that one
//! worker and the writer thread, never the other workers. (`block_in_place` would move the
//! worker's other tasks away, but it hands the worker to a new thread at every call: more
//! hand-offs than it saves.)
//! SQLite connections are not async, hence a blocking desk and not a task. This room knows
//! SQL and the ring; never what an operation means.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::health::{describe, Fault, Health};
use super::{Begin, CommitStats, Intent, JournalError, State};
use crate::clock::now_rfc3339;

/// Where the writer reports what goes wrong, and the file it names in its messages.
pub struct Watch<'a> {
    pub path: &'a Path,
    pub health: &'a Health,
}

impl Watch<'_> {
    /// Records a failed write and words it: disk full, I/O error (which stops the writer).
    fn fail(&self, e: &rusqlite::Error) -> String {
        let fault = Fault::of(e);
        let msg = describe(fault, self.path, e);
        log::error!("journal write failed: {msg}");
        self.health.failed(fault, &msg);
        msg
    }

    /// The answer to every write once the writer has stopped after an I/O error.
    fn stopped(&self) -> Option<String> {
        self.health.stopped().map(|why| {
            format!(
                "the journal stopped writing after an I/O error and trusts nothing since its \
                 last good commit ({why}); posbridge must be restarted"
            )
        })
    }
}

/// How writes are grouped into transactions.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most commands committed in one transaction.
    pub max_batch: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_batch: 256 }
    }
}

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

pub enum Command {
    Begin {
        intent: Intent,
        reply: Reply<Begin>,
    },
    Settle {
        request_id: String,
        state: State,
        response: String,
        reply: Reply<bool>,
    },
    /// Replaces the stored operation of an entry that is not final (a progress note).
    Amend {
        request_id: String,
        operation: String,
        reply: Reply<bool>,
    },
    Ping {
        reply: Reply<()>,
    },
}

/// A reply held back until the transaction that carries it has committed.
enum Pending {
    Begin(Reply<Begin>, Result<Begin, JournalError>),
    Settle(Reply<bool>, Result<bool, JournalError>),
    Unit(Reply<()>),
}

impl Pending {
    fn send(self, commit: &Result<(), String>) {
        match (self, commit) {
            (Pending::Begin(tx, r), Ok(())) => drop(tx.send(r)),
            (Pending::Settle(tx, r), Ok(())) => drop(tx.send(r)),
            (Pending::Unit(tx), Ok(())) => drop(tx.send(Ok(()))),
            (Pending::Begin(tx, _), Err(e)) => drop(tx.send(Err(JournalError::Write(e.clone())))),
            (Pending::Settle(tx, _), Err(e)) => drop(tx.send(Err(JournalError::Write(e.clone())))),
            (Pending::Unit(tx), Err(e)) => drop(tx.send(Err(JournalError::Write(e.clone())))),
        }
    }
}

/// The queue of writes and the desk they are committed at.
pub struct Writer {
    queue: Mutex<VecDeque<Command>>,
    desk: Mutex<Desk>,
    /// Rung by whoever leaves the desk with writes still queued: the writer thread takes them.
    bell: SyncSender<()>,
    max_batch: usize,
}

/// The write connection and what the writer keeps beside it.
struct Desk {
    conn: Connection,
    ring: Ring,
    capacity: usize,
    path: std::path::PathBuf,
    health: Arc<Health>,
    commits: Arc<CommitStats>,
    /// Set by `close`: every later write is refused (`JournalError::Closed`).
    closed: bool,
}

impl Writer {
    /// A writer over `conn` (the journal's write connection, already set up), and the bell its
    /// writer thread waits on ([`stand_by`]).
    pub fn new(
        conn: Connection,
        capacity: usize,
        batching: Batching,
        path: std::path::PathBuf,
        health: Arc<Health>,
        commits: Arc<CommitStats>,
    ) -> (Arc<Writer>, Receiver<()>) {
        let ring = Ring::read(&conn).unwrap_or_default();
        let (bell, rung) = sync_channel(1);
        let desk = Desk {
            conn,
            ring,
            capacity,
            path,
            health,
            commits,
            closed: false,
        };
        let writer = Writer {
            queue: Mutex::default(),
            desk: Mutex::new(desk),
            bell,
            max_batch: batching.max_batch.max(1),
        };
        (Arc::new(writer), rung)
    }

    /// Queues `cmd` and, if the desk is free, commits at it on this thread: one transaction of
    /// everything queued, this write among it. Otherwise whoever is at the desk takes it (they
    /// look at the queue as they leave). The answer goes to the command's reply.
    pub fn write(&self, cmd: Command) {
        let mut desk = {
            let mut queue = lock(&self.queue);
            queue.push_back(cmd);
            // Tried while the queue is held: whoever leaves the desk looks at the queue while
            // holding it too, so either they see this write or this caller gets the desk.
            match self.desk.try_lock() {
                Ok(desk) => desk,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            }
        };
        self.commit_queued(&mut desk, 1);
        if self.leave(desk) {
            if let Err(TrySendError::Disconnected(())) = self.bell.try_send(()) {
                // No writer thread (it ends only at close, or by a panic): nobody else would
                // take what is queued, so this caller does.
                self.commit_all();
            }
        }
    }

    /// Waits for the desk and commits until nothing is queued, as many transactions as it
    /// takes (what the writer thread does when rung); whether the desk is closed.
    fn commit_all(&self) -> bool {
        loop {
            let mut desk = lock(&self.desk);
            self.commit_queued(&mut desk, usize::MAX);
            if desk.closed {
                return true;
            }
            if !self.leave(desk) {
                return false;
            }
        }
    }

    /// Whether someone is at the desk (a test's way to know a caller is committing).
    #[cfg(test)]
    pub fn desk_taken(&self) -> bool {
        matches!(self.desk.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// Queues `cmd` without committing it: the next to sit at the desk takes it (a test's way
    /// to put two writes in one transaction).
    #[cfg(test)]
    pub fn queue(&self, cmd: Command) {
        lock(&self.queue).push_back(cmd);
    }

    /// Commits everything queued, then closes the desk: every later write is refused, and the
    /// writer thread (if any) returns.
    pub fn close(&self) {
        let mut desk = lock(&self.desk);
        self.commit_queued(&mut desk, usize::MAX);
        desk.closed = true;
        drop(desk);
        let _ = self.bell.try_send(());
    }

    /// Up to `rounds` transactions of what is queued, each of at most `max_batch` writes.
    fn commit_queued(&self, desk: &mut Desk, rounds: usize) {
        for _ in 0..rounds {
            let batch: Vec<Command> = {
                let mut queue = lock(&self.queue);
                let n = queue.len().min(self.max_batch);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            desk.commit(batch);
        }
    }

    /// Leaves the desk; whether writes are still queued (someone must take them).
    fn leave(&self, desk: MutexGuard<'_, Desk>) -> bool {
        let queue = lock(&self.queue);
        drop(desk);
        !queue.is_empty()
    }
}

/// The writer thread: whenever the bell rings, commits everything queued, in as many
/// transactions as it takes. Returns once the desk is closed, or once the writer is dropped
/// (it holds no strong reference, so a journal dropped unclosed still lets go of its file).
pub fn stand_by(writer: Weak<Writer>, bell: Receiver<()>) {
    while bell.recv().is_ok() {
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if writer.commit_all() {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Desk {
    /// One transaction of `batch`; every command's answer is sent once it has committed (or
    /// failed).
    fn commit(&mut self, batch: Vec<Command>) {
        if self.closed {
            // Dropping a command drops its reply: the caller sees `JournalError::Closed`.
            return;
        }
        let watch = Watch {
            path: &self.path,
            health: &self.health,
        };
        // Only transactions that write are timed: a lone ping commits nothing and syncs nothing.
        let writes = batch.iter().any(|c| {
            matches!(
                c,
                Command::Begin { .. } | Command::Settle { .. } | Command::Amend { .. }
            )
        });
        if let Some(why) = watch.stopped() {
            if writes {
                self.commits.failures.inc();
            }
            // After an I/O error nothing is written again: a restart recovers as after a crash.
            let commit = Err(why);
            for cmd in batch {
                refuse(cmd, "").send(&commit);
            }
            return;
        }
        let started = std::time::Instant::now();
        let before = self.ring;
        let (pending, commit) = apply(&mut self.conn, batch, self.capacity, &mut self.ring, &watch);
        if writes {
            self.commits.latency.observe(started.elapsed());
            if commit.is_err() {
                self.commits.failures.inc();
            }
        }
        if commit.is_err() {
            // The transaction rolled back: re-read where the ring stands.
            self.ring = Ring::read(&self.conn).unwrap_or(before);
        }
        for p in pending {
            p.send(&commit);
        }
        self.commits
            .cache_bytes
            .store(super::memory::cache_used(&self.conn), Ordering::Relaxed);
    }
}

fn apply(
    conn: &mut Connection,
    batch: Vec<Command>,
    capacity: usize,
    ring: &mut Ring,
    watch: &Watch<'_>,
) -> (Vec<Pending>, Result<(), String>) {
    let now = now_rfc3339();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = watch.fail(&e);
            let pending = batch.into_iter().map(|c| refuse(c, &msg)).collect();
            return (pending, Err(msg));
        }
    };
    let mut pending = Vec::with_capacity(batch.len());
    let mut any_final = false;
    let mut writes = false;
    let mut probe = false;
    // A statement's error is that command's alone, unless it is a disk or I/O fault: then
    // SQLite may have rolled the whole transaction back, and that fault is the batch's answer.
    let fault: std::cell::RefCell<Option<String>> = Default::default();
    let failed = |e: rusqlite::Error| {
        let msg = watch.fail(&e);
        if Fault::of(&e) != Fault::Other {
            fault.borrow_mut().get_or_insert_with(|| msg.clone());
        }
        JournalError::Write(msg)
    };
    for cmd in batch {
        match cmd {
            Command::Begin { intent, reply } => {
                writes = true;
                let r = begin(&tx, &intent, &now).map_err(failed);
                if matches!(r, Ok(Begin::Started)) {
                    ring.entries += 1;
                }
                pending.push(Pending::Begin(reply, r));
            }
            Command::Settle {
                request_id,
                state,
                response,
                reply,
            } => {
                let order = ring.final_order + 1;
                writes = true;
                let r = settle(&tx, &request_id, state, &response, &now, order).map_err(failed);
                if matches!(r, Ok(true)) && state == State::Final {
                    ring.final_order = order;
                    any_final = true;
                }
                pending.push(Pending::Settle(reply, r));
            }
            Command::Amend {
                request_id,
                operation,
                reply,
            } => {
                writes = true;
                let r = amend(&tx, &request_id, &operation, &now).map_err(failed);
                pending.push(Pending::Settle(reply, r));
            }
            Command::Ping { reply } => {
                // While writes fail (and once at start), each ping tries a real write: it
                // notices space coming back, and an I/O error stops the writer (and so the
                // watchdog).
                probe = watch.health.probe_due();
                pending.push(Pending::Unit(reply))
            }
        }
    }
    let commit = (|| {
        if any_final {
            ring.entries -= evict(&tx, capacity, ring.entries)?;
        }
        if probe {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS writer_probe (id INTEGER PRIMARY KEY, at TEXT);
                 INSERT OR REPLACE INTO writer_probe VALUES (1, datetime('now'));",
            )?;
        }
        tx.commit()
    })();
    let commit = match commit {
        // An I/O error earlier in this transaction: its commit is not trusted either.
        Ok(()) if watch.stopped().is_some() => Err(watch.stopped().unwrap_or_default()),
        Ok(()) => {
            if writes || probe {
                watch.health.committed();
            }
            Ok(())
        }
        Err(e) => match (watch.stopped(), fault.take()) {
            // A statement already failed with an I/O error or a full disk: the commit's own
            // error ("no transaction is active") says less.
            (Some(why), _) => Err(why),
            (None, Some(msg)) => Err(msg),
            (None, None) => Err(watch.fail(&e)),
        },
    };
    // A ping that found the disk still full is still an answer: the daemon lives, it just
    // cannot write. Only an I/O error (stopped) fails the ping.
    let commit = match (commit, probe) {
        (Err(_), true) if watch.stopped().is_none() && !writes => Ok(()),
        (c, _) => c,
    };
    (pending, commit)
}

fn refuse(cmd: Command, e: &str) -> Pending {
    let err = || JournalError::Write(e.to_owned());
    match cmd {
        Command::Begin { reply, .. } => Pending::Begin(reply, Err(err())),
        Command::Settle { reply, .. } | Command::Amend { reply, .. } => {
            Pending::Settle(reply, Err(err()))
        }
        Command::Ping { reply } => Pending::Unit(reply),
    }
}

/// The writer's statements, public so that the benchmark's SQLite floor
/// (benches/waits/sqlite_floor.rs) makes exactly these commits.
/// An intent: request_id, action, provider, operation, created_at, updated_at.
pub const SQL_BEGIN: &str = "INSERT INTO operations
    (request_id, action, provider, state, operation, created_at, updated_at)
    VALUES (?1, ?2, ?3, 'in_flight', ?4, ?5, ?6)
    ON CONFLICT(request_id) DO NOTHING";
/// An outcome: state, response, updated_at, final_order, request_id.
pub const SQL_SETTLE: &str = "UPDATE operations SET state = ?1, response = ?2, updated_at = ?3,
    final_order = ?4 WHERE request_id = ?5 AND state != 'final'";
/// The oldest `?1` final entries, evicted.
pub const SQL_EVICT: &str = "DELETE FROM operations WHERE seq IN
    (SELECT seq FROM operations WHERE state = 'final' ORDER BY final_order LIMIT ?1)";

fn begin(tx: &Connection, i: &Intent, now: &str) -> rusqlite::Result<Begin> {
    let inserted = tx.prepare_cached(SQL_BEGIN).and_then(|mut s| {
        s.execute(params![
            i.request_id,
            i.action,
            i.provider,
            i.operation,
            i.created_at,
            now
        ])
    })?;
    Ok(if inserted == 1 {
        Begin::Started
    } else {
        Begin::Duplicate
    })
}

fn settle(
    tx: &Connection,
    request_id: &str,
    state: State,
    response: &str,
    now: &str,
    order: i64,
) -> rusqlite::Result<bool> {
    let order = (state == State::Final).then_some(order);
    tx.prepare_cached(SQL_SETTLE)
        .and_then(|mut s| s.execute(params![state.as_str(), response, now, order, request_id]))
        .map(|n| n == 1)
}

fn amend(tx: &Connection, request_id: &str, operation: &str, now: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "UPDATE operations SET operation = ?1, updated_at = ?2
         WHERE request_id = ?3 AND state != 'final'",
    )
    .and_then(|mut s| s.execute(params![operation, now, request_id]))
    .map(|n| n == 1)
}

/// Drops the oldest final entries beyond `capacity` of the `entries` the journal holds; how
/// many it dropped. Unresolved entries are never touched, so the journal exceeds `capacity`
/// only when more than `capacity` operations are unresolved.
fn evict(tx: &Connection, capacity: usize, entries: i64) -> rusqlite::Result<i64> {
    let excess = entries - capacity as i64;
    if excess <= 0 {
        return Ok(0);
    }
    let dropped = tx.prepare_cached(SQL_EVICT)?.execute(params![excess])?;
    Ok(dropped as i64)
}

/// Where the ring stands, kept by the writer between transactions (it is the journal's only
/// writer while the daemon runs) and read again from the file after one rolled back: the
/// last final order given, and how many entries it holds. Counting the entries at each
/// eviction instead reads every page of the table (about 5 µs a pay at 500).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Ring {
    final_order: i64,
    entries: i64,
}

impl Ring {
    fn read(conn: &Connection) -> rusqlite::Result<Ring> {
        conn.query_row(
            "SELECT coalesce(max(final_order), 0), count(*) FROM operations",
            [],
            |r| {
                Ok(Ring {
                    final_order: r.get(0)?,
                    entries: r.get(1)?,
                })
            },
        )
    }
}
