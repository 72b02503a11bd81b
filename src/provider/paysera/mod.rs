//! The Paysera provider: scan-and-pay at a POS spot (providers.md, "Paysera"). It owns the
//! sale flow — create an order at the spot, wait for the customer to reserve, confirm — and
//! the answers to what became of a sale; `client.rs` owns the signed HTTP calls. It must not
//! re-send the money-moving calls (order create, confirm) on its own, touch the journal, or put
//! the MAC key anywhere but into a signature.
//!
//! Flow of a pay (the commit point is the confirm):
//! 1. `GET /rest/v1/spot/{spot_id}` (once, cached): the spot code `PAYSERA*<location_id>:
//!    <identifier>` the customer scans. It goes into the answer as `qr_payload` and the debug log;
//!    showing it on a DQR display is a later issue. A refused read here (wrong key, unknown spot)
//!    fails the sale before anything exists at Paysera.
//! 2. `POST /rest/v1/spot/{spot_id}/order` with
//!    `{"transaction": {"payments": [{"description", "price", "currency", "order_id": KEY}]}}`,
//!    where KEY = `pb-` + the first 32 hex digits of SHA-256(request_id) (35 characters of
//!    `[a-z0-9-]`, whatever the request_id holds). Paysera assigns order ids and transaction keys
//!    itself, so KEY, carried in the payment, is what finds the sale again from the request_id
//!    alone: `GET /rest/v1/orders?spot_id=..&order_id=KEY` (see [`client::Client::find_order`]).
//!    Careful reading: providers.md documents no order search, only spots by status or code. The
//!    payment's `order_id` is the merchant's own field, and the search is the one assumption this
//!    provider makes beyond the document; the replica implements it, and it must be checked
//!    against the real API (or replaced by a spot read that lists its orders) before production.
//! 3. Poll `GET /rest/v1/order/{id}` every `status_poll_ms[0]` until `reserved`, then
//!    `PUT /rest/v1/transaction/{key}/confirm` and answer approved, provider_reference = the
//!    transaction key. No payment within `timeout_ms`: revoke the transaction and delete the
//!    order, so nothing stays open at the spot, and answer `expired` (final: revoked is revoked).
//!
//! Crash safety: [`Provider::status`] looks the order up by KEY. Confirmed: approved. Reserved:
//! it confirms. The customer has paid, the sale was intended, and a confirm cannot charge twice —
//! it is a state change of the one transaction, whose amount was fixed when the order was
//! created; a second confirm is refused with `invalid_state`. Pending past the window: revoke,
//! `expired`. Not found: `not_processed`.
//!
//! Test amounts (replica): `..51` the customer never pays (expired); `..52` the reservation is
//! rejected (declined). Refund: providers.md offers no refund of a confirmed transaction (revoke
//! works only before confirm), so the capability table says no; cancel revokes an unconfirmed
//! sale and answers `already_completed` for a confirmed one.

mod client;
mod flow;

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{Failure, OpKind, Operation, Outcome, Provider};
use crate::config::PayseraConfig;
use client::{ApiError, Client};

/// How long the customer has to pay when `timeout_ms` is not configured.
const DEFAULT_WINDOW_MS: u64 = 120_000;
const DEFAULT_SCHEDULE_MS: &[u64] = &[1_000, 2_000, 5_000, 15_000, 60_000];

pub struct Paysera {
    client: Client,
    spot_id: String,
    currency: String,
    /// How long the customer has to pay, from the start of the sale.
    window: Duration,
    /// The engine's bound on the whole execute: the window, then room to revoke.
    timeout: Duration,
    schedule: Vec<Duration>,
    /// The spot's QR payload, read once.
    spot_code: tokio::sync::Mutex<Option<String>>,
    /// Sales whose status is being checked right now. The reconciler and an on-demand
    /// `get_result` may ask at the same moment; only one of them may act on a reserved order.
    checking: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Where the customer is shown the spot's QR code while a sale waits (a paired DQR display).
    screen: std::sync::Arc<dyn crate::device::screen::Screen>,
}

