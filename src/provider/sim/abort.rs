//! Aborting a sim pay that waits for its customer (`params.delay_ms`): a cancel that names the
//! pay by request_id only (no `provider_reference`: the POS has no answer for it yet; the
//! engine found its backend id in the journal). The sim backend decides under the same lock
//! the waiting pay completes under, so exactly one of two things is true: the pay was still
//! waiting (its ledger row becomes `aborted`, nothing charged; the cancel is recorded; the
//! waiting pay is woken and answers `cancelled`; the cancel's own row is action `abort`, so a
//! shift counts neither), or it had completed (the cancel is refused
//! `already_completed`, nothing recorded; the pay stays approved). It never reverses a
//! completed pay: that is a cancel with the pay's data, or a refund.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::{backend_key, reference, Sim};
use crate::clock::now_rfc3339;
use crate::provider::wake::Waiting;
use crate::provider::{Approval, Failure, Operation, Outcome};

/// The ledger outcome of a pay aborted while it waited: nothing was charged.
pub(super) const ABORTED: &str = "aborted";

/// The backend's clock, in milliseconds since the epoch (when a waiting pay completes). A
/// waiting pay that ends marks itself completed whatever this says (`wait_for_customer`), so a
/// stepped clock can only keep a status check of a pay cut off mid-wait `in_progress` longer.
pub(super) fn now_ms() -> i64 {
    crate::clock::unix_ms() as i64
}

/// A cancel naming a pay by request_id only, with the backend id the journal gave it.
pub(super) fn is_abort(op: &Operation) -> bool {
    op.is_abort() && op.primary.as_ref().is_some_and(|p| p.backend_id.is_some())
}

/// The answer of a pay aborted while it waited.
pub(super) fn aborted_pay() -> Failure {
    Failure::new(
        "cancelled",
        "The sale was cancelled from the POS before the customer paid: nothing was charged.",
    )
}

/// The pay's ledger row, as an abort reads it.
struct Pay {
    seq: i64,
    amount: i64,
    outcome: String,
    reference: String,
    due_ms: i64,
}

impl Sim {
    /// Waits `delay_ms` for the customer, or until an abort wakes it. True when the pay was
    /// aborted; otherwise it has completed (its row says so from now on).
    pub(super) async fn wait_for_customer(
        &self,
        op: &Operation,
        woken: Waiting<'_>,
        delay_ms: u64,
    ) -> Result<bool, Failure> {
        woken.sleep(Duration::from_millis(delay_ms)).await;
        drop(woken);
        let _deciding = self.reversals.lock().unwrap_or_else(|p| p.into_inner());
        self.ledger(|c| {
            let outcome: String = c.query_row(
                "SELECT outcome FROM calls WHERE backend_id = ?1 AND action = 'pay'
                 ORDER BY seq LIMIT 1",
                params![backend_key(op)],
                |r| r.get(0),
            )?;
            if outcome == ABORTED {
                return Ok(true);
            }
            // Completed now, whatever the wall clock says: no abort can stop it any more.
            c.execute(
                "UPDATE calls SET due_ms = min(coalesce(due_ms, 0), ?2)
                 WHERE backend_id = ?1 AND action = 'pay'",
                params![backend_key(op), now_ms()],
            )?;
            Ok(false)
        })
    }

    /// The cancel `op` of a pay named by request_id: aborted while it waits, else refused.
    pub(super) fn abort(&self, op: &Operation) -> Result<Outcome, Failure> {
        let primary = op.primary.as_ref().expect("is_abort checked it");
        let pay_id = primary.backend_id.clone().unwrap_or_default();
        let _deciding = self.reversals.lock().unwrap_or_else(|p| p.into_inner());
        let pay = self.ledger(|c| {
            c.query_row(
                "SELECT seq, amount, outcome, reference, coalesce(due_ms, 0) FROM calls
                 WHERE backend_id = ?1 AND action = 'pay' ORDER BY seq LIMIT 1",
                params![pay_id],
                |r| {
                    Ok(Pay {
                        seq: r.get(0)?,
                        amount: r.get(1)?,
                        outcome: r.get(2)?,
                        reference: r.get(3)?,
                        due_ms: r.get(4)?,
                    })
                },
            )
            .optional()
        })?;
        let Some(pay) = pay else {
            return Ok(Outcome::Failed(Failure::new(
                "invalid_request",
                format!(
                    "primary_transaction: the sim backend has no pay {pay_id} (yet); nothing \
                     was cancelled"
                ),
            )));
        };
        if op.amount != Some(pay.amount as u64) {
            return Ok(Outcome::Failed(Failure::new(
                "invalid_request",
                format!("amount: a cancel reverses the whole pay ({})", pay.amount),
            )));
        }
        match pay.outcome.as_str() {
            ABORTED => {
                return Ok(Outcome::Failed(Failure::new(
                    "declined",
                    "The pay was already cancelled; nothing was charged.",
                )))
            }
            "declined" => {
                return Ok(Outcome::Failed(Failure::new(
                    "declined",
                    "The pay was declined, so nothing was charged and there is nothing to cancel.",
                )))
            }
            // Completed: its wait is over, or no pay waits for it in this process (posbridge
            // restarted meanwhile: its customer is taken to have paid, as a status check says).
            _ if pay.due_ms <= now_ms() || !self.waiting.is_waiting(&pay_id) => {
                return Ok(Outcome::Failed(Failure::new(
                    "already_completed",
                    "Too late: the customer has already paid this sale, so it cannot be \
                     cancelled; refund it instead.",
                )))
            }
            _ => {}
        }
        let own = reference(op);
        self.ledger(|c| {
            c.execute(
                "UPDATE calls SET outcome = ?2 WHERE seq = ?1",
                params![pay.seq, ABORTED],
            )?;
            c.execute(
                "INSERT INTO calls (request_id, action, amount, currency, outcome, reference,
                                    primary_ref, received_at, backend_id)
                 VALUES (?1, 'abort', ?2, ?3, 'approved', ?4, ?5, ?6, ?7)",
                params![
                    op.request_id,
                    pay.amount,
                    op.currency,
                    own,
                    pay.reference,
                    now_rfc3339(),
                    op.backend_id
                ],
            )
        })?;
        let _ = self.waiting.wake(&pay_id);
        Ok(Outcome::Approved(self.abort_approval(op, own)))
    }

    /// A successful abort's answer (also what a status check of it says): no card was read.
    pub(super) fn abort_approval(&self, op: &Operation, own: String) -> Approval {
        let mut approval = self.approval(op, own);
        approval.card = None;
        approval.rrn = None;
        approval.approval_code = None;
        approval
            .extra
            .insert("pay_status".into(), serde_json::json!(ABORTED));
        approval
    }
}
