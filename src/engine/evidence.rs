//! What the engine makes of a "not found", and of an outcome that stays unknown for too long.
//!
//! A backend's answer that showed the transaction exists is journaled as evidence before the
//! provider acts on it ([`crate::provider::Progress::witness`]). A later "not found"
//! ([`Outcome::NotFound`]) is then a contradiction: never "nothing was charged", only unknown,
//! and the reconciler goes on asking, with backoff. "Not found" ends an operation as not
//! charged only when no evidence exists at all. An operation still unknown
//! `daemon.manual_check_after_ms` (default 24 h) after it began is marked `manual_check` (the
//! stored answer's reason), named in `status`, `results`, the metrics and `doctor`, for
//! `posbridge resolve`; the checks go on, and a later positive answer still settles it. This
//! module decides only between unknown and not-charged; it never contacts anything.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::Engine;
use crate::journal::{Entry, State};
use crate::provider::{Failure, Operation, Outcome};

/// The reason of an unknown outcome whose backend contradicted its own evidence.
pub const CONTRADICTION: &str = "contradiction";
/// The reason of an unknown outcome that a person must settle (`posbridge resolve`).
pub const MANUAL_CHECK: &str = "manual_check";
/// The default of `daemon.manual_check_after_ms`.
pub const MANUAL_CHECK_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two checks of a contradicted or manual-check outcome.
const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// Request ids whose evidence was witnessed in this process, even when the journal could not
/// keep the note: a "not found" for them is never believed while the daemon runs.
#[derive(Default)]
pub(super) struct Witnessed(Mutex<HashSet<String>>);

