//! The Paysera sale and cancel flows, and what a found order means (see `mod.rs` for the why).
//! Each money-moving call (order create, confirm) is sent at most once per call of `pay` or
//! `pay_status`; when its answer is lost, the order is *read* to learn what happened, and what
//! cannot be learned within the bound is answered `Unknown` for the reconciler.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::client::{ApiError, Order};
use super::{derived_key, refused, unknown, Paysera};
use crate::device::screen::Shown;
use crate::provider::{Approval, Failure, Operation, Outcome};

/// Text of a JSON string or number (Paysera ids come as either).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The body of the order-creating call: one payment carrying the derived key.
pub(super) fn order_body(op: &Operation, key: &str) -> Value {
    json!({"transaction": {"payments": [{
        "description": format!("Sale {}", op.request_id),
        "price": op.amount.unwrap_or(0),
        "currency": op.currency,
        "order_id": key,
    }]}})
}

fn approved(status: &str, order: &Order, qr: Option<&str>) -> Outcome {
    let mut extra = Map::new();
    extra.insert("paysera_order_id".into(), json!(order.id));
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

/// A closed order that was never confirmed: nothing was charged.
fn closed(order: &Order) -> Failure {
    if order.transaction_status == "rejected" {
        Failure::new(
            "declined",
            "Paysera rejected the customer's payment. Nothing was charged; ask for another way to pay.",
        )
    } else {
        Failure::new(
            "expired",
            "The Paysera payment was revoked before it was confirmed (it expired or was \
             cancelled). Nothing was charged.",
        )
    }
}

impl Paysera {
    /// The spot's QR payload `PAYSERA*<location_id>:<identifier>`, read once.
    async fn spot_code(&self) -> Result<String, ApiError> {
        let mut cached = self.spot_code.lock().await;
        if let Some(code) = cached.as_ref() {
            return Ok(code.clone());
        }
        let spot = self.client.spot(&self.spot_id).await?;
        let (Some(location), Some(identifier)) =
            (text(&spot["location_id"]), text(&spot["identifier"]))
        else {
            return Err(ApiError::Garbled {
                status: 200,
                detail: "the spot has no location_id or identifier".into(),
            });
        };
        let code = format!("PAYSERA*{location}:{identifier}");
        *cached = Some(code.clone());
        Ok(code)
    }

    fn poll_interval(&self) -> Duration {
        self.schedule
            .first()
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    pub(super) async fn pay(&self, op: &Operation) -> Outcome {
        let deadline = Instant::now() + self.window;
        let key = derived_key(&op.request_id);
        // A read: when it fails nothing exists at Paysera yet, so the failure is final.
        let qr = match self.spot_code().await {
            Ok(code) => code,
            Err(e) => return Outcome::Failed(refused(&e)),
        };
        log::debug!(request_id = op.request_id.as_str(), provider = "paysera";
            "sale {} waits for the customer to scan {qr}", op.request_id);
        let body = order_body(op, &key);
        let order = match self.client.create_order(&self.spot_id, &body).await {
            Ok(v) => Order::parse(&v).ok_or(ApiError::Garbled {
                status: 200,
                detail: "an order without id, status or transaction_key".into(),
            }),
            Err(e) => Err(e),
        };
        let order = match order {
            Ok(o) => o,
            Err(e) if e.maybe_acted() => match self.find_after_doubt(&key, &e, deadline).await {
                Ok(o) => o,
                Err(outcome) => return outcome,
            },
            Err(e) => return Outcome::Failed(refused(&e)),
        };
        // The order exists now, so a customer who scans at once finds something to pay.
        self.screen.show(Shown::Qr(qr.clone()));
        self.wait_and_confirm(op, order, &qr, deadline).await
    }

    /// After an order create whose answer was lost: is the order there? Reads only.
    async fn find_after_doubt(
        &self,
        key: &str,
        cause: &ApiError,
        deadline: Instant,
    ) -> Result<Order, Outcome> {
        let mut last = cause.to_string();
        for _ in 0..3 {
            match self.client.find_order(&self.spot_id, key).await {
                Ok(Some(order)) => return Ok(order),
                Ok(None) => last = format!("{cause}; Paysera shows no order for it yet"),
                Err(e) => last = format!("{cause}; looking it up: {e}"),
            }
            if Instant::now() + self.poll_interval() >= deadline {
                break;
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
        Err(unknown("The order was sent but its answer was lost", last))
    }

    /// Polls the order until the customer reserves (then confirms), it closes, or the window
    /// ends (then revokes).
    async fn wait_and_confirm(
        &self,
        op: &Operation,
        mut order: Order,
        qr: &str,
        deadline: Instant,
    ) -> Outcome {
        loop {
            match order.status.as_str() {
                "reserved" => return self.confirm(&order, Some(qr)).await,
                "confirmed" => return approved("approved", &order, Some(qr)),
                "closed" => return Outcome::Failed(closed(&order)),
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return self.expire(&order, Some(qr)).await;
            }
            tokio::time::sleep(self.poll_interval().min(deadline - now)).await;
            match self.client.order(&order.id).await {
                Ok(o) => order = o,
                // Reads are safe to repeat: try again at the next interval.
                Err(e) => log::debug!(request_id = op.request_id.as_str(), provider = "paysera";
                    "reading order {}: {e}", order.id),
            }
        }
    }

    /// Confirms a reserved order: the commit point. Sent once; if its answer is lost the order
    /// is read, never confirmed again here.
    async fn confirm(&self, order: &Order, qr: Option<&str>) -> Outcome {
        let err = match self.client.confirm(&order.transaction_key).await {
            Ok(_) => return approved("approved", order, qr),
            Err(e) => e,
        };
        match self.client.order(&order.id).await {
            Ok(o) if o.status == "confirmed" => approved("approved", &o, qr),
            Ok(o) if o.status == "closed" => Outcome::Failed(closed(&o)),
            Ok(_) | Err(_) => unknown("Confirming the reserved payment got no clear answer", err),
        }
    }

    /// The customer did not pay in time: revoke, so nothing stays open at the spot.
    async fn expire(&self, order: &Order, qr: Option<&str>) -> Outcome {
        match self.client.revoke(&order.transaction_key).await {
            Ok(_) => {
                // Best effort: with the transaction revoked the order can no longer be paid.
                if let Err(e) = self.client.delete_order(&order.id).await {
                    log::warn!(provider = "paysera"; "closing expired order {}: {e}", order.id);
                }
                Outcome::Failed(Failure::new(
                    "expired",
                    format!(
                        "The customer did not pay within {} s; the Paysera payment was revoked. \
                         Nothing was charged.",
                        self.window.as_secs()
                    ),
                ))
            }
            // Refused (the customer reserved at the last moment) or unanswered: read.
            Err(e) => match self.client.order(&order.id).await {
                Ok(o) if o.status == "reserved" => self.confirm(&o, qr).await,
                Ok(o) if o.status == "confirmed" => approved("approved", &o, qr),
                Ok(o) if o.status == "closed" => Outcome::Failed(closed(&o)),
                _ => unknown("Revoking the unpaid payment got no clear answer", e),
            },
        }
    }

    /// Whether the customer's window for `op` has passed (by the daemon's clock).
    fn window_over(&self, op: &Operation) -> bool {
        let Ok(created) = OffsetDateTime::parse(&op.created_at, &Rfc3339) else {
            return true;
        };
        OffsetDateTime::now_utc() >= created + self.window
    }

    pub(super) async fn pay_status(&self, op: &Operation) -> Outcome {
        let key = derived_key(&op.request_id);
        let Some(_checking) = self.begin_check(&key) else {
            return unknown("Another check of this sale is running", "try again shortly");
        };
        let order = match self.client.find_order(&self.spot_id, &key).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Outcome::Failed(Failure::new(
                    "not_processed",
                    "Paysera never received this sale: nothing was charged. Start a new sale \
                     with a new request_id.",
                ))
            }
            // Even a refused read says nothing about the sale: keep asking.
            Err(e) => return unknown("Looking the sale up at Paysera failed", e),
        };
        let qr = self.spot_code().await.ok();
        match order.status.as_str() {
            "confirmed" => approved("approved", &order, qr.as_deref()),
            // The customer paid and the sale was meant: finish it (see mod.rs).
            "reserved" => self.confirm(&order, qr.as_deref()).await,
            "closed" => Outcome::Failed(closed(&order)),
            _ if self.window_over(op) => self.expire(&order, qr.as_deref()).await,
            _ => unknown(
                "The customer has not paid yet",
                format!("order {} is {}", order.id, order.status),
            ),
        }
    }

    /// Cancel = revoke an unconfirmed sale. From `status` it only reads: a cancel that never
    /// reached Paysera is `not_processed`, never sent late.
    pub(super) async fn cancel(&self, op: &Operation, status_only: bool) -> Outcome {
        let invalid = |msg: String| Outcome::Failed(Failure::new("invalid_request", msg));
        let Some(primary) = &op.primary else {
            return invalid("primary_transaction: is required".into());
        };
        let Some(pay_id) = &primary.request_id else {
            return invalid("primary_transaction: needs the request_id of the original pay".into());
        };
        if op.amount != Some(primary.amount) {
            return invalid(format!(
                "amount: a Paysera cancel reverses the whole sale ({})",
                primary.amount
            ));
        }
        let order = match self
            .client
            .find_order(&self.spot_id, &derived_key(pay_id))
            .await
        {
            Ok(Some(o)) => o,
            Ok(None) => {
                return invalid(format!("primary_transaction: Paysera has no sale {pay_id}"))
            }
            Err(e) if status_only => return unknown("Looking the sale up at Paysera failed", e),
            Err(e) => return Outcome::Failed(refused(&e)),
        };
        if primary
            .provider_reference
            .as_ref()
            .is_some_and(|r| *r != order.transaction_key)
        {
            return invalid(format!(
                "primary_transaction: provider_reference is not the transaction of sale {pay_id}"
            ));
        }
        match (order.status.as_str(), order.transaction_status.as_str()) {
            ("confirmed", _) => Outcome::Failed(already_completed(pay_id)),
            ("closed", "revoked") => approved("cancelled", &order, None),
            ("closed", _) => invalid(format!(
                "primary_transaction: sale {pay_id} was never paid (declined); nothing to cancel"
            )),
            _ if status_only => Outcome::Failed(Failure::new(
                "not_processed",
                format!("The cancel did not reach Paysera; sale {pay_id} is still open."),
            )),
            _ => match self.client.revoke(&order.transaction_key).await {
                Ok(_) => {
                    if let Err(e) = self.client.delete_order(&order.id).await {
                        log::warn!(provider = "paysera"; "closing order {}: {e}", order.id);
                    }
                    approved("cancelled", &order, None)
                }
                Err(e) => match self.client.order(&order.id).await {
                    Ok(o) if o.status == "confirmed" => Outcome::Failed(already_completed(pay_id)),
                    Ok(o) if o.status == "closed" && o.transaction_status == "revoked" => {
                        approved("cancelled", &o, None)
                    }
                    _ if e.maybe_acted() => unknown("The cancel got no clear answer", e),
                    _ => Outcome::Failed(refused(&e)),
                },
            },
        }
    }
}

fn already_completed(pay_id: &str) -> Failure {
    Failure::new(
        "already_completed",
        format!(
            "Sale {pay_id} is already paid (confirmed at Paysera) and can no longer be \
             cancelled. Paysera offers no refund through posbridge: return the money from the \
             Paysera merchant account."
        ),
    )
}
