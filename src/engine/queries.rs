//! The read-only answers: get_result (with an on-demand status check of an unknown outcome),
//! status and results. Nothing here moves money.

use serde_json::{json, Map, Value};

use super::{answer, error, stored_identity, Engine, GET_RESULT_CHECK};
use crate::exchange::{Answer, ErrorKind, JournalStatus, Metadata, ProviderStatus, Status};
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
        let configured = self.providers();
        let mut providers: Vec<ProviderStatus> = configured
            .all()
            .map(|p| {
                let caps = p.capabilities();
                let operations = [
                    OpKind::Pay,
                    OpKind::Refund,
                    OpKind::Cancel,
                    OpKind::CloseShift,
                ]
                .into_iter()
                .filter(|k| caps.supports(*k))
                .map(|k| k.as_str().to_owned())
                .collect();
                ProviderStatus {
                    name: p.name().to_owned(),
                    currency: p.default_currency().to_owned(),
                    operations,
                }
            })
            .collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        let manual_check = self.manual_checks();
        let mut health = Value::Object(Map::new());
        crate::journal::health::add_to_status(&self.journal, &mut health);
        let status = Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            default_provider: configured.default_name().to_owned(),
            providers,
            running: self.running(),
            journal: JournalStatus {
                path: self.journal.path().to_owned(),
                capacity: self.journal.capacity(),
                entries: counts.total,
                in_flight: counts.in_flight,
                unknown: counts.unknown,
                manual_check: manual_check.len(),
                health: match health {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            },
            manual_check,
        };
        Answer::done(request_id, metadata, status)
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
