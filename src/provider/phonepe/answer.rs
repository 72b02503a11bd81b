//! What PhonePe's answers mean: init/backToSource acceptance or refusal, a status answer's
//! verdict on a pay or refund, and the card in it, masked. Pure: bytes in, verdicts out; it must
//! not decide when to call anything, and never lets a full card number through.

use serde_json::{json, Map, Value};

use super::codes::{self, Meaning};
use crate::provider::{mask_card_numbers, mask_pan, Approval, Card, Failure, OpKind, Operation};

/// A PhonePe answer: `{success, code, message, data}`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub success: bool,
    pub code: String,
    pub message: String,
    pub data: Value,
}

/// `None` when the body is not a PhonePe answer at all (garbage, HTML from a proxy).
pub fn parse_answer(body: &[u8]) -> Option<Answer> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("code")?.as_str()?.to_owned();
    Some(Answer {
        success: v.get("success").and_then(Value::as_bool).unwrap_or(false),
        message: scrub(v.get("message").and_then(Value::as_str).unwrap_or("")),
        code,
        data: v.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// Backend text made fit for a cashier's message and the journal: printable, short, and any
/// run of 12 or more digits (a card number would be one) masked.
pub fn scrub(text: &str) -> String {
    let printable: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    mask_card_numbers(&printable)
}

impl Answer {
    fn said(&self) -> String {
        // The code is scrubbed like the message: it is backend text too (fuzz/: a code with a
        // card number in it went into the cashier's message as it was).
        let code = scrub(&self.code);
        if self.message.is_empty() {
            format!("PhonePe answered {code}")
        } else {
            format!("PhonePe answered {code}: {}", self.message)
        }
    }

    fn data_str(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// PhonePe's own id for the transaction, when this answer carries one.
    pub fn phonepe_id(&self) -> Option<String> {
        self.data_str("phonepeTransactionId")
            .or_else(|| self.data_str("providerReferenceId"))
    }
}

/// What the answer to a money-moving call (init, backToSource) means.
#[derive(Debug)]
pub enum Sent {
    /// Accepted: follow it with status checks.
    Follow,
    /// PhonePe says it already holds this id: never this request's answer; only the status
    /// of our own id may settle it.
    Duplicate,
    /// Refused; nothing moved.
    Refused(Failure),
}

/// Classifies an init or backToSource answer by the code table (`codes.rs`). A code not in it,
/// or a refusal code with `success: true`, is followed with status checks: an answer we do not
/// understand must not be taken as "nothing happened".
pub fn classify_sent(kind: OpKind, a: &Answer) -> Sent {
    match codes::meaning(&a.code) {
        Some(Meaning::Duplicate) => Sent::Duplicate,
        Some(Meaning::Refused { reason, what }) if !a.success => Sent::Refused(Failure::new(
            reason,
            format!(
                "{what} The {} was not started ({}). {}",
                kind.as_str(),
                a.said(),
                codes::not_charged()
            ),
        )),
        _ => Sent::Follow,
    }
}

/// What a status answer says about a pay or refund. Short-lived, one at a time: its size
/// does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Status {
    Success(Approval),
    Failed(Failure),
    /// Not final yet (PENDING, INTERNAL_SERVER_ERROR, ...).
    Pending,
    /// PhonePe has no transaction under this id (TRANSACTION_NOT_FOUND, PAYMENT_NOT_FOUND,
    /// NOT_FOUND): "nothing charged" only without evidence and once the sale request could no
    /// longer come alive (the provider and the engine decide).
    NotFound,
    /// The answer does not tell (unauthorized, unknown shape).
    Unclear(String),
}

/// Status codes that mean "no transaction under this id". Not INVALID_TRANSACTION_ID: the
/// init document (001, "Response Codes") gives it as "The format of Transaction ID is
/// invalid", a refusal of the id's shape, which says nothing of whether a transaction exists.
const NOT_FOUND: [&str; 3] = ["TRANSACTION_NOT_FOUND", "PAYMENT_NOT_FOUND", "NOT_FOUND"];

/// Reads a status answer for operation `op` (pay or refund), asked about by `id`. The status
/// decides: SUCCESS is a charge whatever `data.amount` says (PhonePe's public samples answer
/// `amount: 0`); an amount that differs is logged and kept in the approval
/// (`phonepe_amount`), never turned into a refusal.
pub fn classify_status(op: &Operation, id: &str, a: &Answer) -> Status {
    if NOT_FOUND.contains(&a.code.as_str()) {
        return Status::NotFound;
    }
    if a.code == "UNAUTHORIZED" {
        return Status::Unclear(a.said());
    }
    if a.code == "INVALID_TRANSACTION_ID" {
        return Status::Unclear(format!(
            "{}; PhonePe documents this code as a format error of the id, not as \"no such \
             transaction\"",
            a.said()
        ));
    }
    let state = a
        .data_str("status")
        .or_else(|| a.data_str("state"))
        .unwrap_or_else(|| match a.code.as_str() {
            "PAYMENT_SUCCESS" => "SUCCESS".into(),
            "PAYMENT_PENDING" | "INTERNAL_SERVER_ERROR" => "PENDING".into(),
            "PAYMENT_ERROR" | "PAYMENT_DECLINED" | "PAYMENT_CANCELLED" => "FAILED".into(),
            _ => String::new(),
        });
    match state.as_str() {
        "SUCCESS" | "COMPLETED" => Status::Success(approval(op, id, a)),
        "FAILED" if a.code.contains("CANCEL") => Status::Failed(Failure::new(
            "cancelled",
            "The sale was cancelled before the customer paid. Nothing was charged.",
        )),
        "FAILED" => Status::Failed(Failure::new(
            "declined",
            format!(
                "The {} was declined ({}). Nothing was charged.",
                if op.kind == OpKind::Refund {
                    "refund"
                } else {
                    "payment"
                },
                a.said()
            ),
        )),
        "EXPIRED" => Status::Failed(Failure::new(
            "expired",
            "The customer did not pay in time and the payment request expired. \
             Nothing was charged.",
        )),
        "PENDING" => Status::Pending,
        _ => Status::Unclear(a.said()),
    }
}

fn approval(op: &Operation, id: &str, a: &Answer) -> Approval {
    let mut extra = Map::new();
    // Our id, for an operator searching PhonePe's dashboard (and as `backend_id` below, for a
    // refund or cancel of this sale: `primary_transaction.backend_id`).
    extra.insert("merchant_transaction_id".into(), json!(id));
    let theirs = a.data.get("amount").and_then(Value::as_u64);
    if let (Some(theirs), Some(ours)) = (theirs, op.amount) {
        if theirs != ours {
            log::warn!(request_id = op.request_id.as_str(), provider = "phonepe";
                "{} {}: PhonePe reports SUCCESS with amount {theirs}, we asked {ours}; \
                 recorded as phonepe_amount", op.kind.as_str(), op.request_id);
            extra.insert("phonepe_amount".into(), json!(theirs));
        }
    }
    if let Some(mode) = a.data_str("paymentMode") {
        extra.insert("payment_mode".into(), json!(mode));
    }
    Approval {
        status: if op.kind == OpKind::Refund {
            "refunded"
        } else {
            "approved"
        }
        .into(),
        provider_reference: a.phonepe_id().or_else(|| Some(id.to_owned())),
        rrn: a.data_str("referenceNumber"),
        approval_code: a
            .data_str("authCode")
            .or_else(|| a.data_str("approvalCode")),
        card: card(&a.data),
        charged_amount: None,
        backend_id: Some(id.to_owned()),
        extra,
    }
}

/// The card from `paymentInstruments` (a list or one object), masked: a full number never
/// gets through, whatever field it came in.
pub fn card(data: &Value) -> Option<Card> {
    let found = match data.get("paymentInstruments")? {
        Value::Array(list) => list.iter().find(|i| i.is_object())?.clone(),
        v @ Value::Object(_) => v.clone(),
        _ => return None,
    };
    let s = |k: &str| found.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = ["cardNumber", "maskedCardNumber", "pan", "maskedPan"]
        .iter()
        .find_map(|k| s(k));
    let last4 = ["last4Digits", "last4", "cardLast4"]
        .iter()
        .find_map(|k| s(k))
        .or_else(|| number.clone());
    let masked_pan = match &number {
        // An unmasked number of card length: keep six and four.
        Some(n) if n.chars().all(|c| c.is_ascii_digit() || c == ' ') && n.len() >= 12 => {
            mask_pan(n)
        }
        _ => {
            let digits: String = last4?.chars().filter(char::is_ascii_digit).collect();
            if digits.len() < 4 {
                return None;
            }
            format!("************{}", &digits[digits.len() - 4..])
        }
    };
    let scheme = ["cardNetwork", "network", "cardType"]
        .iter()
        .find_map(|k| s(k));
    Some(Card { masked_pan, scheme })
}

/// A documented refusal (nothing was done) named `clock_skew` when it is UNAUTHORIZED and
/// our clock is far off PhonePe's `Date`: PhonePe's request carries no time, so this is only
/// a hint to the technician (docs/providers.md, "What the documents leave open"); the answer stays final, as refused.
pub fn clock_named(f: Failure, date: Option<&str>) -> Failure {
    match crate::clock::skew_from_date(date) {
        Some(skew) if f.reason == "unauthorized" && skew.abs() > crate::clock::SKEW_LIMIT_S => {
            Failure::new(
                "clock_skew",
                format!(
                    "{} Also, {}: set the counter's clock (`timedatectl set-ntp true`; \
                     `posbridge doctor` shows the skew).",
                    f.message,
                    crate::clock::describe_skew(skew, "PhonePe's")
                ),
            )
        }
        _ => f,
    }
}
