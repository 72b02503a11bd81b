//! The progress-note hook: a note a provider records while it runs is durable in the journaled
//! operation before the provider goes on, and the status check after an unknown outcome (or a
//! restart) is handed the operation with that note.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::tests::ask;
use super::*;
use crate::journal::Batching;
use crate::provider::Outcome;
use crate::provider::{Approval, Common};

/// Records `backend_key` as a note, checks the journal already holds it, then answers
/// unknown; its status check approves only when the note comes back.
struct Noting {
    journal: Arc<Journal>,
    seen_in_journal: Mutex<Option<bool>>,
    status_saw: Mutex<Option<Value>>,
}

#[async_trait]
impl Provider for Noting {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "paysera",
            "EUR",
            Duration::from_secs(5),
            &[Duration::from_millis(20)],
        );
        &COMMON
    }
    async fn execute(&self, op: &Operation) -> Outcome {
        op.progress
            .record("backend_key", "tk-42".into())
            .await
            .expect("the engine attached a sink");
        let stored = self.journal.get(&op.request_id).unwrap().unwrap().operation;
        let stored: Operation = serde_json::from_str(&stored).unwrap();
        *self.seen_in_journal.lock().unwrap() =
            Some(stored.progress.get("backend_key") == Some(&Value::from("tk-42")));
        Outcome::Unknown(Failure::new("timeout", "answer lost"))
    }
    async fn status(&self, op: &Operation) -> Outcome {
        *self.status_saw.lock().unwrap() = op.progress.get("backend_key").cloned();
        match op.progress.get("backend_key") {
            Some(_) => Outcome::Approved(Approval {
                status: "approved".into(),
                ..Default::default()
            }),
            None => Outcome::Unknown(Failure::new("timeout", "no key")),
        }
    }
}

#[tokio::test]
async fn a_progress_note_is_durable_before_the_provider_goes_on_and_reaches_status() {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let provider = Arc::new(Noting {
        journal: journal.clone(),
        seen_in_journal: Mutex::new(None),
        status_saw: Mutex::new(None),
    });
    let (engine, _queue) = Engine::new(
        journal.clone(),
        vec![provider.clone()],
        "paysera".into(),
        TaskTracker::new(),
    );
    let first = ask(&engine, Request::new(Action::Pay).id("n1").amount(5)).await;
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    assert_eq!(*provider.seen_in_journal.lock().unwrap(), Some(true));

    // The status check (as after a restart: the operation is read back from the journal).
    let entry = journal.get("n1").unwrap().unwrap();
    let settled = engine.reconcile_once(&entry).await.expect("settled");
    let v = serde_json::to_value(settled).unwrap();
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        *provider.status_saw.lock().unwrap(),
        Some(Value::from("tk-42"))
    );
    // The journaled operation still names its backend id next to the note.
    let stored: Operation =
        serde_json::from_str(&journal.get("n1").unwrap().unwrap().operation).unwrap();
    assert!(!stored.backend_id.is_empty());
    assert_eq!(
        stored.progress.get("backend_key"),
        Some(&Value::from("tk-42"))
    );
}
