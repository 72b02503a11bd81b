//! Abort from the POS on the card reader: a cancel naming a sale by request_id (the engine
//! gave it the sale's reader id from the journal) while the sale may still wait for the card.
//! A version 4 reader gets ABORT with the sale's id; it ends the sale with its SALE_RESULT
//! (declined: stopped, nothing charged; approved: too late). The cancel then asks GET_RESULT
//! for the sale, which the reader answers only once the sale has ended (it waits its turn
//! behind the running sale), so the cancel's answer and the sale's come from the same stored
//! result: cancelled with the sale not charged, or `already_completed` with the sale approved.
//! A reader below version 4 has no ABORT: the cancel is refused and tells the cashier to press
//! cancel on the reader; nothing is sent. A lost link leaves the cancel unknown; its status
//! check asks GET_RESULT for the sale again. It never starts anything and never guesses.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::json;

use super::{Lifepay, STATUS_WAIT, WINDOW_WAIT};
use crate::device::link;
use crate::device::reader::{Answer, CardReader, ReaderError};
use crate::provider::{Approval, Failure, Operation, Outcome};

/// Sales this process sent ABORT for, by reader id, until their own answer comes: a sale
/// that then ends unpaid answers `cancelled`. A hint about words only (the reader's result
/// decides what was charged); bounded, as an abort of a sale not running here leaves its id.
#[derive(Default)]
pub(super) struct Aborting(Mutex<HashSet<String>>);

const MAX_ABORTING: usize = 64;

impl Aborting {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, id: &str) {
        let mut set = self.set();
        if set.len() >= MAX_ABORTING {
            set.clear();
        }
        set.insert(id.to_owned());
    }

    /// The sale `id` has its answer: whether an ABORT was sent for it; a failure it ended
    /// with is then the cashier's cancel.
    pub(super) fn ended(&self, id: &str, outcome: Outcome) -> Outcome {
        match (self.set().remove(id), outcome) {
            (true, Outcome::Failed(f)) => Outcome::Failed(Failure::new(
                "cancelled",
                format!(
                    "The sale was cancelled from the POS before the card was charged; nothing \
                     was charged (the card reader: {}).",
                    f.message
                ),
            )),
            (_, outcome) => outcome,
        }
    }
}

/// The sale's reader id, from the journal (`Primary::backend_id`).
fn sale_id(op: &Operation) -> Result<String, Failure> {
    op.primary
        .as_ref()
        .and_then(|p| p.backend_id.clone())
        .ok_or_else(|| {
            Failure::new(
                "invalid_request",
                "primary_transaction: posbridge has no card reader sale by that request_id in \
                 its journal; press cancel on the card reader. Nothing was cancelled.",
            )
        })
}

impl Lifepay {
    /// The abort `op` on `reader`.
    pub(super) async fn abort(&self, reader: &CardReader, op: &Operation) -> Outcome {
        let sale = match sale_id(op) {
            Ok(id) => id,
            Err(f) => return Outcome::Failed(f),
        };
        let version = reader.session().version();
        if version < 4 {
            return Outcome::Failed(Failure::new(
                "not_supported",
                format!(
                    "The card reader speaks link protocol version {version}, which has no \
                     ABORT: press cancel on the card reader. Nothing was cancelled from here; \
                     the sale's own answer (get_result) says how it ended."
                ),
            ));
        }
        self.aborting.add(&sale);
        log::info!(request_id = op.request_id.as_str(), provider = "lifepay",
            device = reader.id(); "ABORT of sale {sale} sent to the card reader {}", reader.id());
        if let Err(e) = reader.abort(&sale, WINDOW_WAIT).await {
            return Outcome::Unknown(Failure::new(
                "link_lost",
                format!(
                    "The ABORT may not have reached the card reader ({e}); what became of the \
                     sale is being checked. Ask again with get_result."
                ),
            ));
        }
        // Answered once the sale has ended: it holds the reader until then.
        let answer = reader.get_result(&sale, self.reader_wait()).await;
        what_the_sale_became(&sale, answer)
    }
}