/// Marks one sale as being checked for as long as it lives.
struct Checking<'a>(&'a Paysera, String);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        let mut set = self.0.checking.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.1);
    }
}

impl Paysera {
    /// `None` when another status check of `key` is running.
    fn begin_check(&self, key: &str) -> Option<Checking<'_>> {
        let mut set = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(key.to_owned())
            .then(|| Checking(self, key.to_owned()))
    }
}

impl Paysera {
    /// Shows the spot's QR code on `screen` while a sale waits for the customer.
    pub fn with_screen(
        mut self,
        screen: std::sync::Arc<dyn crate::device::screen::Screen>,
    ) -> Self {
        self.screen = screen;
        self
    }

    pub fn new(cfg: &PayseraConfig) -> anyhow::Result<Paysera> {
        let mac_key = crate::secret::resolve(
            "providers.paysera",
            "mac_key",
            cfg.mac_key.as_ref(),
            cfg.mac_key_file.as_deref(),
        )?;
        let window = Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_WINDOW_MS));
        // One HTTP call may take a quarter of the window, between 1 and 10 s.
        let request_timeout = (window / 4).clamp(Duration::from_secs(1), Duration::from_secs(10));
        let schedule = cfg
            .status_poll_ms
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEDULE_MS.to_vec())
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        Ok(Paysera {
            client: Client::new(&cfg.base_url, &cfg.client_id, mac_key, request_timeout)?,
            spot_id: cfg.spot_id.clone(),
            currency: cfg.currency.clone(),
            window,
            // Room after the window for a last read, the revoke and the order delete.
            timeout: window + request_timeout * 4,
            schedule,
            spot_code: tokio::sync::Mutex::new(None),
            screen: std::sync::Arc::new(crate::device::screen::NoScreen),
            checking: Default::default(),
        })
    }
}

/// The key that finds a sale again: `pb-` + 32 hex digits of SHA-256(request_id).
pub fn derived_key(request_id: &str) -> String {
    let h = Sha256::digest(request_id.as_bytes());
    format!("pb-{}", hex::encode(&h[..16]))
}

/// A refused call as the cashier's answer (the backend said no; nothing moved).
fn refused(e: &ApiError) -> Failure {
    let reason = match e {
        ApiError::Refused { error, .. } if error == "unauthorized" || error == "forbidden" => {
            return Failure::new(
                "unauthorized",
                format!(
                    "{e}. Paysera did not accept posbridge's credentials: check \
                     providers.paysera client_id and mac_key. Nothing was charged."
                ),
            )
        }
        ApiError::Refused { error, .. } if error.starts_with("invalid_") => "invalid_request",
        ApiError::Refused { error, .. } if error == "not_found" => "invalid_request",
        ApiError::Http(_) => "provider_unavailable",
        _ => "provider_error",
    };
    Failure::new(reason, format!("{e}. Nothing was charged."))
}

/// An answer we cannot finish yet: the reconciler will ask [`Provider::status`].
fn unknown(what: &str, e: impl std::fmt::Display) -> Outcome {
    Outcome::Unknown(Failure::new(
        "timeout",
        format!(
            "{what}: {e}. The outcome is being checked with Paysera; ask again with get_result."
        ),
    ))
}

#[async_trait]
impl Provider for Paysera {
    fn name(&self) -> &'static str {
        "paysera"
    }

    fn default_currency(&self) -> &str {
        &self.currency
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn status_schedule(&self) -> &[Duration] {
        &self.schedule
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.pay(op).await,
            OpKind::Cancel => self.cancel(op, false).await,
            OpKind::Refund | OpKind::CloseShift => not_supported(op.kind),
        }
    }

    async fn status(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.pay_status(op).await,
            OpKind::Cancel => self.cancel(op, true).await,
            OpKind::Refund | OpKind::CloseShift => not_supported(op.kind),
        }
    }
}

fn not_supported(kind: OpKind) -> Outcome {
    Outcome::Failed(Failure::new(
        "not_supported",
        format!("Paysera does not support {}.", kind.as_str()),
    ))
}

#[cfg(test)]
mod tests;
