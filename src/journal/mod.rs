//! The durable result journal ("ring"): every operation's write-ahead intent and its outcome.
//!
//! SQLite in WAL mode with `synchronous=FULL`: a write is acknowledged only after it is on disk.
//! One writer (`writer`) owns the write connection and commits whatever writes are queued
//! together in one transaction (group commit: one fsync for many concurrent operations); a
//! write that finds it idle is committed on the caller's own thread. Reads use their
//! own connection and never wait for a commit. The journal stores the operation as opaque
//! JSON and the answer as the exchange's [`Answer`] (written in its serde form, the v1 answer
//! object, so journals of every version read alike); it knows nothing about providers or the
//! socket API, and never decides outcomes — the engine does.
//!
//! At open, before anything else writes, the file is brought to this binary's schema version
//! (`schema`: migrations in one transaction); a journal from a newer posbridge is refused and
//! left exactly as it was.

pub mod health;
pub mod memory;
pub mod place;
pub mod salvage;
pub mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

pub use health::Health;
pub use writer::{Batching, SQL_BEGIN, SQL_EVICT, SQL_SETTLE};

use crate::exchange::{Answer, ErrorKind};
use crate::metrics::{Counter, Histogram, COMMIT_BOUNDS};

/// How the writer's commits go, for the metrics page: how long each transaction that wrote
/// took (fsync included) and how many did not commit.
#[derive(Debug)]
pub struct CommitStats {
    pub latency: Histogram,
    pub failures: Counter,
    /// Bytes of page cache the writer's connection held after its last transaction.
    pub cache_bytes: AtomicU64,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitStats {
            latency: Histogram::new(COMMIT_BOUNDS),
            failures: Counter::default(),
            cache_bytes: AtomicU64::new(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "journal database {path} is damaged: {detail}. posbridge will not start on it (it \
         would forget outcomes still unknown). With the daemon stopped, run `posbridge journal \
         check --state-dir {dir}` to see what is wrong, then `posbridge journal salvage \
         --state-dir {dir}` to move it aside and keep every readable row",
        dir = path.parent().unwrap_or(path).display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The write was not made durable (disk full, I/O error): nothing of it counts.
    /// Written by a newer posbridge: refused, and left exactly as it was.
    #[error("{0}")]
    Newer(schema::Newer),
    #[error("journal write failed: {0}")]
    Write(String),
    #[error("journal read failed: {0}")]
    Read(#[source] rusqlite::Error),
    #[error("the journal writer has stopped")]
    Closed,
}

/// Where an operation stands. Only `Final` entries may be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Intent written, the operation is being carried out by this daemon right now.
    InFlight,
    /// The outcome is not known (timeout, lost link, crash): reconciliation must find it.
    Unknown,
    /// The answer is known and stored for good.
    Final,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::InFlight => "in_flight",
            State::Unknown => "unknown",
            State::Final => "final",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<State> {
        match s {
            "in_flight" => Ok(State::InFlight),
            "unknown" => Ok(State::Unknown),
            "final" => Ok(State::Final),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("state {other:?}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

/// The write-ahead record of one operation, written before anything is contacted.
#[derive(Clone, Debug)]
pub struct Intent {
    pub request_id: String,
    pub action: String,
    pub provider: String,
    /// The operation as accepted (JSON), enough to reconcile it after a restart.
    pub operation: String,
    pub created_at: String,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: i64,
    pub request_id: String,
    pub action: String,
    pub provider: String,
    pub state: State,
    pub operation: String,
    /// The stored answer; `None` while in flight.
    pub response: Option<Answer>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub in_flight: usize,
    pub unknown: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    Started,
    /// The request_id is already in the journal: nothing was written.
    Duplicate,
}

pub struct Journal {
    path: PathBuf,
    capacity: usize,
    writes: Arc<writer::Writer>,
    reader: Mutex<Connection>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    health: Arc<Health>,
    commits: Arc<CommitStats>,
}

/// Pages written to the WAL before it is checkpointed into the database (SQLite's default).
pub const WAL_CHECKPOINT_PAGES: i64 = 1000;
/// What the WAL is cut back to once checkpointed: just above its normal high mark (1000 frames
/// of a 4 KiB page and its 24-byte header), so it is never truncated and regrown in normal use.
pub const WAL_LIMIT_BYTES: i64 = 4 << 20;

impl Journal {
    /// Opens (creating if needed) the journal at `path`, checks its integrity and starts the
    /// writer. Keeps the newest `capacity` entries; unresolved ones are never evicted.
    pub fn open(path: &Path, capacity: usize, batching: Batching) -> Result<Journal, JournalError> {
        let open_err = |source| JournalError::Open {
            path: path.to_owned(),
            source,
        };
        // A damaged file is refused, never replaced: it may hold outcomes still unknown.
        let open_err = |source: rusqlite::Error| match salvage::damage(&source) {
            Some(detail) => JournalError::Corrupt {
                path: path.to_owned(),
                detail,
            },
            None => open_err(source),
        };
        if let Err(detail) = salvage::torn(path) {
            return Err(JournalError::Corrupt {
                path: path.to_owned(),
                detail,
            });
        }
        // Before anything can write to it: a newer posbridge's journal is refused untouched.
        schema::refuse_newer(path)
            .map_err(open_err)?
            .map_err(JournalError::Newer)?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        // Checked before anything is written to it (even the WAL switch writes the header).
        if let Err(detail) = salvage::check_connection(&conn, true) {
            return Err(JournalError::Corrupt {
                path: path.to_owned(),
                detail,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        memory::bound_cache(&conn, memory::WRITER_CACHE_KIB).map_err(open_err)?;
        // The WAL's bound (docs/operations.md, "The journal file"): checkpointed back into the
        // database every WAL_CHECKPOINT_PAGES, and cut back to WAL_LIMIT_BYTES when it restarts
        // should a long read ever have held a checkpoint back.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)
            .map_err(open_err)?;
        match schema::bring_up(&mut conn, path).map_err(open_err)? {
            Ok(schema::BroughtUp::Migrated { from }) => log::info!(
                "journal {} brought from schema {from} to {}",
                path.display(),
                schema::VERSION
            ),
            Ok(_) => {}
            Err(newer) => return Err(JournalError::Newer(newer)),
        }

        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        memory::bound_cache(&reader, memory::READER_CACHE_KIB).map_err(open_err)?;

        let health = Arc::new(Health::default());
        let commits = Arc::new(CommitStats::default());
        let (writes, bell) = writer::Writer::new(
            conn,
            capacity,
            batching,
            path.to_owned(),
            health.clone(),
            commits.clone(),
        );
        let standing = Arc::downgrade(&writes);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::stand_by(standing, bell))
            .map_err(|e| open_err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok(Journal {
            path: path.to_owned(),
            capacity,
            writes,
            reader: Mutex::new(reader),
            writer_thread: Mutex::new(Some(thread)),
            health,
            commits,
        })
    }

    /// What the writer last saw go wrong (disk full, I/O error) and whether it still writes.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Commit latency and failures so far.
    pub fn commits(&self) -> &CommitStats {
        &self.commits
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> writer::Command,
    ) -> Result<T, JournalError> {
        let (tx, rx) = oneshot::channel();
        self.writes.write(make(tx));
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Writes the intent durably. Returns `Duplicate` (and writes nothing) if the request_id
    /// is already known.
    pub async fn begin(&self, intent: Intent) -> Result<Begin, JournalError> {
        self.submit(|reply| writer::Command::Begin { intent, reply })
            .await
    }

    /// Stores the answer for `request_id` durably. A final answer is never replaced: returns
    /// `false` if the entry was already final (or is gone), `true` if this call stored it.
    pub async fn settle(
        &self,
        request_id: &str,
        state: State,
        answer: &Answer,
    ) -> Result<bool, JournalError> {
        let request_id = request_id.to_owned();
        let response = serde_json::to_string(answer).expect("an answer always serializes");
        self.submit(|reply| writer::Command::Settle {
            request_id,
            state,
            response,
            reply,
        })
        .await
    }

    /// Replaces the stored operation (the intent's JSON) of `request_id` durably, while its
    /// outcome is not final: how a provider's progress note (an id the backend assigned
    /// mid-operation) is kept for recovery. `false` if the entry is final or gone.
    pub async fn amend(&self, request_id: &str, operation: String) -> Result<bool, JournalError> {
        let request_id = request_id.to_owned();
        self.submit(|reply| writer::Command::Amend {
            request_id,
            operation,
            reply,
        })
        .await
    }

    /// A round through the writer: proves it is alive and committing.
    pub async fn ping(&self) -> Result<(), JournalError> {
        self.submit(|reply| writer::Command::Ping { reply }).await
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(JournalError::Read)
    }

    pub fn get(&self, request_id: &str) -> Result<Option<Entry>, JournalError> {
        self.read(|c| {
            c.prepare_cached(&format!("{SELECT_ENTRY} WHERE request_id = ?1"))?
                .query_row(params![request_id], entry_from_row)
                .optional()
        })
    }

    /// Newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<Entry>, JournalError> {
        self.read(|c| {
            c.prepare_cached(&format!("{SELECT_ENTRY} ORDER BY seq DESC LIMIT ?1"))?
                .query_map(params![limit as i64], entry_from_row)?
                .collect()
        })
    }

    /// Every entry in `state`, oldest first.
    pub fn in_state(&self, state: State) -> Result<Vec<Entry>, JournalError> {
        self.read(|c| {
            c.prepare_cached(&format!("{SELECT_ENTRY} WHERE state = ?1 ORDER BY seq"))?
                .query_map(params![state.as_str()], entry_from_row)?
                .collect()
        })
    }

    pub fn counts(&self) -> Result<Counts, JournalError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT count(*), coalesce(sum(state = 'in_flight'), 0),
                        coalesce(sum(state = 'unknown'), 0) FROM operations",
            )?
            .query_row([], |r| {
                Ok(Counts {
                    total: r.get::<_, i64>(0)? as usize,
                    in_flight: r.get::<_, i64>(1)? as usize,
                    unknown: r.get::<_, i64>(2)? as usize,
                })
            })
        })
    }

    /// When the oldest operation whose outcome is unknown was started (RFC 3339), if any.
    pub fn oldest_unknown(&self) -> Result<Option<String>, JournalError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT created_at FROM operations WHERE state = 'unknown' ORDER BY seq LIMIT 1",
            )?
            .query_row([], |r| r.get(0))
            .optional()
        })
    }

    /// Stops the writer after it has committed everything queued so far.
    pub fn close(&self) {
        self.writes.close();
        if let Some(handle) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = handle.join();
        }
    }
}

const SELECT_ENTRY: &str = "SELECT seq, request_id, action, provider, state, operation, response,
    created_at, updated_at FROM operations";

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let request_id: String = r.get(1)?;
    Ok(Entry {
        seq: r.get(0)?,
        action: r.get(2)?,
        provider: r.get(3)?,
        state: State::parse(&r.get::<_, String>(4)?)?,
        operation: r.get(5)?,
        response: r
            .get::<_, Option<String>>(6)?
            .map(|stored| stored_answer(&request_id, &stored)),
        request_id,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// The answer stored as `stored`. One that cannot be read (the row was damaged or edited by
/// hand) is not guessed at: it reads as an unknown outcome, for a person to check.
fn stored_answer(request_id: &str, stored: &str) -> Answer {
    serde_json::from_str(stored).unwrap_or_else(|e| {
        Answer::refused(
            Some(request_id.to_owned()),
            Default::default(),
            ErrorKind::UnknownResultError,
            "answer_unreadable",
            format!("The stored answer cannot be read ({e}); check this operation by hand."),
        )
    })
}

#[cfg(test)]
mod tests;
