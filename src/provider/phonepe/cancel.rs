//! PhonePe cancel: `PUT /v1/payment/{merchantId}/{merchantTransactionId}/cancel` of a pay the
//! customer has not paid yet, and reading a cancel's outcome from that pay's status. A cancel
//! PhonePe answered (cancelled, or already paid) wakes the pay it named when that pay is being
//! followed in this process: the pay reads its status at once and ends as PhonePe says
//! (cancelled, or approved), instead of at its next scheduled check. It must
//! not touch a paid sale (that needs a refund) and never sends anything but the one cancel.
//! Evidence for the cancel (journaled before it is acted on): the cancel's own acknowledgement
//! (SUCCESS, PAYMENT_ALREADY_COMPLETED) and any status answer that carries the sale. "No such
//! sale" is [`Outcome::NotFound`]: the engine ends it only as "nothing was cancelled" and only
//! without evidence, else it stays unknown; it never claims anything about the sale's charge.

use reqwest::Method;
use serde_json::json;

use super::{answer, wire, Check, PhonePe};
use crate::provider::http::HttpError;
use crate::provider::{Approval, Failure, OpKind, Operation, Outcome};

impl PhonePe {
    pub(super) async fn cancel(&self, op: &Operation) -> Outcome {
        let pay_id = match wire::check_currency(op)
            .and_then(|()| wire::status_id(&self.ids.terminal_id, op))
        {
            Ok(id) => id,
            Err(msg) => return Outcome::Failed(Failure::new("invalid_request", msg)),
        };
        let path = wire::cancel_path(&self.ids.merchant_id, &pay_id);
        let answer = match self.call_path(Method::PUT, &path).await {
            Err(e @ HttpError::NotSent { .. }) => return e.into_outcome(),
            Err(_) => None,
            Ok(reply) => answer::parse_answer(&reply.body),
        };
        match answer.as_ref().map(|a| (a.success, a.code.as_str())) {
            Some((true, "SUCCESS")) => {
                self.witness(op, "cancel answered SUCCESS").await;
                // The running pay, if it is this process's, learns it at once.
                let _ = self.following.wake(&pay_id);
                Outcome::Approved(cancelled(&pay_id, "SUCCESS"))
            }
            Some((_, "PAYMENT_ALREADY_COMPLETED")) => {
                self.witness(op, "cancel answered PAYMENT_ALREADY_COMPLETED")
                    .await;
                let _ = self.following.wake(&pay_id);
                Outcome::Failed(already_completed())
            }
            Some((_, "UNAUTHORIZED")) => Outcome::Failed(Failure::new(
                "unauthorized",
                "PhonePe refused the request signature: check salt_key and salt_index. \
                 The sale was not cancelled.",
            )),
            // Anything else: what the pay's status says is the answer.
            _ => self.cancel_status(op, &pay_id).await,
        }
    }

    /// A cancel's outcome read from the status of the pay it cancels. Never moves money. The
    /// check witnesses, for the cancel, a status answer that carries the sale.
    pub(super) async fn cancel_status(&self, op: &Operation, pay_id: &str) -> Outcome {
        let mut pay = op.clone();
        pay.kind = OpKind::Pay;
        pay.amount = op.primary.as_ref().map(|p| p.amount);
        match self.check(&pay, pay_id).await {
            Check::Final(Outcome::Approved(_)) => Outcome::Failed(already_completed()),
            Check::Final(_) => Outcome::Approved(cancelled(pay_id, "FAILED")),
            // Says nothing of the sale itself: it may live under an id we did not know (a pay
            // named by request_id after the journal forgot it), its init may still arrive, or
            // PhonePe's status may not find a sale it acknowledged. The engine weighs it: after
            // evidence (the sale was seen, the cancel acknowledged) it stays unknown.
            Check::NotFound => Outcome::NotFound(Failure::new(
                "not_processed",
                format!(
                    "PhonePe has no sale {pay_id} to cancel, so nothing was cancelled. This \
                     says nothing of whether the sale was charged: ask get_result for the \
                     sale itself."
                ),
            )),
            Check::Pending(_) => Outcome::Unknown(Failure::new(
                "timeout",
                "The sale is still waiting for the customer and the cancel was not confirmed; \
                 it is being checked. Ask again with get_result.",
            )),
            Check::Unclear(why) => Outcome::Unknown(Failure::new(
                "timeout",
                format!(
                    "The cancel's outcome is not known yet ({why}); ask again with get_result."
                ),
            )),
        }
    }
}

fn cancelled(pay_id: &str, pay_status: &str) -> Approval {
    let mut extra = serde_json::Map::new();
    extra.insert("pay_status".into(), json!(pay_status));
    Approval {
        status: "cancelled".into(),
        provider_reference: Some(pay_id.to_owned()),
        extra,
        ..Approval::default()
    }
}

fn already_completed() -> Failure {
    Failure::new(
        "already_completed",
        "The customer has already paid this sale, so it cannot be cancelled; refund it instead.",
    )
}
