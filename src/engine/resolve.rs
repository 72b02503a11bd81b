//! An operator settles what no machine can: `posbridge resolve ID --charged|--not-charged`.
//!
//! Some outcomes cannot be found out automatically (a backend that forgot the transaction, an
//! IOT Pay refund, a reader that was replaced). An admin then decides, with a note, and the
//! decision becomes the operation's final answer: stored in the journal with who decided and
//! when, answered by get_result from then on. Only an unknown outcome can be settled this way:
//! a running operation might still finish, and a final one already has its answer. This never
//! contacts a provider.

use serde_json::{json, Value};

use super::{answer, error, Engine};
use crate::clock::now_rfc3339;
use crate::exchange::{Answer, ErrorKind, Metadata};
use crate::journal::State;
use crate::provider::{Approval, Failure, OpKind, Operation, Outcome};

/// Longest operator note kept.
pub const MAX_NOTE: usize = 500;

/// What the operator found out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The money moved (the customer paid; the refund or cancel went through).
    Charged,
    /// Nothing moved.
    NotCharged,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Charged => "charged",
            Decision::NotCharged => "not_charged",
        }
    }
}

/// Who settled it, when, and why: kept with the answer.
fn resolution(decision: Decision, by: &str, note: &str) -> Value {
    json!({"decision": decision.as_str(), "by": by, "at": now_rfc3339(), "note": note})
}

/// The outcome the operator's decision stands for.
fn outcome(op: &Operation, decision: Decision, record: Value) -> Outcome {
    match (decision, op.kind) {
        (Decision::Charged, OpKind::CloseShift) => Outcome::ShiftClosed(json!({
            "operation": "close_shift",
            "provider": op.provider,
            "status": "closed",
            "resolution": record,
        })),
        // The id it was sent under goes with the answer: a refund or cancel of a pay settled
        // this way names it (`primary_transaction.backend_id`); none is ever derived.
        (Decision::Charged, kind) => Outcome::Approved(Approval {
            status: match kind {
                OpKind::Refund => "refunded",
                OpKind::Cancel => "cancelled",
                _ => "approved",
            }
            .into(),
            backend_id: (!op.backend_id.is_empty()).then(|| op.backend_id.clone()),
            extra: [("resolution".to_owned(), record)].into_iter().collect(),
            ..Approval::default()
        }),
        (Decision::NotCharged, _) => Outcome::Failed(Failure::new(
            "resolved_not_charged",
            format!(
                "Settled by an operator ({}, {}): nothing was charged. Note: {}",
                record["by"].as_str().unwrap_or("?"),
                record["at"].as_str().unwrap_or("?"),
                record["note"].as_str().unwrap_or("")
            ),
        )),
    }
}

impl Engine {
    /// Settles the unknown outcome of `id` as `decision`, on the word of `by` (the peer's
    /// user), and returns the answer stored for it; or why not.
    pub async fn resolve(
        &self,
        id: &str,
        metadata: &Metadata,
        decision: Decision,
        note: &str,
        by: &str,
    ) -> Answer {
        // Serialised with status checks of the same id: one of them may be settling it now.
        // An operator may paste a card number into the note: it is kept and logged masked.
        let note = crate::provider::mask_card_numbers(note.trim());
        self.one_at_a_time(id, self.decide(id, metadata, decision, &note, by))
            .await
    }

    async fn decide(
        &self,
        id: &str,
        metadata: &Metadata,
        decision: Decision,
        note: &str,
        by: &str,
    ) -> Answer {
        let refuse =
            |reason: &str, msg: String| error(id, metadata, ErrorKind::DefaultError, reason, msg);
        if note.is_empty() || note.chars().count() > MAX_NOTE {
            return refuse(
                "invalid_request",
                format!("note: say why, in 1 to {MAX_NOTE} characters"),
            );
        }
        let entry = match self.entry_or_answer(id, metadata) {
            Ok(entry) => entry,
            Err(answer) => return answer,
        };
        match entry.state {
            State::InFlight => {
                return refuse(
                    "in_progress",
                    format!("{id} is still running; it may yet finish by itself. Wait for it."),
                )
            }
            State::Final => {
                return refuse(
                    "already_final",
                    format!(
                        "{id} already has its final answer; an operator cannot change it. \
                         Ask get_result for it."
                    ),
                )
            }
            State::Unknown => {}
        }
        let Ok(op) = serde_json::from_str::<Operation>(&entry.operation) else {
            return refuse(
                "journal_unavailable",
                format!("The journal's record of {id} cannot be read."),
            );
        };
        let record = resolution(decision, by, note);
        log::warn!(request_id = id, provider = op.provider.as_str(), action = op.kind.as_str();
            "{id} settled by an operator ({by}) as {}: {note}", decision.as_str());
        let outcome = outcome(&op, decision, record);
        let label = super::stats::label(&outcome);
        let (state, answer) = answer::build(&op, outcome, true);
        debug_assert_eq!(state, State::Final);
        match self.journal.settle(id, state, &answer).await {
            Ok(true) => {
                self.forget_evidence(id);
                self.stats.recorded(&op.provider, op.kind.as_str(), label);
                answer
            }
            Ok(false) => refuse(
                "already_final",
                format!("{id} got its final answer meanwhile; ask get_result for it."),
            ),
            Err(e) => refuse(
                "journal_unavailable",
                format!("The decision was not recorded: {e}. Nothing changed; try again."),
            ),
        }
    }
}
