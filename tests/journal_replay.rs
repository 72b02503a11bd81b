//! A journal written by an earlier version is answered from byte for byte: get_result, asked
//! the v1 way and the LIFE POS way, gives exactly what that version gave for each of its
//! operations (tests/fixtures/journals/README.md), now that the journal holds the exchange's
//! typed answer and the API renders it.

mod common;

use common::Daemon;

/// The journals of earlier versions, each with the get_result answers that version gave.
const FIXTURES: &[&str] = &["v0.1.0-05f1b36"];

fn fixture(name: &str, ext: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journals")
        .join(format!("{name}.{ext}"))
}

/// The `> request` / `< answer` pairs of an `.answers` file, raw.
fn exchanges(text: &str) -> Vec<(&str, &str)> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines
        .chunks(2)
        .map(|pair| match pair {
            [req, ans] => (
                req.strip_prefix("> ").expect("a request line"),
                ans.strip_prefix("< ").expect("an answer line"),
            ),
            _ => panic!("a request without its answer: {pair:?}"),
        })
        .collect()
}

#[test]
fn get_result_answers_the_bytes_an_earlier_version_gave_from_its_own_journal() {
    for name in FIXTURES {
        // The daemon made its state directory; the earlier version's journal replaces its own
        // (stopped cleanly, so nothing of the fresh journal is left in a WAL).
        let mut d = Daemon::start();
        assert!(d.terminate().success(), "{}", d.log());
        for file in ["journal.sqlite-wal", "journal.sqlite-shm"] {
            let _ = std::fs::remove_file(d.state.join(file));
        }
        std::fs::copy(fixture(name, "sqlite"), d.state.join("journal.sqlite")).unwrap();
        d.restart();
        let text = std::fs::read_to_string(fixture(name, "answers")).unwrap();
        let pairs = exchanges(&text);
        assert!(pairs.len() >= 12, "{name}: {} answers", pairs.len());
        let mut client = d.client();
        for (request, answered) in pairs {
            assert_eq!(client.line(request), answered, "{name}: {request}");
        }
    }
}
