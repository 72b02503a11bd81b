//! Progress notes: what a provider learns in the middle of an operation that recovery will
//! need, such as an id the backend assigned (Paysera's transaction key), kept with the
//! operation's intent in the journal.
//!
//! A provider never touches the journal: it calls [`Progress::record`] on the operation it was
//! handed, and the engine, which attached a [`NoteSink`] before calling `execute`, makes the
//! note durable before `record` returns. After a crash the operation comes back from the
//! journal with its notes, readable with [`Progress::get`] in `status`. A note that could not
//! be made durable is an error: the provider must then not go on to anything it could not
//! find again without that note.
//!
//! One note has a meaning for the engine: [`EVIDENCE`], written by [`Progress::witness`] the
//! first time a backend's answer shows that the transaction exists (docs/providers.md lists,
//! per backend, what counts). From then on the engine never settles the operation as "nothing
//! was charged" on the strength of a "not found" ([`super::Outcome::NotFound`]): only a
//! positive terminal answer or a charge ends it. The first witness is kept; later ones do not
//! overwrite it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The note that says a backend has shown the transaction exists: `{"what": ..., "at": ...}`.
pub const EVIDENCE: &str = "evidence";

/// The future a [`NoteSink`] returns: `Ok` once the note is durable.
pub type NoteFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Where notes go: the engine's hook into the journal, `(key, value)`.
pub type NoteSink = Arc<dyn Fn(String, Value) -> NoteFuture + Send + Sync>;

/// The notes of one operation (journaled, as a JSON object) and, while it runs, where new
/// ones go (never journaled).
#[derive(Clone, Default)]
pub struct Progress {
    notes: Map<String, Value>,
    sink: Option<NoteSink>,
}

impl Progress {
    /// A note recorded earlier (by this run or one before a restart).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.notes.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.notes.is_empty()
    }

    /// What first showed that the transaction exists at the backend, if anything has: the
    /// [`EVIDENCE`] note as journaled (`{"what", "at"}`).
    pub fn evidence(&self) -> Option<&Value> {
        self.notes.get(EVIDENCE)
    }

    /// Records that a backend's answer has shown the transaction exists (`what`: which answer,
    /// for the operator, e.g. "init answered SUCCESS"). Durable when it returns `Ok`; the
    /// first witness stays, later calls change nothing. Call it before acting on the answer.
    pub async fn witness(&self, what: &str) -> Result<(), String> {
        self.record(
            EVIDENCE,
            serde_json::json!({"what": what, "at": crate::clock::now_rfc3339()}),
        )
        .await
    }

    /// Adds a note to this copy only (what the engine's sink does to the copy it journals).
    pub fn insert(&mut self, key: String, value: Value) {
        self.notes.insert(key, value);
    }

    /// Engine side: where [`Progress::record`] sends notes while the operation runs.
    pub fn attach(&mut self, sink: NoteSink) {
        self.sink = Some(sink);
    }

    /// Makes `key = value` durable with the operation's intent; returns once it is. An error
    /// when it could not be written (or nothing was attached to write it to).
    pub async fn record(&self, key: &str, value: Value) -> Result<(), String> {
        match &self.sink {
            Some(sink) => sink(key.to_owned(), value).await,
            None => Err("no journal is attached to this operation".into()),
        }
    }
}

impl PartialEq for Progress {
    fn eq(&self, other: &Self) -> bool {
        self.notes == other.notes
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.notes.fmt(f)
    }
}

impl Serialize for Progress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.notes.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Progress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Progress {
            notes: Map::deserialize(d)?,
            sink: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn notes_go_to_the_sink_and_round_trip_through_json() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut p = Progress::default();
        assert!(p.record("k", "v".into()).await.is_err(), "no sink, no note");
        let s = seen.clone();
        p.attach(Arc::new(move |k, v| {
            s.lock().unwrap().push((k, v));
            Box::pin(async { Ok(()) })
        }));
        p.record("transaction_key", "tk1".into()).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("transaction_key".to_owned(), Value::from("tk1"))]
        );
        p.insert("transaction_key".into(), "tk1".into());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"transaction_key":"tk1"}"#);
        let back: Progress = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.get("transaction_key"), Some(&Value::from("tk1")));
        assert!(
            back.record("x", 1.into()).await.is_err(),
            "the sink is never journaled"
        );
    }
}
