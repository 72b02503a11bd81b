//! The Paysera sale flow (see `mod.rs` for the why): read the spot, note when the sale began,
//! create the transaction, note its key (evidence), put it at the spot as an order, wait for
//! the customer, confirm, close the spot. Progress stages (for a POS that asked): `qr_shown`
//! once the order is at the spot, `customer_approved` when the customer reserved it in time,
//! `authorising` as the confirm is sent. Each money-moving call (order create, confirm) is sent
//! at most once; the confirm's intent is journaled before it is sent, so no later check sends
//! it again. When an answer is lost the order is *read* to learn what happened, and what cannot
//! be learned within the bound is answered `Unknown` for the reconciler. Every way a sale ends
//! "not charged" goes through `release.rs`, which revokes the transaction first.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::cancel::aborted;
use super::client::{ApiError, Order, Spot};
use super::deadline::{self, NOTE_STARTED};
use super::recover::created;
use super::release::{approved_too_late, expired};
use super::{refused, unknown, unknown_after, Paysera, NOTE_CONFIRM, NOTE_KEY, NOTE_ORDER};
use crate::device::screen::Shown;
use crate::provider::wake::Waiting;
use crate::provider::{Approval, Failure, Operation, Outcome, Stage};

/// The body of `POST /rest/v1/transaction`: one payment, carrying the operation's own backend
/// id as its merchant reference (`parameters.order_id`).
pub(super) fn transaction_body(op: &Operation) -> Value {
    json!({"payments": [{
        "description": format!("Sale {}", op.request_id),
        "price": op.amount.unwrap_or(0),
        "currency": op.currency,
        "parameters": {"order_id": op.backend_id},
    }]})
}

pub(super) fn approved(status: &str, order: &Order, qr: Option<&str>) -> Outcome {
    let mut extra = Map::new();
    if !order.id.is_empty() {
        extra.insert("paysera_order_id".into(), json!(order.id));
    }
    if let Some(qr) = qr {
        extra.insert("qr_payload".into(), json!(qr));
    }
    Outcome::Approved(Approval {
        status: status.into(),
        provider_reference: Some(order.transaction_key.clone()),
        extra,
        ..Default::default()
    })
}

/// An order closed before it was confirmed: the document's "canceled or paid by other means".
/// Given only once its transaction is revoked: nothing was charged through Paysera.
pub(super) fn closed(order: &Order) -> Failure {
    Failure::new(
        "declined",
        format!(
            "Paysera closed order {} before it was paid (the payment was rejected, revoked or \
             cancelled at Paysera, or the spot was closed); its payment is revoked. Nothing was \
             charged through Paysera; ask for another way to pay.",
            order.id
        ),
    )
}

/// The journal could not keep what it must before the next step: nothing was charged.
fn journal_failed(what: &str, e: &str) -> Failure {
    Failure::new(
        "journal_unavailable",
        format!("{what} could not be recorded ({e}); the Paysera payment was revoked. Nothing was charged."),
    )
}

impl Paysera {
    /// The code the customer scans: `spot_code` from the config, else `PAYSERA*` +
    /// `place_info.location_id` + `:` + `identifier`.
    pub(super) fn code_of(&self, spot: &Spot) -> Result<String, Failure> {
        if let Some(code) = &self.spot_code {
            return Ok(code.clone());
        }
        match &spot.location_id {
            Some(location) => Ok(format!("PAYSERA*{location}:{}", spot.identifier)),
            None => Err(Failure::new(
                "provider_error",
                format!(
                    "Paysera's spot {} has no place_info.location_id, so its code is unknown: \
                     set providers.paysera.spot_code to the code on the spot's QR \
                     (PAYSERA*<location>:<identifier>). Nothing was charged.",
                    self.spot_id
                ),
            )),
        }
    }

