//! What became of a Paysera sale, from the journaled progress notes only (see `mod.rs`). Status
//! checks read; the only calls they make besides reads finish what the sale itself would have
//! finished, each at most as the sale would: confirm a reserved order while the sale's window
//! is certainly open and no confirm was ever sent for it, revoke (`release.rs`) whatever must
//! end not charged, close the spot when no sale is running there. They never confirm late and
//! never confirm twice.

use serde_json::Value;

use super::client::{text, Order};
use super::deadline::{self, NOTE_STARTED};
use super::flow::{approved, closed};
use super::release::{approved_too_late, confirm_not_taken, expired};
use super::{legacy_key, unknown, unknown_after, Paysera, NOTE_CONFIRM, NOTE_KEY, NOTE_ORDER};
use crate::provider::{Failure, Operation, Outcome};

impl Paysera {
    /// Whether the customer's window for `op` is certainly still open: its start is placed on
    /// the boot clock (`deadline.rs`) less than the window ago, and this process has not been
    /// waiting on it for longer than the window ([`crate::clock::SendTimes`], a lower bound).
    /// A start that cannot be placed counts as past the deadline.
    pub(super) fn window_open(&self, op: &Operation) -> bool {
        let placed = deadline::since(op.progress.get(NOTE_STARTED));
        placed.is_some_and(|ago| ago < self.window)
            && self.sent.at_least(&op.request_id) < self.window
    }

    pub(super) async fn pay_status(&self, op: &Operation) -> Outcome {
        if op.backend_id.is_empty() {
            // Started by a version that found sales by a search Paysera does not document.
            return unknown(
                "This sale was started by an older posbridge and cannot be looked up",
                format!(
                    "find the payment whose order_id is {} in the Paysera merchant account and \
                     settle it by hand",
                    legacy_key(&op.request_id)
                ),
            );
        }
        let Some(key) = op.progress.get(NOTE_KEY).and_then(Value::as_str) else {
            // Absence: no transaction was ever noted, so none can be at the spot.
            return Outcome::NotFound(Failure::new(
                "not_processed",
                "No Paysera transaction was recorded for this sale: nothing was charged. Start \
                 a new sale with a new request_id.",
            ));
        };
        let Some(_checking) = self.begin_check(key) else {
            return unknown("Another check of this sale is running", "try again shortly");
        };
        if op.progress.evidence().is_none() {
            // Journaled by a version that did not witness the key: the key is evidence.
            if let Err(e) = op.progress.witness(&created(key)).await {
                log::warn!(request_id = op.request_id.as_str(), provider = "paysera";
                    "could not record the Paysera transaction as evidence: {e}");
            }
        }
        let order = match op.progress.get(NOTE_ORDER).and_then(text) {
            Some(id) => match self.client.order(&id).await {
                Ok(order) => order,
                // The order is gone: make sure its transaction can never be paid.
                Err(e) if e.is("not_found") => return self.withdraw(key).await,
                Err(e) => return unknown_after("Reading the Paysera order failed", &e),
            },
            None => match self.client.spot(&self.spot_id).await {
                Ok(spot) => match spot.order_for(key) {
                    Some(order) => order.clone(),
                    None => return self.withdraw(key).await,
                },
                Err(e) => return unknown_after("Reading the Paysera spot failed", &e),
            },
        };
        let outcome = self.settle_order(op, &order).await;
        if !matches!(outcome, Outcome::Unknown(_)) {
            if let Ok(_free) = self.spot_busy.try_lock() {
                self.close_spot().await;
            }
        }
        outcome
    }

    async fn settle_order(&self, op: &Operation, order: &Order) -> Outcome {
        let window_s = self.window.as_secs();
        let confirm_sent = op.progress.get(NOTE_CONFIRM).is_some();
        match step(&order.status, confirm_sent, self.window_open(op)) {
            Step::Approve => approved("approved", order, None),
            Step::Confirm => self.confirm(op, order, None).await,
            Step::Wait => unknown(
                if confirm_sent {
                    "The confirm of the reserved payment was sent; Paysera does not show it \
                     confirmed yet"
                } else {
                    "The customer has not paid yet"
                },
                format!("order {} is {}", order.id, order.status),
            ),
            Step::Release(why) => {
                let failure = match why {
                    Why::Closed => closed(order),
                    Why::Expired => expired(window_s),
                    Why::TooLate => approved_too_late(window_s),
                    Why::ConfirmNotTaken => confirm_not_taken(window_s),
                };
                self.end_unpaid(order, failure, None).await
            }
        }
    }

    /// The transaction is noted but no order for it can be read: never created, or the spot
    /// was closed since (which closes pending orders). Revoking makes sure it can never be
    /// paid; only then is the sale final.
    async fn withdraw(&self, key: &str) -> Outcome {
        let order = Order {
            id: String::new(),
            status: String::new(),
            transaction_key: key.to_owned(),
        };
        let failure = Failure::new(
            "not_processed",
            "The sale never reached the customer at the Paysera spot; its transaction is \
             revoked: nothing was charged. Start a new sale with a new request_id.",
        );
        self.end_unpaid(&order, failure, None).await
    }
}

/// What a status check does with the order it read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Step {
    Approve,
    /// Send the one confirm (its intent journaled first).
    Confirm,
    /// Unknown for now: ask again later.
    Wait,
    /// Revoke; not charged, for this reason, once Paysera has answered (`release.rs`).
    Release(Why),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Why {
    Closed,
    Expired,
    TooLate,
    ConfirmNotTaken,
}

/// The rule of a status check, from the order's `status`, whether a confirm was ever sent for
/// it, and whether the sale's window is certainly still open. A reservation is confirmed only
/// within the window and only if no confirm was ever sent; after the window it is revoked.
pub(super) fn step(status: &str, confirm_sent: bool, window_open: bool) -> Step {
    match (status, confirm_sent, window_open) {
        ("confirmed", _, _) => Step::Approve,
        // A confirm was sent once (its answer lost): never again. While the window lasts it
        // may still land; after it, the reservation is revoked (or found confirmed by the
        // revoke's read).
        ("reserved", true, true) => Step::Wait,
        ("reserved", true, false) => Step::Release(Why::ConfirmNotTaken),
        // The customer paid within the sale's window: finish it.
        ("reserved", false, true) => Step::Confirm,
        ("reserved", false, false) => Step::Release(Why::TooLate),
        ("closed", _, _) => Step::Release(Why::Closed),
        (_, _, false) => Step::Release(Why::Expired),
        (_, _, true) => Step::Wait,
    }
}

/// What the evidence note says was seen.
pub(super) fn created(key: &str) -> String {
    format!("Paysera created transaction {key}")
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod rule_tests;
