//! What the cashier is told when an IOT Pay sale ends without a charge or cannot be known
//! yet: the texts of `not_processed`, of a refusal, and of an answer that cannot be believed.
//! It decides nothing (the caller has classified the answer) and must never quote a key.

use super::answer;
use super::wire::Problem;
use crate::provider::Failure;

/// An answer that cannot be believed: never final, checked again later.
pub(super) fn unverified(id: &str, call: &str, p: &Problem) -> Failure {
    match p {
        Problem::Signature(e) => {
            log::warn!(request_id = id; "{call}: the answer's signature failed ({e}); its outcome is treated as unknown. If every answer fails, providers.iotpay.key or mch_id is wrong: run `posbridge doctor`");
            Failure::new(
                "bad_signature",
                "IOT Pay's answer did not carry a valid signature, so it cannot be trusted; \
                 the outcome is being checked. If this happens to every sale, check \
                 providers.iotpay.key and mch_id (`posbridge doctor`). Ask again with get_result.",
            )
        }
        Problem::Garbage => {
            log::warn!(request_id = id; "{call}: the answer was not IOT Pay's JSON; its outcome is treated as unknown");
            Failure::new(
                "timeout",
                "IOT Pay's answer was unreadable; the outcome is being checked. \
                 Ask again with get_result.",
            )
        }
    }
}

pub(super) fn not_processed() -> Failure {
    Failure::new(
        "not_processed",
        "IOT Pay never received this sale: nothing was charged. \
         Start a new sale with a new request_id.",
    )
}

/// A verified create_order refusal after which query_order found no order: per the document
/// an "error occurs before sending request to the bank", so nothing was charged. The reason
/// is `unauthorized` when IOT Pay's words name the signature or the merchant (only the hint
/// changes: both are final, nothing charged), else `declined`; the message quotes IOT Pay.
pub(super) fn rejected(msg: &str) -> Failure {
    if answer::is_sign_error(msg) || answer::is_merchant_error(msg) {
        return Failure::new(
            "unauthorized",
            format!("IOT Pay refused the sale: {msg}. Check providers.iotpay.key and mch_id. Nothing was charged."),
        );
    }
    Failure::new(
        "declined",
        format!("IOT Pay refused the sale: {msg}. Nothing was charged."),
    )
}