impl Witnessed {
    /// Whether `id` is new here.
    pub(super) fn add(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned())
    }

    fn has(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    pub(super) fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

impl Engine {
    /// Drops what this process remembers of `id`'s evidence and contradiction, once its answer
    /// is final (by the provider or by an operator): nothing per request outlives it.
    pub(super) fn forget_evidence(&self, id: &str) {
        self.witnessed.forget(id);
        self.contradicted.forget(id);
    }

    /// The evidence that `op`'s transaction exists, as journaled; `Some(Null)` when it was seen
    /// in this process but is not (or cannot be read) in the journal: then it counts too.
    fn evidence_of(&self, op: &Operation) -> Option<Value> {
        let journaled = match self.journal.get(&op.request_id) {
            Ok(Some(entry)) => serde_json::from_str::<Operation>(&entry.operation)
                .ok()
                .and_then(|o| o.progress.evidence().cloned()),
            Ok(None) => None,
            // Cannot tell: a "not found" is not believed.
            Err(_) => Some(Value::Null),
        };
        journaled
            .or_else(|| op.progress.evidence().cloned())
            .or_else(|| self.witnessed.has(&op.request_id).then_some(Value::Null))
    }

    /// Turns a "not found" into its verdict: not charged when nothing ever showed the
    /// transaction exists, else a contradiction (unknown). Other outcomes pass unchanged.
    pub(super) fn weigh(&self, op: &Operation, outcome: Outcome) -> Outcome {
        let Outcome::NotFound(f) = outcome else {
            return outcome;
        };
        match self.evidence_of(op) {
            None => Outcome::Failed(f),
            Some(evidence) => {
                // A warning once a process, when the contradiction is found; each later check
                // that finds it again (a POS polling get_result, the reconciler) at debug, so
                // the log stays within journald's rate limit however often it is asked.
                let level = if self.contradicted.add(&op.request_id) {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                };
                log::log!(level, request_id = op.request_id.as_str(),
                    provider = op.provider.as_str(), action = op.kind.as_str();
                    "{} {}: {} now has no record of it ({}), after {}; the outcome stays unknown",
                    op.kind.as_str(), op.request_id, op.provider, f.reason, shown(&evidence));
                Outcome::Unknown(contradiction(op, &evidence))
            }
        }
    }

    /// An outcome still unknown after a status check: stored as `contradiction` or, once the
    /// operation is older than the manual-check bound, `manual_check`, when that changes the
    /// stored reason (one write per change, not per check). Other unknown reasons are left as
    /// they were stored.
    pub(super) async fn still_unknown(&self, entry: &Entry, op: &Operation, f: Failure) {
        let age = crate::clock::age_of(&op.created_at).unwrap_or_default();
        let f = if age >= self.manual_check_after() {
            manual_check(op, &f)
        } else {
            f
        };
        if f.reason != CONTRADICTION && f.reason != MANUAL_CHECK {
            return;
        }
        if stored_reason(entry).as_deref() == Some(f.reason.as_str()) {
            return;
        }
        if f.reason == MANUAL_CHECK {
            log::warn!(request_id = op.request_id.as_str(), provider = op.provider.as_str(),
                action = op.kind.as_str();
                "{} {} needs a manual check: {}", op.kind.as_str(), op.request_id, f.message);
        }
        let answer = super::error(
            &op.request_id,
            &op.metadata,
            super::answer::unknown_type(self.askable(op)),
            &f.reason,
            f.message,
        );
        if let Err(e) = self
            .journal
            .settle(&op.request_id, State::Unknown, &answer)
            .await
        {
            log::warn!(request_id = op.request_id.as_str();
                "could not record that the outcome is still unknown ({}): {e}", f.reason);
        }
    }

    /// The wait before check `attempt` of `entry`: its provider's schedule, and, once the
    /// outcome was contradicted or needs a manual check, doubling from the schedule's last
    /// interval up to 64 times it (at most an hour).
    pub(super) fn wait_before(&self, entry: &Entry, attempt: usize) -> Duration {
        let schedule = self.schedule(entry);
        let base = schedule[attempt.min(schedule.len() - 1)];
        match stored_reason(entry).as_deref() {
            Some(CONTRADICTION | MANUAL_CHECK) => {
                let last = schedule[schedule.len() - 1];
                let doubled = last.saturating_mul(1 << attempt.min(6));
                doubled.min(BACKOFF_CAP.max(last)).max(base)
            }
            _ => base,
        }
    }

    /// Unknown outcomes that a person must settle: their request ids, oldest first.
    pub fn manual_checks(&self) -> Vec<String> {
        self.journal
            .in_state(State::Unknown)
            .unwrap_or_default()
            .iter()
            .filter(|e| stored_reason(e).as_deref() == Some(MANUAL_CHECK))
            .map(|e| e.request_id.clone())
            .collect()
    }
}

/// The `reason` of the answer stored for `entry`.
pub(super) fn stored_reason(entry: &Entry) -> Option<String> {
    entry.response.as_ref()?.reason().map(str::to_owned)
}

fn shown(evidence: &Value) -> String {
    match (evidence["what"].as_str(), evidence["at"].as_str()) {
        (Some(what), Some(at)) => format!("{what} at {at}"),
        (Some(what), None) => what.to_owned(),
        _ => "an answer that showed the transaction exists".to_owned(),
    }
}

fn contradiction(op: &Operation, evidence: &Value) -> Failure {
    Failure::new(
        CONTRADICTION,
        format!(
            "{} showed that this {} exists ({}), but now answers that it has no record of it. \
             It may have been charged: the outcome is unknown and is being checked. Do not \
             take another payment for it yet; ask again with get_result.",
            op.provider,
            op.kind.as_str(),
            shown(evidence)
        ),
    )
}

fn manual_check(op: &Operation, last: &Failure) -> Failure {
    let last = if last.reason == MANUAL_CHECK {
        // A provider's own manual_check: its message already says what to look up.
        return last.clone();
    } else {
        last.message.as_str()
    };
    Failure::new(
        MANUAL_CHECK,
        format!(
            "The outcome of this {} has been unknown since {} and needs a person: check it \
             with {} (backend id {}), then settle it with `posbridge resolve {} --charged` or \
             `--not-charged`. Last seen: {last}",
            op.kind.as_str(),
            op.created_at,
            op.provider,
            if op.backend_id.is_empty() {
                "not recorded"
            } else {
                op.backend_id.as_str()
            },
            op.request_id,
        ),
    )
}
