//! The journal's single writer: group commit of queued intents and outcomes.
//!
//! Why a thread and not a task: every commit blocks on fsync, and SQLite connections are not
//! async. Everything that arrives while one transaction commits goes into the next one, so under
//! load many operations share one fsync; alone, an operation pays for exactly one.

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{Begin, Intent, JournalError, State};
use crate::clock::now_rfc3339;

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
    Shutdown {
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

pub fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    capacity: usize,
    batching: Batching,
) {
    let mut final_order: i64 = conn
        .query_row(
            "SELECT coalesce(max(final_order), 0) FROM operations",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < batching.max_batch.max(1) {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        let stop = batch.iter().any(|c| matches!(c, Command::Shutdown { .. }));
        let (pending, commit) = apply(&mut conn, batch, capacity, &mut final_order);
        if commit.is_err() {
            // The transaction rolled back: re-read where the final order stands.
            final_order = conn
                .query_row(
                    "SELECT coalesce(max(final_order), 0) FROM operations",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(final_order);
        }
        for p in pending {
            p.send(&commit);
        }
        if stop {
            break;
        }
    }
}

fn apply(
    conn: &mut Connection,
    batch: Vec<Command>,
    capacity: usize,
    final_order: &mut i64,
) -> (Vec<Pending>, Result<(), String>) {
    let now = now_rfc3339();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let pending = batch.into_iter().map(|c| refuse(c, &e)).collect();
            return (pending, Err(e.to_string()));
        }
    };
    let mut pending = Vec::with_capacity(batch.len());
    let mut any_final = false;
    for cmd in batch {
        match cmd {
            Command::Begin { intent, reply } => {
                let r = begin(&tx, &intent, &now);
                pending.push(Pending::Begin(reply, r));
            }
            Command::Settle {
                request_id,
                state,
                response,
                reply,
            } => {
                let order = *final_order + 1;
                let r = settle(&tx, &request_id, state, &response, &now, order);
                if matches!(r, Ok(true)) && state == State::Final {
                    *final_order = order;
                    any_final = true;
                }
                pending.push(Pending::Settle(reply, r));
            }
            Command::Amend {
                request_id,
                operation,
                reply,
            } => {
                let r = amend(&tx, &request_id, &operation, &now);
                pending.push(Pending::Settle(reply, r));
            }
            Command::Ping { reply } | Command::Shutdown { reply } => {
                pending.push(Pending::Unit(reply))
            }
        }
    }
    let commit = (|| {
        if any_final {
            evict(&tx, capacity)?;
        }
        tx.commit()
    })()
    .map_err(|e| e.to_string());
    (pending, commit)
}

fn refuse(cmd: Command, e: &rusqlite::Error) -> Pending {
    let err = || JournalError::Write(e.to_string());
    match cmd {
        Command::Begin { reply, .. } => Pending::Begin(reply, Err(err())),
        Command::Settle { reply, .. } | Command::Amend { reply, .. } => {
            Pending::Settle(reply, Err(err()))
        }
        Command::Ping { reply } | Command::Shutdown { reply } => Pending::Unit(reply),
    }
}

fn begin(tx: &Connection, i: &Intent, now: &str) -> Result<Begin, JournalError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO operations
                (request_id, action, provider, state, operation, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'in_flight', ?4, ?5, ?6)
             ON CONFLICT(request_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                i.request_id,
                i.action,
                i.provider,
                i.operation,
                i.created_at,
                now
            ])
        })
        .map_err(|e| JournalError::Write(e.to_string()))?;
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
) -> Result<bool, JournalError> {
    let order = (state == State::Final).then_some(order);
    tx.prepare_cached(
        "UPDATE operations SET state = ?1, response = ?2, updated_at = ?3, final_order = ?4
         WHERE request_id = ?5 AND state != 'final'",
    )
    .and_then(|mut s| s.execute(params![state.as_str(), response, now, order, request_id]))
    .map(|n| n == 1)
    .map_err(|e| JournalError::Write(e.to_string()))
}

fn amend(
    tx: &Connection,
    request_id: &str,
    operation: &str,
    now: &str,
) -> Result<bool, JournalError> {
    tx.prepare_cached(
        "UPDATE operations SET operation = ?1, updated_at = ?2
         WHERE request_id = ?3 AND state != 'final'",
    )
    .and_then(|mut s| s.execute(params![operation, now, request_id]))
    .map(|n| n == 1)
    .map_err(|e| JournalError::Write(e.to_string()))
}

/// Drops the oldest final entries beyond `capacity`. Unresolved entries are never touched, so
/// the journal exceeds `capacity` only when more than `capacity` operations are unresolved.
fn evict(tx: &Connection, capacity: usize) -> rusqlite::Result<()> {
    let total: i64 = tx.query_row("SELECT count(*) FROM operations", [], |r| r.get(0))?;
    let excess = total - capacity as i64;
    if excess > 0 {
        tx.prepare_cached(
            "DELETE FROM operations WHERE seq IN
               (SELECT seq FROM operations WHERE state = 'final' ORDER BY final_order LIMIT ?1)",
        )?
        .execute(params![excess])?;
    }
    Ok(())
}
