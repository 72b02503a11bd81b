//! PhonePe offline-API shapes, pure: our deterministic transaction ids, the init and refund
//! payloads built from an [`Operation`], and what an answer means. No I/O, no clock, no secrets
//! (signing is `provider::sign`); the provider module decides when to call what.
//!
//! Id mapping (documented because a restart must find the same id again): the
//! merchantTransactionId of an operation is `P` + request_id when the request_id is at most 36
//! characters of `[A-Za-z0-9_-]`, else `H` + the first 32 hex digits of SHA-256(request_id).
//! Both fit PhonePe's rule (under 38 characters of `[A-Za-z0-9_-]`), and the first letter keeps
//! the two forms from ever colliding. A refund's transactionId is the refund's own request_id
//! mapped the same way; a cancel names the pay's id.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::provider::{mask_pan, Approval, Card, Failure, OpKind, Operation};

pub const INIT_PATH: &str = "/v1/payment/init";
pub const REFUND_PATH: &str = "/v3/credit/backToSource";

pub fn status_path(merchant_id: &str, transaction_id: &str) -> String {
    format!("/v1/payment/{merchant_id}/{transaction_id}/status")
}

pub fn cancel_path(merchant_id: &str, transaction_id: &str) -> String {
    format!("/v1/payment/{merchant_id}/{transaction_id}/cancel")
}

fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The merchantTransactionId for `request_id` (see the module docs).
pub fn transaction_id(request_id: &str) -> String {
    if !request_id.is_empty() && request_id.len() <= 36 && request_id.bytes().all(id_char) {
        format!("P{request_id}")
    } else {
        let h = Sha256::digest(request_id.as_bytes());
        format!("H{}", &hex::encode(h)[..32])
    }
}

/// The merchant's ids from the config.
#[derive(Clone, Debug)]
pub struct Ids {
    pub merchant_id: String,
    pub store_id: String,
    pub terminal_id: String,
}

/// An init payload and how long the customer has to pay.
#[derive(Debug)]
pub struct PayRequest {
    pub payload: Value,
    pub window: Duration,
}

const DEFAULT_WINDOW_S: u64 = 60;

fn param_str<'a>(op: &'a Operation, key: &str) -> Result<Option<&'a str>, String> {
    match op.params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("params.{key}: must be a string")),
    }
}

fn param_seconds(op: &Operation, key: &str) -> Result<Option<u64>, String> {
    match op.params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(s @ 1..=900) => Ok(Some(s)),
            _ => Err(format!(
                "params.{key}: must be a whole number of seconds, 1 to 900"
            )),
        },
    }
}

/// orderId: `params.order_id`, else the request_id with characters PhonePe does not take
/// replaced by `_` (orderId may repeat across attempts, so the lossy mapping is harmless).
fn order_id(op: &Operation) -> Result<String, String> {
    if let Some(o) = param_str(op, "order_id")? {
        if o.is_empty() || o.len() > 37 || !o.bytes().all(id_char) {
            return Err("params.order_id: must be 1 to 37 characters of A-Z a-z 0-9 _ -".into());
        }
        return Ok(o.to_owned());
    }
    let clean: String = op
        .request_id
        .bytes()
        .take(37)
        .map(|b| if id_char(b) { b as char } else { '_' })
        .collect();
    Ok(clean)
}

/// The init payload for `solution` (`EDC` or `DQR_DEVICE`). Only `amount` is a number, every
/// other value a string, and no key is ever null (PhonePe rejects both).
pub fn pay_request(ids: &Ids, solution: &str, op: &Operation) -> Result<PayRequest, String> {
    let amount = op.amount.ok_or("amount: is required")?;
    let mut p = Map::new();
    p.insert("merchantId".into(), json!(ids.merchant_id));
    p.insert("storeId".into(), json!(ids.store_id));
    p.insert("terminalId".into(), json!(ids.terminal_id));
    p.insert("orderId".into(), json!(order_id(op)?));
    p.insert(
        "merchantTransactionId".into(),
        json!(transaction_id(&op.request_id)),
    );
    p.insert("amount".into(), json!(amount));
    p.insert("solutionType".into(), json!(solution));
    let window;
    if solution == "DQR_DEVICE" {
        window = param_seconds(op, "expires_in")?.unwrap_or(DEFAULT_WINDOW_S);
        p.insert("expiresIn".into(), json!(window.to_string()));
    } else {
        let modes = match op.params.get("payment_modes") {
            None | Some(Value::Null) => vec!["CARD".to_owned(), "DQR".to_owned()],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|m| match m.as_str() {
                    Some(s @ ("CARD" | "DQR")) => Ok(s.to_owned()),
                    _ => Err("params.payment_modes: each must be \"CARD\" or \"DQR\"".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("params.payment_modes: must be a non-empty list".into()),
        };
        p.insert("paymentModes".into(), json!(modes));
        window = param_seconds(op, "handover_seconds")?.unwrap_or(DEFAULT_WINDOW_S);
        p.insert(
            "timeAllowedForHandoverToTerminalSeconds".into(),
            json!(window.to_string()),
        );
        match param_str(op, "integration_mapping_type")?.unwrap_or("ONE_TO_ONE") {
            "ONE_TO_ONE" => {
                p.insert("integrationMappingType".into(), json!("ONE_TO_ONE"));
            }
            "OPEN" => {
                let short = param_str(op, "short_order_id")?.unwrap_or_default();
                if !(4..=8).contains(&short.len()) || !short.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("params.short_order_id: OPEN mapping needs 4 to 8 digits".into());
                }
                p.insert("integrationMappingType".into(), json!("OPEN"));
                p.insert("shortOrderId".into(), json!(short));
            }
            _ => {
                return Err(
                    "params.integration_mapping_type: must be \"ONE_TO_ONE\" or \"OPEN\"".into(),
                )
            }
        }
    }
    Ok(PayRequest {
        payload: Value::Object(p),
        window: Duration::from_secs(window),
    })
}

/// The backToSource payload: a new transactionId (from the refund's own request_id) against the
/// pay's merchantTransactionId. Partial amounts are allowed.
pub fn refund_payload(ids: &Ids, op: &Operation) -> Result<Value, String> {
    let amount = op.amount.ok_or("amount: is required")?;
    let original = op
        .primary
        .as_ref()
        .and_then(|p| p.request_id.as_deref())
        .ok_or("primary_transaction.request_id: is required to find the PhonePe sale")?;
    Ok(json!({
        "merchantId": ids.merchant_id,
        "transactionId": transaction_id(&op.request_id),
        "originalTransactionId": transaction_id(original),
        "amount": amount,
        "merchantOrderId": order_id(op)?,
        "message": format!("refund {}", op.request_id),
    }))
}

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
        message: v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
        code,
        data: v.get("data").cloned().unwrap_or(Value::Null),
    })
}

