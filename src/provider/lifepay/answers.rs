//! The reader's answers in the API's words: a finished operation, a closed shift, a busy
//! reader, a failed exchange (final before a start could have reached the reader, unknown
//! after), and the one log entry per exchange. It decides nothing about recovery (that is
//! `recovery`) and never logs a card number or a password.

use serde_json::{json, Map, Value};

use crate::device::link::{self, SaleResult, ShiftTotals};
use crate::device::reader::{Answer, CardReader, ReaderError, ShiftAnswer};
use crate::device::session::LinkError;
use crate::provider::{
    mask_card_numbers, mask_pan, Approval, Card, Failure, OpKind, Operation, Outcome,
};

/// The closed shift in the API's words. A version 1 reader reports approved sales only, so
/// refunds, cancels and the net are then unknown (null), never guessed as zero.
pub(super) fn shift_closed(op: &Operation, answer: ShiftAnswer) -> Outcome {
    let (pay, refund, cancel, net) = match answer {
        ShiftAnswer::Totals(ShiftTotals {
            pay_count,
            pay_total,
            refund_count,
            refund_total,
            cancel_count,
            cancel_total,
        }) => (
            json!({"count": pay_count, "total": pay_total}),
            json!({"count": refund_count, "total": refund_total}),
            json!({"count": cancel_count, "total": cancel_total}),
            json!(pay_total as i128 - refund_total as i128 - cancel_total as i128),
        ),
        ShiftAnswer::Closed { count, total } => (
            json!({"count": count, "total": total}),
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        ShiftAnswer::Busy { running } => return Outcome::Failed(busy(&running)),
    };
    Outcome::ShiftClosed(json!({
        "operation": "close_shift",
        "provider": "lifepay",
        "status": "closed",
        "currency": op.currency,
        "pay": pay,
        "refund": refund,
        "cancel": cancel,
        "net": net,
    }))
}
pub(super) fn unavailable(message: String) -> Failure {
    Failure::new("device_unavailable", message)
}
/// A finished reader answer in the API's words.
pub(super) fn finished(op: &Operation, r: SaleResult) -> Outcome {
    match r.outcome {
        link::Outcome::Approved => {
            let mut extra = Map::new();
            extra.insert("reader_message".into(), json!(r.message));
            Outcome::Approved(Approval {
                status: match op.kind {
                    OpKind::Refund => "refunded",
                    OpKind::Cancel => "cancelled",
                    _ => "approved",
                }
                .into(),
                provider_reference: r.rrn.clone(),
                rrn: r.rrn,
                approval_code: r.approval_code,
                card: r.masked_pan.map(|pan| Card {
                    masked_pan: mask_pan(&pan),
                    scheme: r.scheme,
                }),
                charged_amount: None,
                backend_id: None,
                extra,
            })
        }
        link::Outcome::Declined => Outcome::Failed(Failure::new("declined", r.message)),
        link::Outcome::Error => Outcome::Failed(Failure::new(
            "provider_error",
            format!("The card reader could not complete it: {}", r.message),
        )),
    }
}
/// What a failed exchange means: before the reader could have started anything it is a final
/// failure; after a start may have reached it, the outcome is unknown.
pub(super) fn link_failed(e: ReaderError) -> Outcome {
    match e {
        ReaderError::Link(LinkError::Encode(err)) => {
            Outcome::Failed(Failure::new("invalid_request", err.to_string()))
        }
        ReaderError::Link(LinkError::Refused { what, reason }) => Outcome::Failed(Failure::new(
            "provider_error",
            format!("The card reader refused {what} ({reason:?}); nothing was started."),
        )),
        ReaderError::Link(e) => Outcome::Unknown(Failure::new(
            "link_lost",
            format!(
                "The link to the card reader was lost during the operation ({e}); its outcome \
                 is checked with the reader once it is back. Ask again with get_result."
            ),
        )),
        ReaderError::Timeout { .. } => Outcome::Unknown(Failure::new(
            "timeout",
            format!("{e}; the outcome is checked with the reader. Ask again with get_result."),
        )),
    }
}
/// One entry per exchange with the reader, with the DEVICE field. Only the outcome and the
/// reader's message (card numbers in it masked): the card itself is in the answer, not here.
/// Logs what the reader answered. A result is logged at info and a lost answer at warn; any
/// other answer (still running, no record, busy) at info to a start, which comes once per
/// operation, but at debug to a status check (`Check::Status`), which repeats as often as the
/// POS asks get_result or the reconciler retries: the engine says once what such an answer
/// means for the outcome (issue 19: lines per sale stay under journald's rate limit).
pub(super) fn log_answer(
    op: &Operation,
    reader: &CardReader,
    what: Check,
    answer: &Result<Answer, ReaderError>,
) {
    let said = match answer {
        Ok(Answer::Done(r)) => format!("{:?}: {}", r.outcome, mask_card_numbers(&r.message)),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("no answer: {e}"),
    };
    let level = match (answer, what) {
        (Err(_), _) => log::Level::Warn,
        (Ok(Answer::Done(_)), _) | (Ok(_), Check::Start) => log::Level::Info,
        (Ok(_), Check::Status) => log::Level::Debug,
    };
    let what = match what {
        Check::Start => "answered",
        Check::Status => "asked about it (GET_RESULT)",
    };
    log::log!(level, request_id = op.request_id.as_str(), provider = "lifepay",
        action = op.kind.as_str(), device = reader.id();
        "the card reader {} {what}: {said}", reader.id());
}

/// Which question a logged answer is to.
#[derive(Clone, Copy)]
pub(super) enum Check {
    /// The operation's start (START_SALE and its kin).
    Start,
    /// A status check (GET_RESULT).
    Status,
}

pub(super) fn busy(running: &str) -> Failure {
    Failure::new(
        "device_busy",
        format!(
            "The card reader is busy with another operation ({running}); nothing was charged. \
             Try again when it is done."
        ),
    )
}
