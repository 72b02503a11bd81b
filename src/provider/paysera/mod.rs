//! The Paysera provider: scan-and-pay at a POS spot, as the Paysera POS document
//! (seeds/000_0c09e6fa46f88a7e.txt) describes it. It owns the sale flow and the answers to what
//! became of a sale; `client.rs` owns the signed HTTP calls. It must not re-send the
//! money-moving calls (order create, confirm: never twice per transaction, across restarts),
//! confirm a reservation after the sale's deadline, answer "not charged" while a transaction
//! could still be paid, touch the journal (it hands the engine progress notes instead), or put
//! the MAC key anywhere but into a signature.
//!
//! Flow of a pay, one at a time per spot (the commit point is the confirm):
//! 1. `GET /rest/v1/spot/{spot_id}`: the spot code the customer scans, `PAYSERA*` +
//!    `place_info.location_id` + `:` + `identifier` (or `spot_code` from the config when the
//!    place info has no location id). A spot still showing a pending order of an earlier sale is
//!    closed first (`PUT /spot/{id}/close`), so this customer never sees it.
//! 2. When the sale began, on the boot clock (`deadline.rs`), is a progress note: after a
//!    restart it tells whether the customer's window is certainly still open.
//! 3. `POST /rest/v1/transaction` with one payment (price, currency, description, and
//!    `parameters.order_id` = the operation's backend_id). A transaction nobody has put at the
//!    spot cannot be paid, so a lost answer here is final: nothing was charged.
//! 4. Its `transaction_key` is a progress note, then witnessed as evidence (the transaction
//!    exists at Paysera), both durable before anything else happens.
//! 5. `POST /rest/v1/spot/{spot_id}/order` with `{"transaction_key": key}`. A lost answer is
//!    found again by reading the spot's orders and matching the key. The order id becomes a
//!    note, so the order can be read by id even after the spot is closed.
//! 6. Poll `GET /rest/v1/order/{id}`. `reserved` within the window: the intent to confirm is
//!    journaled (`paysera_confirm_sent`), then `PUT /rest/v1/transaction/{key}/confirm`, once
//!    ever: approved, provider_reference = the transaction key. Reserved too late, `closed`, or
//!    no payment within `timeout_ms`: the transaction is revoked (`release.rs`), and only when
//!    Paysera has answered the revoke is the sale final not charged (`expired`, `declined`).
//! 7. Every finished sale closes the spot (`PUT /rest/v1/spot/{id}/close`), so the next customer
//!    never sees or pays an earlier order.
//!
//! Recovery ([`Provider::status`]) uses only the journaled notes: no transaction key, nothing can
//! have been charged (absence: [`Outcome::NotFound`], weighed by the engine); a key, the order is
//! read (by its noted id, else found in the spot's orders). Confirmed: approved. Reserved while
//! the sale's window is certainly open and no confirm was ever sent: confirm (once). Reserved
//! with a confirm already sent: unknown while the window lasts, then revoked. Reserved after
//! the deadline, or when the deadline cannot be placed (another boot): revoked, never confirmed
//! late (the POS was told "unknown" and may have taken another tender). Pending past the
//! window, closed, or no order to be found: revoked. A revoke answered OK (or a transaction
//! read `revoked`/`rejected`) is a positive answer: the transaction can never be paid, so "not
//! charged" stands even after evidence; a transaction Paysera does not know is absence
//! (`NotFound`); anything else stays unknown. An operation from before backend ids existed
//! ([`legacy_key`]) cannot be looked up by documented calls: it stays unknown for an operator.
//!
//! Test amounts (replica): `..51` the customer never pays (expired); `..52` the reservation is
//! rejected (the order closes: declined). Refund: the document offers no refund of a confirmed
//! transaction (revoke works only before confirm), so the capability table says no; cancel
//! (`cancel.rs`) revokes the transaction of the primary sale once and answers
//! `already_completed` for a confirmed one; its status check reads the transaction. A cancel
//! naming a sale by request_id (an abort, while it waits for its customer) revokes the
//! transaction key the sale journaled, and the waiting sale, woken, ends `cancelled`.

/// Public for the fuzz targets (fuzz/): [`client::read_reply`] and the answer shapes.
mod cancel;
pub mod client;
mod deadline;
mod flow;
mod recover;
mod release;

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::common::{self, Common};
use super::{Failure, OpKind, Operation, Outcome, Provider};
use crate::config::PayseraConfig;
use client::{ApiError, Client};

/// How long the customer has to pay when `timeout_ms` is not configured.
const DEFAULT_WINDOW_MS: u64 = 120_000;
const DEFAULT_SCHEDULE_MS: &[u64] = &[1_000, 2_000, 5_000, 15_000, 60_000];

/// The name in the API and the config (`[providers.paysera]`).
pub const NAME: &str = "paysera";