    pub(super) fn poll_interval(&self) -> Duration {
        self.common
            .schedule
            .first()
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    pub(super) async fn pay(&self, op: &Operation) -> Outcome {
        let deadline = Instant::now() + self.window;
        let started = deadline::started_now();
        let Ok(_one_customer) = self.spot_busy.try_lock() else {
            return Outcome::Failed(Failure::new(
                "spot_busy",
                format!(
                    "Another Paysera sale is waiting for its customer at spot {}; finish it \
                     first. Nothing was charged.",
                    self.spot_id
                ),
            ));
        };
        // Reads and a close of leftovers: when they fail nothing of this sale exists yet.
        let spot = match self.client.spot(&self.spot_id).await {
            Ok(spot) => spot,
            Err(e) => return Outcome::Failed(refused(&e)),
        };
        let qr = match self.code_of(&spot) {
            Ok(code) => code,
            Err(f) => return Outcome::Failed(f),
        };
        if spot.orders.iter().any(|o| o.status == "pending") {
            log::info!(request_id = op.request_id.as_str(), provider = "paysera";
                "spot {} still shows a pending order of an earlier sale: closing it", self.spot_id);
            if let Err(e) = self.client.close_spot(&self.spot_id).await {
                return Outcome::Failed(refused(&e));
            }
        }
        // When the sale began, on the boot clock: after a restart it tells whether the sale's
        // window is certainly still open (`deadline.rs`). Without it, it counts as over.
        if let Some(started) = started {
            if let Err(e) = op.progress.record(NOTE_STARTED, started).await {
                return Outcome::Failed(Failure::new(
                    "journal_unavailable",
                    format!("The sale could not be recorded ({e}). Nothing was charged."),
                ));
            }
        }
        // A transaction that no order carries cannot be paid: its failure is final.
        let key = match self.client.create_transaction(&transaction_body(op)).await {
            Ok(key) => key,
            Err(e) => return Outcome::Failed(refused(&e)),
        };
        // From here an abort can find this sale by its key and wake it.
        let waiting = self.waiting.watch(&key);
        let bare = Order {
            id: String::new(),
            status: String::new(),
            transaction_key: key.clone(),
        };
        if let Err(e) = op.progress.record(NOTE_KEY, json!(key)).await {
            // No order carries it yet; withdrawn before the customer could see it.
            let failure = journal_failed("The Paysera transaction", &e);
            return self.end_unpaid(&bare, failure, None).await;
        }
        // The transaction exists at Paysera: evidence, durable before anything acts on it.
        if let Err(e) = op.progress.witness(&created(&key)).await {
            let failure = journal_failed("The Paysera transaction as evidence", &e);
            return self.end_unpaid(&bare, failure, None).await;
        }
        let order = match self.client.create_order(&self.spot_id, &key).await {
            Ok(order) => order,
            // `invalid_state` here would say the transaction is already on an order: never
            // taken as this sale's answer, but looked up like a lost one.
            Err(e) if e.maybe_acted() || e.is("invalid_state") => {
                match self.find_at_spot(&key, &e, deadline).await {
                    Ok(order) => order,
                    Err(outcome) => return outcome,
                }
            }
            // Refused: no order carries it. Revoked before the refusal is final.
            Err(e) => return self.end_unpaid(&bare, refused(&e), None).await,
        };
        if let Err(e) = op.progress.record(NOTE_ORDER, json!(order.id)).await {
            // Recovery still finds the order in the spot's list by the key.
            log::warn!(request_id = op.request_id.as_str(), provider = "paysera";
                "could not record Paysera order {}: {e}", order.id);
        }
        log::debug!(request_id = op.request_id.as_str(), provider = "paysera";
            "sale {} waits for the customer to scan {qr}", op.request_id);
        self.screen.show(Shown::Qr(qr.clone()));
        op.stages.tell(
            Stage::QrShown,
            "Paysera has the order at the spot: the customer scans the QR code",
        );
        let outcome = self
            .wait_and_confirm(op, order, &qr, deadline, &waiting)
            .await;
        // An abort's mark the sale did not take (it ended in the confirm) goes with it.
        self.take_aborted(&key);
        if !matches!(outcome, Outcome::Unknown(_)) {
            self.close_spot().await;
        }
        outcome
    }

    /// Closes the spot after a finished sale, so the next customer starts on an empty spot.
    /// Best effort: the next sale closes it too when it still shows a pending order.
    pub(super) async fn close_spot(&self) {
        if let Err(e) = self.client.close_spot(&self.spot_id).await {
            log::warn!(provider = "paysera"; "closing spot {}: {e}", self.spot_id);
        }
    }

    /// After an order create whose answer was lost: is the order at the spot? Reads only.
    async fn find_at_spot(
        &self,
        key: &str,
        cause: &ApiError,
        deadline: Instant,
    ) -> Result<Order, Outcome> {
        let mut last = cause.to_string();
        for _ in 0..3 {
            match self.client.spot(&self.spot_id).await {
                Ok(spot) => match spot.order_for(key) {
                    Some(order) => return Ok(order.clone()),
                    None => last = format!("{cause}; the spot shows no order for it yet"),
                },
                Err(e) => last = format!("{cause}; reading the spot: {e}"),
            }
            if Instant::now() + self.poll_interval() >= deadline {
                break;
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
        Err(unknown("The order was sent but its answer was lost", last))
    }

    /// Polls the order until the customer reserves within the window (then confirms), it
    /// closes, or the window ends (then revokes, a reservation seen too late included).
    async fn wait_and_confirm(
        &self,
        op: &Operation,
        mut order: Order,
        qr: &str,
        deadline: Instant,
        waiting: &Waiting<'_>,
    ) -> Outcome {
        loop {
            // Revoked by an abort from the POS: nothing can be charged any more.
            if self.take_aborted(&order.transaction_key) {
                return self.end_unpaid(&order, aborted(), Some(qr)).await;
            }
            match order.status.as_str() {
                "reserved" if Instant::now() < deadline => {
                    op.stages.tell(
                        Stage::CustomerApproved,
                        "the customer approved the payment in Paysera",
                    );
                    return self.confirm(op, &order, Some(qr)).await;
                }
                "reserved" => {
                    let late = approved_too_late(self.window.as_secs());
                    return self.end_unpaid(&order, late, Some(qr)).await;
                }
                "confirmed" => return approved("approved", &order, Some(qr)),
                "closed" => return self.end_unpaid(&order, closed(&order), Some(qr)).await,
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let failure = expired(self.window.as_secs());
                return self.end_unpaid(&order, failure, Some(qr)).await;
            }
            waiting
                .sleep(self.poll_interval().min(deadline - now))
                .await;
            match self.client.order(&order.id).await {
                Ok(o) => order = o,
                // Reads are safe to repeat: try again at the next interval.
                Err(e) => log::debug!(request_id = op.request_id.as_str(), provider = "paysera";
                    "reading order {}: {e}", order.id),
            }
        }
    }

    /// Confirms a reserved order: the commit point. Sent at most once per transaction ever:
    /// its intent is journaled first (`NOTE_CONFIRM`), and a sale whose note is there is never
    /// confirmed again, here or by a status check. If its answer is lost the order is read.
    pub(super) async fn confirm(&self, op: &Operation, order: &Order, qr: Option<&str>) -> Outcome {
        if op.progress.get(NOTE_CONFIRM).is_some() {
            return unknown(
                "A confirm was already sent for this payment",
                format!("order {} is {}", order.id, order.status),
            );
        }
        if let Err(e) = op
            .progress
            .record(NOTE_CONFIRM, json!(order.transaction_key))
            .await
        {
            // Without the note "once ever" cannot be kept: release the reservation instead.
            let failure = journal_failed("The confirm of the Paysera payment", &e);
            return self.end_unpaid(order, failure, qr).await;
        }
        op.stages
            .tell(Stage::Authorising, "confirming the payment with Paysera");
        let err = match self.client.confirm(&order.transaction_key).await {
            Ok(_) => return approved("approved", order, qr),
            Err(e) => e,
        };
        match self.client.order(&order.id).await {
            Ok(o) if o.status == "confirmed" => approved("approved", &o, qr),
            Ok(o) if o.status == "closed" => self.end_unpaid(&o, closed(&o), qr).await,
            Ok(_) | Err(_) => {
                unknown_after("Confirming the reserved payment got no clear answer", &err)
            }
        }
    }
}
