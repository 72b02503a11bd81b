//! The journal's files stay bounded by `journal.capacity` however many sales go through: the
//! database reuses the pages of evicted results, and the WAL is checkpointed back into it.
//! Sizes are compared with bounds derived below, never with timings.

mod common;

use std::path::Path;

use common::Daemon;
use posbridge::journal::WAL_CHECKPOINT_PAGES;
use serde_json::json;

const CAPACITY: u64 = 50;
/// 20 rings' worth: far past the point where eviction starts, and enough WAL frames (about 2 per
/// sale) to pass the checkpoint threshold twice.
const SALES: u64 = 1000;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn the_journal_and_its_wal_stay_under_a_bound_set_by_the_capacity() {
    let d = Daemon::start_with(Some(&format!("[journal]\ncapacity = {CAPACITY}\n")), &[]);
    let journal = d.state.join("journal.sqlite");
    let wal = d.state.join("journal.sqlite-wal");
    let mut c = d.client();
    let mut seen = Vec::new();
    for i in 0..SALES {
        let req = json!({"action": "pay", "request_id": format!("s-{i}"), "amount": 1000 + i % 50});
        let answer = c.line(&req.to_string());
        assert!(answer.starts_with("{\"code\":0,"), "{answer}");
        if i % 100 == 99 {
            seen.push((i + 1, size(&journal), size(&wal)));
        }
    }
    let db =
        rusqlite::Connection::open_with_flags(&journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let one = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64;
    let page = one("PRAGMA page_size");
    // The largest row as stored: every column's bytes.
    let row = one(
        "SELECT max(length(request_id) + length(action) + length(provider) + length(state)
                    + length(operation) + length(response) + length(created_at)
                    + length(updated_at) + 16) FROM operations",
    );
    // The database: each kept result is a row in the table and an entry in the request_id and
    // final_order indexes (64 bytes covers both entries and the cells' headers). SQLite
    // rebalances a b-tree page that falls under a third full after deletes, so pages hold at
    // least a third of their room: 3x the bytes. Plus 16 pages: the schema, sqlite_sequence,
    // writer_probe, the index roots and the free-list trunk. Evicted rows' pages are reused,
    // so the high mark is set by the capacity, not by the number of sales.
    let db_bound = CAPACITY * 3 * (row + 64) + 16 * page;
    // The WAL: checkpointed once it holds WAL_CHECKPOINT_PAGES frames (each a page and a 24-byte
    // header, after a 32-byte file header), then reused from its start; it overshoots by the
    // last transaction's frames (a sale writes a few pages; 64 frames of slack).
    let wal_bound = (WAL_CHECKPOINT_PAGES as u64 + 64) * (page + 24) + 32;
    eprintln!("sales, journal bytes, wal bytes: {seen:?}; bounds {db_bound}, {wal_bound}");
    for (sales, db, wal) in &seen {
        assert!(
            *db <= db_bound,
            "after {sales} sales the journal is {db} bytes, over its bound {db_bound}: {seen:?}"
        );
        assert!(
            *wal <= wal_bound,
            "after {sales} sales the WAL is {wal} bytes, over its bound {wal_bound}: {seen:?}"
        );
    }
    assert_eq!(one("SELECT count(*) FROM operations"), CAPACITY);
}