pub struct Paysera {
    client: Client,
    spot_id: String,
    /// Its timeout is the engine's bound on the whole execute: the window, then room to
    /// revoke.
    common: Common,
    /// How long the customer has to pay, from the start of the sale.
    window: Duration,
    /// `spot_code` from the config, for a spot whose place info has no location id.
    spot_code: Option<String>,
    /// Held for a whole sale, and by recovery while it closes the spot: one customer at a
    /// time per spot, and a close never hits another sale's order.
    spot_busy: tokio::sync::Mutex<()>,
    /// Sales whose status is being checked right now. The reconciler and an on-demand
    /// `get_result` may ask at the same moment; only one of them may act on a reserved order.
    checking: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Where the customer is shown the spot's QR code while a sale waits (a paired DQR display).
    screen: std::sync::Arc<dyn crate::device::screen::Screen>,
    /// When each open sale began, step-proof: the customer's window is counted on it, never
    /// on `created_at` (src/clock.rs).
    sent: crate::clock::SendTimes,
    /// Sales waiting for their customer, by transaction key: an abort wakes the one it
    /// revoked (`cancel.rs`).
    waiting: crate::provider::wake::Wakers,
    /// Transaction keys an abort revoked while their sale was waiting here: that sale ends
    /// `cancelled` (taken by the sale when it wakes).
    aborted: std::sync::Mutex<std::collections::HashSet<String>>,
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
        Ok(Paysera {
            client: Client::new(&cfg.base_url, &cfg.client_id, mac_key, request_timeout)?,
            spot_id: cfg.spot_id.clone(),
            common: Common::new(
                NAME,
                cfg.currency.clone(),
                // Room after the window for the revoke, a read, a last-moment confirm, its
                // read-back and the spot close.
                window + request_timeout * 6,
                common::schedule(cfg.status_poll_ms.as_ref(), || {
                    common::millis(DEFAULT_SCHEDULE_MS)
                }),
            ),
            window,
            spot_code: cfg.spot_code.clone(),
            spot_busy: tokio::sync::Mutex::new(()),
            screen: std::sync::Arc::new(crate::device::screen::NoScreen),
            checking: Default::default(),
            sent: crate::clock::SendTimes::new(),
            waiting: Default::default(),
            aborted: Default::default(),
        })
    }
}

/// The key older versions put on a sale (`pb-` + 32 hex digits of SHA-256(request_id)), before
/// operations had their own backend id. Only named to an operator now: the order search it
/// relied on is not in Paysera's document.
pub fn legacy_key(request_id: &str) -> String {
    let h = Sha256::digest(request_id.as_bytes());
    format!("pb-{}", hex::encode(&h[..16]))
}

/// The progress notes this provider journals (see [`crate::provider::Progress`]).
const NOTE_KEY: &str = "paysera_transaction_key";
const NOTE_ORDER: &str = "paysera_order_id";
/// Written before the one confirm of a transaction is sent: no confirm is ever sent again.
const NOTE_CONFIRM: &str = "paysera_confirm_sent";

/// A refused call as the cashier's answer (the backend said no; nothing moved).
fn refused(e: &ApiError) -> Failure {
    if let Some(f) = match e {
        ApiError::Http(h) => h.clock_failure(),
        _ => None,
    } {
        return f;
    }
    if let Some(skew) = e.clock_skew() {
        return Failure::new(
            "clock_skew",
            format!("{e}. {}. Nothing was charged.", skew_advice(skew)),
        );
    }
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

/// What a technician reads when Paysera refuses a stale MAC timestamp.
fn skew_advice(skew: i64) -> String {
    format!(
        "Paysera refused the request's time stamp: {}. Set the counter's clock \
         (`timedatectl set-ntp true`; `posbridge doctor` shows the skew)",
        crate::clock::describe_skew(skew, "Paysera's")
    )
}

/// As [`unknown`] for a failed call: a refusal for our clock says so (reason `clock_skew`),
/// still unknown, never final.
fn unknown_after(what: &str, e: &ApiError) -> Outcome {
    match e.clock_skew() {
        Some(skew) => Outcome::Unknown(Failure::new(
            "clock_skew",
            format!(
                "{what}: {e}. {}. The outcome is being checked with Paysera; ask again with \
                 get_result.",
                skew_advice(skew)
            ),
        )),
        None => unknown(what, e),
    }
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
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => {
                self.sent.sending(&op.request_id);
                let outcome = self.pay(op).await;
                self.settled(op, outcome)
            }
            OpKind::Cancel => self.cancel(op).await,
            OpKind::Refund | OpKind::CloseShift => not_supported(op.kind),
        }
    }

    async fn status(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => {
                let outcome = self.pay_status(op).await;
                self.settled(op, outcome)
            }
            OpKind::Cancel => self.cancel_status(op).await,
            OpKind::Refund | OpKind::CloseShift => not_supported(op.kind),
        }
    }
}

impl Paysera {
    /// Stops measuring a sale whose outcome is final.
    fn settled(&self, op: &Operation, outcome: Outcome) -> Outcome {
        if !matches!(outcome, Outcome::Unknown(_)) {
            self.sent.forget(&op.request_id);
        }
        outcome
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
