//! The journal's schema version through the real binary: a journal written by an earlier
//! release is migrated at start and answers exactly as it did; one written by a newer release
//! is refused, naming both versions and what to do, and left byte for byte as it was.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Daemon;
use posbridge::journal::schema::VERSION;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journals");

/// Stops `d` and puts `fixture` in place of its journal (and no WAL beside it).
fn replace_journal(d: &mut Daemon, fixture: &Path) -> PathBuf {
    assert!(d.terminate().success());
    let journal = d.state.join("journal.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", journal.display()));
    }
    std::fs::copy(fixture, &journal).unwrap();
    journal
}

fn user_version(journal: &Path) -> i64 {
    let c =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_journal_from_0_1_0_is_migrated_and_answers_every_get_result_byte_for_byte() {
    let mut d = Daemon::start();
    let journal = replace_journal(&mut d, &Path::new(FIXTURES).join("v0.1.0-05f1b36.sqlite"));
    assert_eq!(user_version(&journal), 0, "the fixture predates versions");
    d.restart();
    assert_eq!(user_version(&journal), VERSION, "migrated at start");
    assert!(
        d.log()
            .contains(&format!("brought from schema 0 to {VERSION}")),
        "{}",
        d.log()
    );
    let answers =
        std::fs::read_to_string(Path::new(FIXTURES).join("v0.1.0-05f1b36.answers")).unwrap();
    let mut lines = answers.lines();
    let mut c = d.client();
    let mut asked = 0;
    while let Some(request) = lines.next() {
        let request = request.strip_prefix("> ").expect("a request line");
        let expected = lines
            .next()
            .and_then(|l| l.strip_prefix("< "))
            .expect("its answer");
        assert_eq!(c.line(request), expected, "answer to {request}");
        asked += 1;
    }
    assert_eq!(asked, 12, "every recorded request was asked");
}

/// Every file of the state directory whose name starts with `journal`: name, bytes, mtime.
fn journal_files(state: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_journal_from_a_newer_posbridge_is_refused_naming_both_versions_and_left_untouched() {
    let mut d = Daemon::start();
    d.request(serde_json::json!({"action": "pay", "request_id": "before", "amount": 1000}));
    assert!(d.terminate().success());
    let journal = d.state.join("journal.sqlite");
    let newer = VERSION + 1;
    {
        let c = rusqlite::Connection::open(&journal).unwrap();
        c.pragma_update(None, "user_version", newer).unwrap();
        // The last connection to close checkpoints and removes the WAL: one file remains.
    }
    // A coarse file system stamps mtimes in whole seconds or less: a write in the same
    // instant could keep the mtime, but never the bytes, which are compared too.
    std::thread::sleep(Duration::from_millis(1100));
    let before = journal_files(&d.state);
    assert_eq!(before.len(), 1, "only journal.sqlite: {:?}", before.len());

    let stderr = d.refused_start("on a journal from a newer posbridge");
    assert!(
        stderr.contains(&format!(
            "written by a newer posbridge (journal schema {newer}; this binary knows up to \
             {VERSION})"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Install the newer posbridge again"),
        "{stderr}"
    );
    assert!(stderr.contains("move"), "{stderr}");

    // The offline commands read it and write nothing either; salvage refuses it.
    let state = d.state.to_str().unwrap();
    let check = d.cli(&["journal", "check", "--state-dir", state]);
    assert!(check.status.success(), "{check:?}");
    let salvage = d.cli(&["journal", "salvage", "--state-dir", state]);
    assert!(
        String::from_utf8_lossy(&salvage.stdout).contains("nothing to salvage"),
        "{salvage:?}"
    );
    let doctor = d.cli(&[
        "doctor",
        "--json",
        "--timeout",
        "3",
        "--config",
        "/dev/null",
        "--state-dir",
        state,
    ]);
    let report = common::json_of(&doctor);
    let check = common::doctor_check(&report, "journal");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("journal schema {newer}")),
        "{check}"
    );
    let after: Vec<_> = journal_files(&d.state)
        .into_iter()
        // A reader of a WAL journal may leave its shared-memory index (-shm, never data) and an
        // empty -wal beside it; a -wal with frames would be a write.
        .filter(|(name, bytes, _)| !name.ends_with("-shm") && !bytes.is_empty())
        .collect();
    assert!(
        after == before,
        "the newer journal was changed: {:?} -> {:?}",
        before
            .iter()
            .map(|f| (&f.0, f.1.len(), f.2))
            .collect::<Vec<_>>(),
        after
            .iter()
            .map(|f| (&f.0, f.1.len(), f.2))
            .collect::<Vec<_>>()
    );
    assert_eq!(user_version(&journal), newer);
}
