//! The journal's layout and its version (`PRAGMA user_version`), and the steps that bring an
//! older journal forward.
//!
//! Version 0 is the layout of posbridge 0.1.0, which wrote no version; version 1 is the same
//! tables with the version stamped. Each step of `STEPS` runs inside ONE transaction together
//! with the `user_version` bump, at open, before anything else writes: a crash or an error in
//! the middle leaves the journal exactly at its old version. A fresh journal is created at the
//! newest version directly. A journal newer than this binary knows is refused before anything
//! can write to it (read through a read-only connection). This module decides no outcome and
//! reads no operation's content.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// The newest layout this binary knows (and writes).
pub const VERSION: i64 = STEPS.len() as i64;

/// One step forward: `STEPS[n]` takes a journal at version `n` to `n + 1`.
pub type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// Every step, oldest first. Never edit a released step: add the next one.
pub const STEPS: &[Step] = &[v0_to_v1];

/// Layout 1 (and 0): what `Journal` reads and writes today.
const LAYOUT_1: &str = "
CREATE TABLE IF NOT EXISTS operations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL UNIQUE,
    action      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('in_flight', 'unknown', 'final')),
    operation   TEXT NOT NULL,
    response    TEXT,
    final_order INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_final_order ON operations(final_order)
    WHERE state = 'final';
CREATE INDEX IF NOT EXISTS operations_unresolved ON operations(state) WHERE state != 'final';
";

/// The newest layout, for a fresh journal.
const LAYOUT: &str = LAYOUT_1;

/// 0.1.0 (no version) to 1: the tables are the same. 0.1.0 ran its `CREATE ... IF NOT EXISTS`
/// at every start, so this step does too (a journal it made before an index existed gets it),
/// and the version is stamped with it.
fn v0_to_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(LAYOUT_1)
}

/// A journal written by a newer posbridge: what the refusal says.
#[derive(Debug)]
pub struct Newer {
    pub path: PathBuf,
    pub found: i64,
}

impl std::fmt::Display for Newer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal database {path} was written by a newer posbridge (journal schema {found}; \
             this binary knows up to {VERSION}). posbridge will not start on it and has not \
             changed it. Install the newer posbridge again; or, to start with an empty journal, \
             stop posbridge and move {path} (with its -wal and -shm) aside, then check the \
             sales it holds in the backends' portals",
            path = self.path.display(),
            found = self.found,
        )
    }
}

impl std::error::Error for Newer {}

/// The journal's version, read without writing anything (read-only connection). `None` when
/// there is no file yet.
pub fn version_of(path: &Path) -> rusqlite::Result<Option<i64>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map(Some)
}

/// Refuses a journal newer than this binary, touching nothing: called before the journal is
/// opened for writing.
pub fn refuse_newer(path: &Path) -> rusqlite::Result<Result<(), Newer>> {
    Ok(match version_of(path)? {
        Some(found) if found > VERSION => Err(Newer {
            path: path.to_owned(),
            found,
        }),
        _ => Ok(()),
    })
}

/// What `bring_up` did.
#[derive(Debug, PartialEq, Eq)]
pub enum BroughtUp {
    Created,
    Current,
    Migrated { from: i64 },
}

/// Creates the layout of a fresh journal at `VERSION`, or runs the steps from the journal's
/// version to `VERSION`: all in one transaction with the version bump.
pub fn bring_up(conn: &mut Connection, path: &Path) -> rusqlite::Result<Result<BroughtUp, Newer>> {
    bring_up_with(conn, path, STEPS)
}

/// `bring_up` with a given list of steps (tests give one that fails midway).
pub fn bring_up_with(
    conn: &mut Connection,
    path: &Path,
    steps: &[Step],
) -> rusqlite::Result<Result<BroughtUp, Newer>> {
    let newest = steps.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > newest {
        // Read again under the write lock; nothing was written (the transaction rolls back).
        return Ok(Err(Newer {
            path: path.to_owned(),
            found,
        }));
    }
    if found < 0 {
        return Err(rusqlite::Error::IntegralValueOutOfRange(0, found));
    }
    let empty: bool = tx.query_row("SELECT count(*) = 0 FROM sqlite_master", [], |r| r.get(0))?;
    let done = if empty {
        tx.execute_batch(LAYOUT)?;
        BroughtUp::Created
    } else if found == newest {
        return Ok(Ok(BroughtUp::Current));
    } else {
        for step in &steps[found as usize..] {
            step(&tx)?;
        }
        BroughtUp::Migrated { from: found }
    };
    tx.pragma_update(None, "user_version", newest)?;
    tx.commit()?;
    Ok(Ok(done))
}

#[cfg(test)]
mod tests;