/// A status check of the abort `op` on `reader`: what its stored result of the sale says.
pub(super) async fn status(reader: &CardReader, op: &Operation) -> Outcome {
    match sale_id(op) {
        Ok(sale) => what_the_sale_became(&sale, reader.get_result(&sale, STATUS_WAIT).await),
        Err(f) => Outcome::Failed(f),
    }
}

/// The abort's outcome from the reader's answer about the sale.
fn what_the_sale_became(sale: &str, answer: Result<Answer, ReaderError>) -> Outcome {
    match answer {
        Ok(Answer::Done(r)) if r.outcome == link::Outcome::Approved => {
            Outcome::Failed(Failure::new(
                "already_completed",
                format!(
                    "Too late: the card reader had already approved the sale (RRN {}), so it \
                     cannot be cancelled; refund it instead.",
                    r.rrn.as_deref().unwrap_or("not given")
                ),
            ))
        }
        Ok(Answer::Done(r)) => {
            let mut extra = serde_json::Map::new();
            extra.insert("pay_status".into(), json!("declined"));
            extra.insert("reader_message".into(), json!(r.message));
            Outcome::Approved(Approval {
                status: "cancelled".into(),
                provider_reference: Some(sale.to_owned()),
                extra,
                ..Approval::default()
            })
        }
        Ok(Answer::NotFound) => Outcome::Failed(Failure::new(
            "invalid_request",
            format!(
                "primary_transaction: the card reader has no sale {sale} (not started there \
                 yet, or never received), so nothing was cancelled. If the sale is still \
                 running, press cancel again, or on the card reader."
            ),
        )),
        Ok(_) => Outcome::Unknown(Failure::new(
            "in_progress",
            "The card reader has not finished the sale yet; ask again with get_result.",
        )),
        Err(e) => Outcome::Unknown(Failure::new("link_lost", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::session::LinkError;

    fn result(outcome: link::Outcome) -> Answer {
        Answer::Done(link::SaleResult {
            request_id: "P1".into(),
            outcome,
            rrn: Some("123456789012".into()),
            approval_code: None,
            masked_pan: None,
            scheme: None,
            message: "words".into(),
        })
    }

    fn reason(o: &Outcome) -> (&'static str, &str) {
        match o {
            Outcome::Approved(a) => ("approved", a.status.as_str()),
            Outcome::Failed(f) => ("failed", f.reason.as_str()),
            Outcome::Unknown(f) => ("unknown", f.reason.as_str()),
            _ => ("other", ""),
        }
    }

    /// Only the reader's stored result of the sale settles the abort; anything else leaves it
    /// unknown (never "cancelled" on a guess).
    #[test]
    fn the_abort_says_what_the_sales_stored_result_says_and_nothing_else() {
        let cases = [
            (
                Ok(result(link::Outcome::Approved)),
                ("failed", "already_completed"),
            ),
            (
                Ok(result(link::Outcome::Declined)),
                ("approved", "cancelled"),
            ),
            (Ok(result(link::Outcome::Error)), ("approved", "cancelled")),
            (Ok(Answer::NotFound), ("failed", "invalid_request")),
            (Ok(Answer::InProgress), ("unknown", "in_progress")),
            (Ok(Answer::Duplicate), ("unknown", "in_progress")),
            (
                Err(ReaderError::Link(LinkError::Closed)),
                ("unknown", "link_lost"),
            ),
        ];
        for (answer, want) in cases {
            let got = what_the_sale_became("P1", answer.clone());
            assert_eq!(reason(&got), want, "{answer:?}");
        }
    }

    #[test]
    fn a_sale_an_abort_was_sent_for_ends_cancelled_only_when_it_failed() {
        let aborting = Aborting::default();
        aborting.add("P1");
        let declined = Outcome::Failed(Failure::new("declined", "no"));
        assert_eq!(
            reason(&aborting.ended("P1", declined.clone())),
            ("failed", "cancelled")
        );
        // Once: the mark is gone.
        assert_eq!(
            reason(&aborting.ended("P1", declined)),
            ("failed", "declined")
        );
        aborting.add("P2");
        let charged = Outcome::Approved(Approval {
            status: "approved".into(),
            ..Approval::default()
        });
        assert_eq!(
            reason(&aborting.ended("P2", charged)),
            ("approved", "approved")
        );
    }
}
