//! The Paysera cancel: revoke the primary sale's transaction (its `provider_reference`; for an
//! abort, a sale named by request_id while it may still wait for its customer, the
//! transaction key the sale journaled, which the engine hands over in `pay_notes`). The
//! revoke is sent once, by `execute`; a status check of a cancel whose answer was lost reads
//! the transaction (`GET /rest/v1/transaction/{key}`) and never revokes again. An abort whose
//! revoke Paysera accepted marks the key and wakes the sale if it waits in this process: the
//! sale ends `cancelled` at once (its transaction can never be paid). A confirmed transaction
//! is `already_completed`, and its sale answers approved: the confirm is the commit point
//! and Paysera orders the two calls.

use super::client::{ApiError, Order};
use super::flow::approved;
use super::{refused, unknown, unknown_after, Paysera, NOTE_KEY};
use crate::provider::{Failure, Operation, Outcome};

fn invalid(msg: String) -> Failure {
    Failure::new("invalid_request", msg)
}

/// The primary sale's transaction key, or the refusal naming the field.
fn primary_key(op: &Operation) -> Result<(String, String), Failure> {
    let Some(primary) = &op.primary else {
        return Err(invalid("primary_transaction: is required".into()));
    };
    let journaled = primary.pay_notes.get(NOTE_KEY).and_then(|k| k.as_str());
    let Some(key) = primary
        .provider_reference
        .as_deref()
        .or(journaled.filter(|_| primary.is_abort()))
        .filter(|k| !k.is_empty())
    else {
        if primary.is_abort() {
            return Err(invalid(format!(
                "primary_transaction: sale {} has no Paysera payment yet (none journaled), so \
                 there is nothing to revoke; nothing was cancelled. Press cancel again in a \
                 moment.",
                primary.request_id.as_deref().unwrap_or_default()
            )));
        }
        return Err(invalid(
            "primary_transaction: needs provider_reference (the Paysera transaction key)".into(),
        ));
    };
    if op.amount != Some(primary.amount) {
        return Err(invalid(format!(
            "amount: a Paysera cancel reverses the whole sale ({})",
            primary.amount
        )));
    }
    let sale = primary.request_id.as_deref().unwrap_or(key).to_owned();
    Ok((key.to_owned(), sale))
}

fn cancelled(key: &str) -> Outcome {
    approved(
        "cancelled",
        &Order {
            id: String::new(),
            status: "closed".into(),
            transaction_key: key.to_owned(),
        },
        None,
    )
}

/// Paysera has no transaction `key`: absence, weighed by the engine.
fn no_such(key: &str) -> Outcome {
    Outcome::NotFound(Failure::new(
        "invalid_request",
        format!("primary_transaction: Paysera has no transaction {key}"),
    ))
}

impl Paysera {
    /// Cancel = revoke the primary sale's transaction, sent once.
    pub(super) async fn cancel(&self, op: &Operation) -> Outcome {
        let (key, sale) = match primary_key(op) {
            Ok(k) => k,
            Err(refusal) => return Outcome::Failed(refusal),
        };
        match self.client.revoke(&key).await {
            Ok(_) => {
                // A sale still waiting here for this transaction ends cancelled, at once.
                self.aborted_lock().insert(key.clone());
                if !self.waiting.wake(&key) {
                    self.aborted_lock().remove(&key);
                }
                cancelled(&key)
            }
            Err(ApiError::Refused { error, .. }) if error == "invalid_state" => {
                Outcome::Failed(already_completed(&sale))
            }
            Err(ApiError::Refused { error, .. }) if error == "not_found" => no_such(&key),
            Err(e) if e.maybe_acted() => unknown("The cancel got no clear answer", e),
            Err(e) => Outcome::Failed(refused(&e)),
        }
    }

    /// What became of a cancel whose answer was lost: read the transaction. Revoked (or
    /// rejected): cancelled; confirmed: already completed; still new or reserved: the revoke
    /// has not taken effect (it may still be on its way), unknown.
    pub(super) async fn cancel_status(&self, op: &Operation) -> Outcome {
        let (key, sale) = match primary_key(op) {
            Ok(k) => k,
            Err(refusal) => return Outcome::Failed(refusal),
        };
        match self.client.transaction(&key).await {
            Ok(s) if s == "revoked" || s == "rejected" => cancelled(&key),
            Ok(s) if s == "confirmed" => Outcome::Failed(already_completed(&sale)),
            Ok(s) => unknown(
                "The cancel has not taken effect at Paysera yet",
                format!("the payment is still {s}"),
            ),
            Err(e) if e.is("not_found") => no_such(&key),
            Err(e) => unknown_after("Reading the Paysera payment failed", &e),
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

/// A sale whose transaction an abort from the POS revoked.
pub(super) fn aborted() -> Failure {
    Failure::new(
        "cancelled",
        "The sale was cancelled from the POS before the customer paid; its Paysera payment is \
         revoked. Nothing was charged.",
    )
}

impl Paysera {
    fn aborted_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.aborted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an abort revoked `key` (forgotten once asked: the sale ends now).
    pub(super) fn take_aborted(&self, key: &str) -> bool {
        self.aborted_lock().remove(key)
    }
}
