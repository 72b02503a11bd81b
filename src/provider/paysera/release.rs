//! Making sure a Paysera transaction can never be paid, and what Paysera's answer proves. Every
//! sale that ends "not charged" goes through here (an order closed, the customer too slow or
//! too late, the order never made, a spot closed after a restart), so that no customer's money
//! stays reserved for a sale the cashier was told failed. "Not charged" is answered only once
//! Paysera has said the transaction can never be paid (the revoke answered OK, or it reads
//! `revoked` or `rejected`); a transaction Paysera does not know is absence
//! ([`Outcome::NotFound`], weighed by the engine against the journaled evidence); anything
//! else stays unknown for the reconciler, which comes back here. It never confirms.

use super::client::{ApiError, Order};
use super::flow::approved;
use super::{unknown_after, Paysera};
use crate::provider::{Failure, Outcome};

/// What Paysera said when asked to revoke a transaction.
pub(super) enum Released {
    /// It can never be paid: the revoke answered OK, or the transaction reads revoked or
    /// rejected.
    Gone,
    /// It is confirmed: the customer was charged.
    Confirmed,
    /// Paysera has no such transaction (its answer).
    Missing(String),
    /// No clear answer: the outcome to give meanwhile (unknown).
    Unclear(Box<Outcome>),
}

impl Paysera {
    /// Revokes `key` (`DELETE /rest/v1/transaction/{key}`; revoking twice has the effect of
    /// once and can never charge). A refusal or a lost answer is followed by one read of the
    /// transaction, which says what became of it.
    pub(super) async fn release(&self, key: &str) -> Released {
        let err = match self.client.revoke(key).await {
            Ok(_) => return Released::Gone,
            Err(e) => e,
        };
        if err.is("not_found") {
            return Released::Missing(err.to_string());
        }
        read_after_revoke(&err, self.client.transaction(key).await)
    }

    /// Ends a sale that must end not charged: `failure` once `order`'s transaction can never
    /// be paid; approved if Paysera shows it confirmed after all; else unknown.
    pub(super) async fn end_unpaid(
        &self,
        order: &Order,
        failure: Failure,
        qr: Option<&str>,
    ) -> Outcome {
        let released = self.release(&order.transaction_key).await;
        conclude(released, failure, || approved("approved", order, qr))
    }
}

/// What a revoke's answer makes of a sale that must end not charged: `failure` only when the
/// transaction can never be paid; the charge when it shows confirmed; absence as
/// [`Outcome::NotFound`]; else unknown.
pub(super) fn conclude(
    released: Released,
    failure: Failure,
    charged: impl FnOnce() -> Outcome,
) -> Outcome {
    match released {
        Released::Gone => Outcome::Failed(failure),
        Released::Confirmed => charged(),
        Released::Missing(why) => Outcome::NotFound(Failure::new(
            &failure.reason,
            format!(
                "Paysera has no record of this sale's payment ({why}). Nothing was charged \
                 through Paysera."
            ),
        )),
        Released::Unclear(outcome) => *outcome,
    }
}

/// What a revoke that was refused or went unanswered (`err`, not `not_found`) leaves, from the
/// read of the transaction that follows it.
pub(super) fn read_after_revoke(err: &ApiError, read: Result<String, ApiError>) -> Released {
    let what = "Revoking the Paysera payment got no clear answer";
    match read {
        Ok(s) if s == "revoked" || s == "rejected" => Released::Gone,
        Ok(s) if s == "confirmed" => Released::Confirmed,
        Ok(s) => Released::Unclear(Box::new(unknown_after(
            &format!("{what} (Paysera shows the payment {s})"),
            err,
        ))),
        Err(e) if e.is("not_found") => Released::Missing(e.to_string()),
        Err(_) => Released::Unclear(Box::new(unknown_after(what, err))),
    }
}

/// The customer did not pay within the window; the transaction is revoked.
pub(super) fn expired(window_s: u64) -> Failure {
    Failure::new(
        "expired",
        format!(
            "The customer did not pay within {window_s} s; the Paysera payment was revoked. \
             Nothing was charged."
        ),
    )
}

/// The customer approved after the sale's deadline (the POS may have taken another tender):
/// the reservation is revoked, never confirmed late.
pub(super) fn approved_too_late(window_s: u64) -> Failure {
    Failure::new(
        "expired",
        format!(
            "The customer approved the Paysera payment after the sale's {window_s} s window had \
             ended; the reservation was revoked and the money released to the customer. Nothing \
             was charged."
        ),
    )
}

/// The one confirm of a reserved payment never showed at Paysera within the sale's window (it
/// is never sent again): the reservation is revoked.
pub(super) fn confirm_not_taken(window_s: u64) -> Failure {
    Failure::new(
        "expired",
        format!(
            "posbridge's confirm of the reserved Paysera payment did not take effect within the \
             sale's {window_s} s window and is never sent twice; the reservation was revoked and \
             the money released to the customer. Nothing was charged."
        ),
    )
}
