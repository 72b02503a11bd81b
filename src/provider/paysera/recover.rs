//! What became of a Paysera sale, from the journaled progress notes only (see `mod.rs`), and
//! the cancel. Status checks read; the only calls they make besides reads finish what the
//! sale itself would have finished: confirm a reserved order, revoke an unpaid one, close the
//! spot when no sale is running there.

use serde_json::Value;

use super::client::{text, ApiError, Order};
use super::flow::{approved, closed};
use super::{legacy_key, refused, unknown, unknown_after, Paysera, NOTE_KEY, NOTE_ORDER};
use crate::provider::{Failure, Operation, Outcome};

fn not_processed(detail: &str) -> Outcome {
    Outcome::Failed(Failure::new(
        "not_processed",
        format!("{detail}: nothing was charged. Start a new sale with a new request_id."),
    ))
}

impl Paysera {
    /// Whether the customer's window for `op` has passed, on the monotonic clock: since the
    /// sale began in this process, or after a restart since this process started (later).
    /// Never from `created_at`: a wall clock stepped forward would revoke a sale the customer
    /// is still paying.
    fn window_over(&self, op: &Operation) -> bool {
        self.sent.at_least(&op.request_id) >= self.window
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
            return not_processed("No Paysera transaction was recorded for this sale");
        };
        let Some(_checking) = self.begin_check(key) else {
            return unknown("Another check of this sale is running", "try again shortly");
        };
        let order = match op.progress.get(NOTE_ORDER).and_then(text) {
            Some(id) => match self.client.order(&id).await {
                Ok(order) => order,
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
        match order.status.as_str() {
            "confirmed" => approved("approved", order, None),
            // The customer paid and the sale was meant: finish it (see mod.rs).
            "reserved" => self.confirm(order, None).await,
            "closed" => Outcome::Failed(closed(order)),
            _ if self.window_over(op) => self.expire(order, None).await,
            _ => unknown(
                "The customer has not paid yet",
                format!("order {} is {}", order.id, order.status),
            ),
        }
    }

    /// The transaction is noted but the spot shows no order for it: the order was never
    /// created, or the spot was closed since (which closes pending orders). Revoking makes
    /// sure it can never be paid; only then is the sale final.
    async fn withdraw(&self, key: &str) -> Outcome {
        match self.client.revoke(key).await {
            Ok(_) => not_processed(
                "The sale never reached the customer at the Paysera spot; its transaction is revoked",
            ),
            Err(e) => unknown_after(
                "The spot shows no order for this sale and its transaction could not be revoked",
                &e,
            ),
        }
    }

    /// Cancel = revoke the primary sale's transaction (its provider_reference). The same call
    /// answers a status check: revoking twice has the effect of once, and can never charge.
    pub(super) async fn cancel(&self, op: &Operation) -> Outcome {
        let invalid = |msg: String| Outcome::Failed(Failure::new("invalid_request", msg));
        let Some(primary) = &op.primary else {
            return invalid("primary_transaction: is required".into());
        };
        let Some(key) = primary
            .provider_reference
            .as_deref()
            .filter(|k| !k.is_empty())
        else {
            return invalid(
                "primary_transaction: needs provider_reference (the Paysera transaction key)"
                    .into(),
            );
        };
        if op.amount != Some(primary.amount) {
            return invalid(format!(
                "amount: a Paysera cancel reverses the whole sale ({})",
                primary.amount
            ));
        }
        let sale = primary.request_id.as_deref().unwrap_or(key);
        match self.client.revoke(key).await {
            Ok(_) => approved(
                "cancelled",
                &Order {
                    id: String::new(),
                    status: "closed".into(),
                    transaction_key: key.to_owned(),
                },
                None,
            ),
            Err(ApiError::Refused { error, .. }) if error == "invalid_state" => {
                Outcome::Failed(already_completed(sale))
            }
            Err(ApiError::Refused { error, .. }) if error == "not_found" => invalid(format!(
                "primary_transaction: Paysera has no transaction {key}"
            )),
            Err(e) if e.maybe_acted() => unknown("The cancel got no clear answer", e),
            Err(e) => Outcome::Failed(refused(&e)),
        }
    }
}

fn already_completed(sale: &str) -> Failure {
    Failure::new(
        "already_completed",
        format!(
            "Sale {sale} is already paid (confirmed at Paysera) and can no longer be \
             cancelled. Paysera offers no refund through posbridge: return the money from the \
             Paysera merchant account."
        ),
    )
}
