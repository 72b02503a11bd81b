//! The Paysera cancel: revoke the primary sale's transaction (its `provider_reference`). The
//! revoke is sent once, by `execute`; a status check of a cancel whose answer was lost reads
//! the transaction (`GET /rest/v1/transaction/{key}`) and never revokes again.

use super::client::{ApiError, Order};
use super::flow::approved;
use super::{refused, unknown, unknown_after, Paysera};
use crate::provider::{Failure, Operation, Outcome};

fn invalid(msg: String) -> Failure {
    Failure::new("invalid_request", msg)
}

/// The primary sale's transaction key, or the refusal naming the field.
fn primary_key(op: &Operation) -> Result<(String, String), Failure> {
    let Some(primary) = &op.primary else {
        return Err(invalid("primary_transaction: is required".into()));
    };
    let Some(key) = primary
        .provider_reference
        .as_deref()
        .filter(|k| !k.is_empty())
    else {
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
            Ok(_) => cancelled(&key),
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
