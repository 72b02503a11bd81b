//! The version path without the daemon: steps in one transaction, run twice, newer refused.

use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/journals/v0.1.0-05f1b36.sqlite"
);

fn v0_copy(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("journal.sqlite");
    std::fs::copy(FIXTURE, &path).unwrap();
    path
}

fn version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn tables(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// A step that writes, then fails: stands for a migration that breaks halfway.
fn breaks_midway(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE half_done (x INTEGER);
         UPDATE operations SET response = 'rewritten';",
    )?;
    tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
}

#[test]
fn a_step_that_fails_midway_leaves_the_journal_at_its_old_version_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = v0_copy(&dir);
    let mut conn = Connection::open(&path).unwrap();
    let before = responses(&conn);
    let tables_before = tables(&conn);
    let steps: &[Step] = &[v0_to_v1, breaks_midway];
    assert!(
        bring_up_with(&mut conn, &path, steps).is_err(),
        "the failing step's error is the answer"
    );
    assert_eq!(version(&conn), 0, "no step of the two counts");
    assert_eq!(tables(&conn), tables_before, "half_done rolled back");
    let after = responses(&conn);
    assert_eq!(before, after, "the rows the step rewrote are as they were");
    // And a later binary whose steps work brings it up from 0 as if nothing had happened.
    assert_eq!(
        bring_up(&mut conn, &path).unwrap().unwrap(),
        BroughtUp::Migrated { from: 0 }
    );
    assert_eq!(version(&conn), VERSION);
}

#[test]
fn bringing_up_twice_runs_each_step_once_and_a_step_run_again_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = v0_copy(&dir);
    let mut conn = Connection::open(&path).unwrap();
    assert_eq!(
        bring_up(&mut conn, &path).unwrap().unwrap(),
        BroughtUp::Migrated { from: 0 }
    );
    let layout = tables(&conn);
    assert_eq!(
        bring_up(&mut conn, &path).unwrap().unwrap(),
        BroughtUp::Current
    );
    // A step run on a journal it already brought up (as after a restore of an old copy of
    // the version number alone) changes nothing.
    let tx = conn.transaction().unwrap();
    for step in STEPS {
        step(&tx).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(tables(&conn), layout);
    assert_eq!(version(&conn), VERSION);
}

#[test]
fn a_fresh_journal_is_created_at_the_newest_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut conn = Connection::open(&path).unwrap();
    assert_eq!(
        bring_up(&mut conn, &path).unwrap().unwrap(),
        BroughtUp::Created
    );
    assert_eq!(version(&conn), VERSION);
    assert!(tables(&conn).contains(&"operations".to_string()));
}

#[test]
fn a_newer_journal_is_named_with_both_versions_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = v0_copy(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", VERSION + 2)
        .unwrap();
    drop(conn);
    let newer = refuse_newer(&path).unwrap().unwrap_err().to_string();
    assert!(
        newer.contains(&format!(
            "journal schema {}; this binary knows up to {VERSION}",
            VERSION + 2
        )),
        "{newer}"
    );
    assert!(
        newer.contains("Install the newer posbridge again"),
        "{newer}"
    );
    assert!(newer.contains("move"), "{newer}");
    let mut conn = Connection::open(&path).unwrap();
    assert!(bring_up(&mut conn, &path).unwrap().is_err());
    assert_eq!(version(&conn), VERSION + 2);
}

/// Every stored answer, in order.
fn responses(conn: &Connection) -> Vec<Option<String>> {
    conn.prepare("SELECT response FROM operations ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}
