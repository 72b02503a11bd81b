//! IOT Pay refunds: one refund_order per refund, never re-sent. IOT Pay documents no refund
//! query and no deduplication of mchRefundNo, so a refund whose answer is lost or cannot be
//! believed stays unknown (`manual_check`) and names the mchRefundNo a person looks up in the
//! IOT Pay portal; re-sending could refund the customer twice.

use super::answer::{self, NotRefunded};
use super::{wire, IotPay};
use crate::provider::http::HttpError;
use crate::provider::{Failure, Operation, Outcome};

impl IotPay {
    pub(super) async fn refund(&self, op: &Operation) -> Outcome {
        let params = match wire::refund_order(&self.merchant, op) {
            Ok(p) => p,
            Err(f) => return Outcome::Failed(f),
        };
        let id = op.request_id.as_str();
        let body = match self.post(&self.quick, "refund_order", &params).await {
            Ok(body) => body,
            Err(e @ HttpError::NotSent { .. }) => return e.into_outcome(),
            Err(e) => {
                log::warn!(request_id = id; "refund_order: {e}");
                return Outcome::Unknown(refund_unknown(op, &e.to_string()));
            }
        };
        match wire::check(&body, &self.merchant.key) {
            Ok(map) => match answer::read_refund(&map) {
                Ok(a) => Outcome::Approved(a),
                Err(NotRefunded::Failed(f)) => Outcome::Failed(f),
                Err(NotRefunded::Unknown(why)) => Outcome::Unknown(refund_unknown(op, &why)),
            },
            Err(p) => {
                let f = super::says::unverified(id, "refund_order", &p);
                Outcome::Unknown(refund_unknown(op, &f.message))
            }
        }
    }
}

pub(super) fn refund_unknown(op: &Operation, why: &str) -> Failure {
    let no = wire::mch_refund_no(op);
    Failure::new(
        "manual_check",
        format!("The refund's outcome is not known ({why}). IOT Pay has no refund status query: check refund {no} in the IOT Pay merchant portal before refunding again."),
    )
}
