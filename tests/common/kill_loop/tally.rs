//! The counting half of the kill loop: waits until every request's outcome settles (bounded),
//! then sets the backend's own record against the daemon's final answers and fills the
//! [`Report`]: double charges, lost sales, outcomes left unknown, answers that changed.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Report, Rig, Sent};

/// Asks get_result for every request until none is unknown or the rig's limit passes.
fn settle(rig: &mut dyn Rig, sent: &[Sent]) -> HashMap<String, Value> {
    let deadline = Instant::now() + rig.settle_limit();
    let d = rig.daemon();
    let mut finals = HashMap::new();
    loop {
        let mut open = 0;
        for s in sent {
            if finals.get(&s.id).is_some_and(|a: &Value| !is_unknown(a)) {
                continue;
            }
            let a = d.request(json!({"action": "get_result", "request_id": s.id}));
            if is_unknown(&a) {
                open += 1;
            }
            finals.insert(s.id.clone(), a);
        }
        if open == 0 || Instant::now() > deadline {
            return finals;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn is_unknown(a: &Value) -> bool {
    a["error_type"] == "unknown_result_error"
}

/// The journal's state of `request_id` (`in_flight`, `unknown`, `final`), `None` if it was
/// never journaled. Read while the daemon is down (right after a kill).
pub fn journal_state(state: &Path, request_id: &str) -> Option<String> {
    let conn = rusqlite::Connection::open_with_flags(
        state.join("journal.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the journal read-only");
    conn.query_row(
        "SELECT state FROM operations WHERE request_id = ?1",
        [request_id],
        |r| r.get(0),
    )
    .ok()
}

/// The backend id of every operation in the daemon's journal, mapped to its request_id.
pub fn journal_backend_ids(state: &Path) -> HashMap<String, String> {
    let conn = rusqlite::Connection::open_with_flags(
        state.join("journal.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the journal read-only");
    let mut stmt = conn
        .prepare("SELECT request_id, operation FROM operations")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    let mut map = HashMap::new();
    for row in rows {
        let (rid, op) = row.unwrap();
        let op: Value = serde_json::from_str(&op).unwrap_or_default();
        if let Some(b) = op["backend_id"].as_str().filter(|b| !b.is_empty()) {
            map.insert(b.to_owned(), rid);
        }
    }
    map
}

/// Sets the backend's record against the daemon's final answers.
pub fn count(rig: &mut dyn Rig, sent: &[Sent], report: &mut Report) {
    let finals = settle(rig, sent);
    let ids = journal_backend_ids(&rig.daemon().state);
    let mut by_request: HashMap<&str, usize> = HashMap::new();
    let known: HashMap<&str, &Sent> = sent.iter().map(|s| (s.id.as_str(), s)).collect();
    let charges = rig.charges();
    for c in &charges {
        // The request the backend names, else the journal's backend id, else the reader's id
        // being the request_id itself (a reader sent the POS's id).
        let rid = c
            .request
            .as_deref()
            .filter(|r| known.contains_key(r))
            .or_else(|| ids.get(&c.id).map(String::as_str))
            .or_else(|| known.contains_key(c.id.as_str()).then_some(c.id.as_str()));
        match rid.and_then(|r| known.get(r)) {
            Some(s) if s.kind == c.kind => *by_request.entry(s.id.as_str()).or_default() += 1,
            _ => {
                report.lost += 1;
                report.problems.push(format!(
                    "lost: a {:?} {} at the backend matches no request",
                    c.kind, c.id
                ));
            }
        }
    }
    let verbose = std::env::var_os("KILL_LOOP_VERBOSE").is_some();
    for s in sent {
        let a = &finals[&s.id];
        let charged = by_request.get(s.id.as_str()).copied().unwrap_or(0);
        if verbose {
            println!(
                "{} {:?} {:?} charged {charged}: before {} final {a}",
                s.id,
                s.kind,
                s.moment,
                s.answer.as_ref().map(Value::to_string).unwrap_or_default()
            );
        }
        let word = a["data"]["status"].as_str().or(a["reason"].as_str());
        *report
            .outcomes
            .entry(word.unwrap_or("?").to_owned())
            .or_default() += 1;
        if a["code"] == 0 {
            report.approved += 1;
        } else if is_unknown(a) {
            report.unknown += 1;
            report
                .unknown_why
                .push(format!("{}: {}", s.id, a["message"]));
        } else if a["error_type"] == "result_not_found_error" {
            report.never_received += 1;
        } else {
            report.declined += 1;
        }
        if charged == 1 && a["code"] == 0 && s.answer.as_ref().is_none_or(is_unknown) {
            report.recovered += 1;
        }
        if charged > 1 {
            report.double += 1;
            report
                .problems
                .push(format!("double: {} charged {charged} times", s.id));
        }
        if charged >= 1 && a["code"] != 0 && !is_unknown(a) {
            report.lost += 1;
            report
                .problems
                .push(format!("lost: {} charged, final answer {a}", s.id));
        }
        if charged == 0 && a["code"] == 0 {
            report.lost += 1;
            report.problems.push(format!(
                "lost: {} answered approved, nothing at the backend",
                s.id
            ));
        }
        if let Some(before) = s.answer.as_ref().filter(|b| !is_unknown(b)) {
            if before["code"] != a["code"] || before["data"] != a["data"] {
                report.changed += 1;
                report
                    .problems
                    .push(format!("changed: {} answered {before}, later {a}", s.id));
            }
        }
    }
}
