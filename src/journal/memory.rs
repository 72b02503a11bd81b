//! What SQLite holds in memory, and its bound: the page cache each connection may fill.
//!
//! For the metrics page and the benchmarks: the heap of the whole SQLite library in this process
//! and the page cache of one connection, read from SQLite's own counters. Reading them does no
//! I/O and changes nothing; setting a bound only caps what a connection keeps of pages it has
//! read (the file on disk is untouched). Any room that owns a SQLite connection (the journal, a
//! backend's own store) may use these; nothing here knows what is in the file.
//!
//! Why every connection gets a bound, not just the busiest: the bundled SQLite is built with
//! `SQLITE_ENABLE_MEMORY_MANAGEMENT`, so the page caches of all connections of the process are
//! one pool (pcache1's single group). A connection that reaches its own `cache_size` takes the
//! least recently used page of the whole pool, whichever connection's it was, and keeps growing;
//! the pool is bounded only by the sum of every open connection's `cache_size` (SQLite's
//! default, 2000 KiB each, and as much again for a temp database an integrity check opened).
//! So one connection that touches many pages (the sim ledger) ends up holding the whole pool,
//! and a bound on it alone changes nothing: only the sum bounds the process. With the bounds
//! here and the sim ledger's, the daemon's pool is 1728 KiB (writer 1024, reader 256, ledger
//! 256, a temp database of 64 on each of the three) instead of 8 MiB.

use std::sync::atomic::Ordering;

use rusqlite::{ffi, Connection, DatabaseName};

use super::Journal;

/// The page cache of the journal's writer, KiB: twice what a full ring of 500 results takes
/// today (117 pages of 4 KiB, indexes included), so it may keep the whole journal; with a
/// larger `journal.capacity` it keeps the hot pages (the newest rows, the oldest ones next to
/// go, the indexes' upper levels).
pub const WRITER_CACHE_KIB: u32 = 1024;

/// The page cache of the journal's reader, KiB. In WAL mode a connection drops its whole cache
/// when it starts a read after another connection committed, so under sales the reader keeps
/// only the pages of one look-up (an index path and a table leaf): a small cache does.
pub const READER_CACHE_KIB: u32 = 256;

impl Journal {
    /// Bytes of page cache the journal's connections hold: the writer's after its last
    /// transaction, and the reader's now.
    pub fn cache_bytes(&self) -> (u64, u64) {
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        (
            self.commits.cache_bytes.load(Ordering::Relaxed),
            cache_used(&reader),
        )
    }
}

/// Bytes of heap the SQLite library holds in this whole process: every connection's page cache,
/// schema and prepared statements.
pub fn sqlite_memory_used() -> u64 {
    // SAFETY: takes no argument; SQLite's memory statistics are guarded by its own mutex.
    let used = unsafe { ffi::sqlite3_memory_used() };
    used.max(0) as u64
}

/// Bytes the page cache of `conn` holds now (SQLITE_DBSTATUS_CACHE_USED).
pub fn cache_used(conn: &Connection) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: the handle lives while `conn` is borrowed, and the borrow keeps any other use of
    // this connection out; the call only reads the pager's counters.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    if rc == ffi::SQLITE_OK {
        current.max(0) as u64
    } else {
        0
    }
}

/// The page cache of a connection's temp database, KiB: SQLite opens it for an integrity check
/// (the journal's, at open) and it would otherwise keep SQLite's default, 2000 KiB of the pool.
pub const TEMP_CACHE_KIB: u32 = 64;

/// Caps the page cache of `conn` at about `kib` KiB (`PRAGMA cache_size = -kib`), and that of its
/// temp database at TEMP_CACHE_KIB: pages beyond it are dropped from memory, least recently used
/// first, and read again when needed. Call it after any integrity check of the connection.
pub fn bound_cache(conn: &Connection, kib: u32) -> rusqlite::Result<()> {
    conn.pragma_update(Some(DatabaseName::Main), "cache_size", -i64::from(kib))?;
    conn.pragma_update(
        Some(DatabaseName::Temp),
        "cache_size",
        -i64::from(TEMP_CACHE_KIB),
    )
}
