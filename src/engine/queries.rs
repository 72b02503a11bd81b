//! The read-only answers: get_result (with an on-demand status check of an unknown outcome),
//! status and results. Nothing here moves money.

use serde_json::{json, Value};

use super::{answer, error, stored_identity, Engine, GET_RESULT_CHECK};
use crate::exchange::{Answer, ErrorKind, Metadata};
use crate::journal::{Entry, State};
use crate::provider::OpKind;

impl Engine {
    /// The journal's entry for `id`, or the answer that says why there is none.
    pub(super) fn entry_or_answer(&self, id: &str, metadata: &Metadata) -> Result<Entry, Answer> {
        match self.journal.get(id) {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(error(
                id,
                metadata,
                ErrorKind::ResultNotFoundError,
                "not_found",
                format!(
                    "No result for request_id {id}: it was never received, or it is older \
                     than the last {} results.",
                    self.journal.capacity()
                ),
            )),
            Err(e) => Err(error(
                id,
                metadata,
                ErrorKind::DefaultError,
                "journal_unavailable",
                format!("The result journal could not be read: {e}"),
            )),
        }
    }

    pub(super) async fn get_result(&self, id: &str, metadata: &Metadata) -> Answer {
        let entry = match self.entry_or_answer(id, metadata) {
            Ok(entry) => entry,
            Err(answer) => return answer,
        };
        match (entry.state, &entry.response) {
            (State::Final, Some(stored)) => stored.clone(),
            (State::Unknown, Some(stored)) => {
                match tokio::time::timeout(GET_RESULT_CHECK, self.reconcile_once(&entry)).await {
                    Ok(Some(settled)) => settled,
                    _ => stored.clone(),
                }
            }
            _ => {
                let (id, metadata) = stored_identity(&entry);
                error(
                    &id,
                    &metadata,
                    ErrorKind::UnknownResultError,
                    "in_progress",
                    "The operation is still running; ask again shortly.".into(),
                )
            }
        }
    }

    pub(super) fn status(&self, request_id: Option<String>, metadata: Metadata) -> Answer {
        let counts = self.journal.counts().unwrap_or_default();
        let mut providers: Vec<Value> = self
            .providers
            .values()
            .map(|p| {
                let caps = p.capabilities();
                let ops: Vec<&str> = [
                    OpKind::Pay,
                    OpKind::Refund,
                    OpKind::Cancel,
                    OpKind::CloseShift,
                ]
                .into_iter()
                .filter(|k| caps.supports(*k))
                .map(OpKind::as_str)
                .collect();
                json!({"name": p.name(), "currency": p.default_currency(), "operations": ops})
            })
            .collect();
        providers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let data = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs(),
            "default_provider": self.default_provider,
            "providers": providers,
            "running": self.running(),
            "journal": {
                "path": self.journal.path(),
                "capacity": self.journal.capacity(),
                "entries": counts.total,
                "in_flight": counts.in_flight,
                "unknown": counts.unknown,
            },
        });
        let mut data = data;
        let manual = self.manual_checks();
        data["journal"]["manual_check"] = json!(manual.len());
        data["manual_check"] = json!(manual);
        crate::journal::health::add_to_status(&self.journal, &mut data["journal"]);
        Answer::done(request_id, metadata, data)
    }

    pub(super) fn results(
        &self,
        request_id: Option<String>,
        metadata: Metadata,
        limit: usize,
    ) -> Answer {
        match self.journal.recent(limit) {
            Ok(entries) => {
                let list: Vec<Value> = entries.iter().map(answer::listing).collect();
                Answer::done(request_id, metadata, json!({"results": list}))
            }
            Err(e) => Answer::refused(
                request_id,
                metadata,
                ErrorKind::DefaultError,
                "journal_unavailable",
                format!("The result journal could not be read: {e}"),
            ),
        }
    }
}
