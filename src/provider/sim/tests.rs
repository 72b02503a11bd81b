//! The sim ledger's connection, without the daemon.

use super::*;

#[test]
fn the_ledger_keeps_a_bounded_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::open(dir.path(), &SimConfig::default()).unwrap();
    let size: i64 = sim
        .ledger(|c| c.query_row("PRAGMA cache_size", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(
        size,
        -i64::from(LEDGER_CACHE_KIB),
        "KiB, as a negative cache_size"
    );
    assert!(sim.store_cache_bytes().is_some());
}
