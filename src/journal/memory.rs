//! What SQLite holds in memory, and its bound: the page cache each connection may fill.
//!
//! For the metrics page and the benchmarks: the heap of the whole SQLite library in this process
//! and the page cache of one connection, read from SQLite's own counters. Reading them does no
//! I/O and changes nothing; setting a bound only caps what a connection keeps of pages it has
//! read (the file on disk is untouched). Any room that owns a SQLite connection (the journal, a
//! backend's own store) may use these; nothing here knows what is in the file.

use rusqlite::{ffi, Connection};

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

/// Caps the page cache of `conn` at about `kib` KiB (`PRAGMA cache_size = -kib`): pages beyond
/// it are dropped from memory, least recently used first, and read again when needed.
pub fn bound_cache(conn: &Connection, kib: u32) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -i64::from(kib))
}