impl Answer {
    fn said(&self) -> String {
        if self.message.is_empty() {
            format!("PhonePe answered {}", self.code)
        } else {
            format!("PhonePe answered {}: {}", self.code, self.message)
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
    /// Accepted (or already accepted earlier): follow it with status checks.
    Follow,
    /// Refused; nothing moved.
    Refused(Failure),
}

/// Classifies an init or backToSource answer. Anything not known to be a refusal is followed
/// with status checks: a code we do not know must not be taken as "nothing happened".
pub fn classify_sent(kind: OpKind, a: &Answer) -> Sent {
    let refuse = |reason: &str, what: &str| {
        Sent::Refused(Failure::new(reason, format!("{what} ({}).", a.said())))
    };
    match a.code.as_str() {
        "UNAUTHORIZED" => refuse(
            "unauthorized",
            "PhonePe refused the request signature: check salt_key and salt_index. \
             Nothing was charged",
        ),
        "EXCESS_REFUND_AMOUNT" => refuse(
            "invalid_request",
            "PhonePe refused the refund: the amount is more than is left to refund, or an \
             earlier refund of this sale is still being processed",
        ),
        "SOLUTION_NOT_ENABLED" | "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL" => refuse(
            "provider_unavailable",
            "PhonePe has not enabled this payment solution for the merchant or terminal; \
             ask PhonePe to enable it. Nothing was charged",
        ),
        c if c.starts_with("INVALID_") => refuse(
            "invalid_request",
            &format!(
                "PhonePe rejected the {} request. Nothing was charged",
                kind.as_str()
            ),
        ),
        _ => Sent::Follow,
    }
}

/// What a status answer says about a pay or refund.
#[derive(Debug)]
pub enum Status {
    Success(Approval),
    Failed(Failure),
    /// Not final yet (PENDING, INTERNAL_SERVER_ERROR, ...).
    Pending,
    NotFound,
    /// The answer does not tell (unauthorized, unknown shape).
    Unclear(String),
}

/// Reads a status answer for operation `op` (pay or refund).
pub fn classify_status(op: &Operation, a: &Answer) -> Status {
    match a.code.as_str() {
        "PAYMENT_NOT_FOUND" | "TRANSACTION_NOT_FOUND" | "NOT_FOUND" => return Status::NotFound,
        "UNAUTHORIZED" => return Status::Unclear(a.said()),
        _ => {}
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
    if let (Some(theirs), Some(ours)) = (a.data.get("amount").and_then(Value::as_u64), op.amount) {
        if theirs != ours {
            // Another sale under the same id (e.g. a request_id reused on another counter):
            // its result is not ours to report.
            return Status::Failed(Failure::new(
                "invalid_request",
                format!(
                    "PhonePe holds a different sale ({theirs}) under this request's transaction \
                     id; nothing was charged for this request. Use a new request_id."
                ),
            ));
        }
    }
    match state.as_str() {
        "SUCCESS" | "COMPLETED" => Status::Success(approval(op, a)),
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

fn approval(op: &Operation, a: &Answer) -> Approval {
    let mut extra = Map::new();
    if let Some(id) = a.data_str("transactionId") {
        extra.insert("merchant_transaction_id".into(), json!(id));
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
        provider_reference: a.phonepe_id().or_else(|| a.data_str("transactionId")),
        rrn: a.data_str("referenceNumber"),
        approval_code: a
            .data_str("authCode")
            .or_else(|| a.data_str("approvalCode")),
        card: card(&a.data),
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
