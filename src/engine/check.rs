//! One status check of an unknown outcome at a time per request_id, whoever asks (get_result,
//! the reconciler, an operator's decision): a status check may itself commit (Paysera confirms
//! a reserved payment). A check only asks; it never re-sends an operation.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::exchange::Answer;
use crate::journal::{Entry, State};
use crate::provider::{Failure, Operation, Outcome};

impl Engine {
    /// Runs `work` while no other status check (nor an operator's decision) of `id` runs.
    pub(super) async fn one_at_a_time<T>(
        &self,
        id: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let lock = self
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone();
        let out = {
            let _held = lock.lock().await;
            work.await
        };
        let mut checking = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody else is waiting.
        if Arc::strong_count(&lock) == 2 {
            checking.remove(id);
        }
        out
    }

    /// One status check of an unknown outcome. `Some(answer)` once the outcome is final.
    pub async fn reconcile_once(&self, entry: &Entry) -> Option<Answer> {
        let id = entry.request_id.as_str();
        self.one_at_a_time(id, async {
            // Another check may have settled it while this one waited.
            match self.journal.get(id) {
                Ok(Some(Entry {
                    state: State::Final,
                    response,
                    ..
                })) => response,
                Ok(Some(current)) => self.check_status(&current).await,
                Ok(None) | Err(_) => None,
            }
        })
        .await
    }

    async fn check_status(&self, entry: &Entry) -> Option<Answer> {
        let mut op: Operation = serde_json::from_str(&entry.operation).ok()?;
        // What a status answer shows (a pending transaction) is evidence too.
        op.progress.attach(self.note_sink(&op));
        let Some(provider) = self.provider(&op.provider) else {
            log::warn!(request_id = op.request_id.as_str(), provider = op.provider.as_str();
                "cannot reconcile: provider {} is not configured", op.provider);
            return None;
        };
        let outcome = tokio::time::timeout(provider.timeout(), provider.status(&op))
            .await
            .unwrap_or_else(|_| {
                Outcome::Unknown(Failure::new("timeout", "status check timed out"))
            });
        match self.weigh(&op, outcome) {
            Outcome::Unknown(f) => {
                log::debug!(request_id = op.request_id.as_str(), provider = op.provider.as_str();
                    "still unknown: {}", f.message);
                self.still_unknown(entry, &op, f).await;
                None
            }
            final_outcome => Some(self.settle(&op, final_outcome).await),
        }
    }

    /// Intervals between status checks for this entry's provider (see also
    /// [`Engine::wait_before`]).
    pub fn schedule(&self, entry: &Entry) -> Vec<Duration> {
        self.provider(&entry.provider)
            .map(|p| p.status_schedule().to_vec())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec![Duration::from_secs(30)])
    }
}
