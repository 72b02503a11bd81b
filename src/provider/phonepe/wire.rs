//! PhonePe request shapes, pure: which id names an operation at PhonePe (and which id the status
//! call takes), the API paths, and the init and refund payloads built from an [`Operation`]
//! (answers are read in `answer.rs`). No I/O, no clock, no secrets (signing is
//! `provider::sign`); the provider module decides when to call what.
//!
//! Ids. An operation's merchantTransactionId (a refund's transactionId) is its
//! [`Operation::backend_id`]: made once when the intent is written, journaled, 29 characters of
//! `[A-Za-z0-9]` (the document: "less than 40 characters. Special characters allowed:
//! UNDERSCORE"), new for every operation, so a request_id reused after eviction, on another
//! counter or after a state reset never lands on an old PhonePe transaction. Only intents
//! written before backend ids existed have none; they keep the id they were sent with,
//! [`legacy_transaction_id`]. The status call always names that same id ([`status_id`]), in the
//! request and in the background reconciler alike: it is the only id we are sure PhonePe has
//! (the init answer echoes it as `data.transactionId`), and the only one the journal keeps.
//!
//! orderId (the POS's order, `params.order_id`, else the request_id) may repeat across
//! transactions (the document), so it is mapped, not refused: every character other than
//! `A-Z a-z 0-9 _` becomes `_`, and it is cut to 37 characters ([`order_id`]).

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::provider::{OpKind, Operation};

pub const INIT_PATH: &str = "/v1/payment/init";
pub const REFUND_PATH: &str = "/v3/credit/backToSource";

pub fn status_path(merchant_id: &str, transaction_id: &str) -> String {
    format!("/v1/payment/{merchant_id}/{transaction_id}/status")
}

pub fn cancel_path(merchant_id: &str, transaction_id: &str) -> String {
    format!("/v1/payment/{merchant_id}/{transaction_id}/cancel")
}

/// The document's character rule for every id (merchantId, storeId, terminalId,
/// merchantTransactionId, orderId): letters, digits, and "Special chars allowed: UNDERSCORE".
pub fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `id` is a merchantTransactionId the document allows: 1 to 39 characters of
/// [`id_char`] ("should be less than 40 characters").
pub fn valid_transaction_id(id: &str) -> bool {
    !id.is_empty() && id.len() < 40 && id.bytes().all(id_char)
}

/// The id older versions derived from the request_id (`H` + 32 hex digits of a SHA-256 over
/// the terminal_id and the request_id). Used only for operations journaled without a
/// backend_id, so that their unknown outcome is still found at PhonePe; never for new ones.
pub fn legacy_transaction_id(terminal_id: &str, request_id: &str) -> String {
    let mut h = Sha256::new();
    h.update((terminal_id.len() as u64).to_be_bytes());
    h.update(terminal_id.as_bytes());
    h.update(request_id.as_bytes());
    format!("H{}", &hex::encode(h.finalize())[..32])
}

/// `op`'s own id at PhonePe: the pay's merchantTransactionId, the refund's transactionId.
pub fn own_id(terminal_id: &str, op: &Operation) -> String {
    if op.backend_id.is_empty() {
        legacy_transaction_id(terminal_id, &op.request_id)
    } else {
        op.backend_id.clone()
    }
}

/// The merchantTransactionId of the pay a refund or cancel is about: the id its answer carried
/// (`data.backend_id`, filled in by the engine from the journal when the POS sent only the
/// pay's request_id and the journal still holds the pay). Never derived from a request_id: a
/// guessed id for a money-moving call could reverse another sale, so without it the refund or
/// cancel is refused before anything is sent, naming the field to pass.
pub fn primary_id(op: &Operation) -> Result<String, String> {
    let p = op
        .primary
        .as_ref()
        .ok_or("primary_transaction: is required to find the PhonePe sale")?;
    if let Some(id) = p.backend_id.as_deref().filter(|s| !s.is_empty()) {
        if !valid_transaction_id(id) {
            return Err("primary_transaction.backend_id: is not a PhonePe transaction id".into());
        }
        return Ok(id.to_owned());
    }
    Err(format!(
        "primary_transaction.backend_id: is required (the data.backend_id of the pay's answer){}; \
         nothing was sent",
        match &p.request_id {
            Some(id) => format!(", since the journal no longer holds pay {id}"),
            None => String::new(),
        }
    ))
}

/// THE rule for which id a status call names, for the request's own checks and for the
/// reconciler alike: a pay or refund is asked about by its own id, a cancel by the id of the
/// pay it cancels (its outcome is that pay's status).
pub fn status_id(terminal_id: &str, op: &Operation) -> Result<String, String> {
    match op.kind {
        OpKind::Pay | OpKind::Refund => Ok(own_id(terminal_id, op)),
        OpKind::Cancel => primary_id(op),
        OpKind::CloseShift => Err("PhonePe has no shift to close".into()),
    }
}

/// The merchant's ids from the config.
#[derive(Clone, Debug)]
pub struct Ids {
    pub merchant_id: String,
    pub store_id: String,
    pub terminal_id: String,
}

/// An init payload and how long the sale request stays alive at PhonePe.
#[derive(Debug)]
pub struct PayRequest {
    pub payload: Value,
    pub window: Duration,
}

/// The window the document's samples use (`"timeAllowedForHandoverToTerminalSeconds": 60`;
/// "Range 60sec").
const DEFAULT_WINDOW_S: u64 = 60;
const MAX_HANDOVER_S: u64 = 60;
const MAX_EXPIRY_S: u64 = 900;

fn param_str<'a>(op: &'a Operation, key: &str) -> Result<Option<&'a str>, String> {
    match op.params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("params.{key}: must be a string")),
    }
}

fn param_seconds(op: &Operation, key: &str, max: u64) -> Result<Option<u64>, String> {
    match op.params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(s) if (1..=max).contains(&s) => Ok(Some(s)),
            _ => Err(format!(
                "params.{key}: must be a whole number of seconds, 1 to {max}"
            )),
        },
    }
}

/// PhonePe takes rupees in paise and nothing else ("Amount is in Paisa INR format").
pub fn check_currency(op: &Operation) -> Result<(), String> {
    if op.currency == "INR" {
        Ok(())
    } else {
        Err(format!(
            "currency: PhonePe takes only INR (amounts in paise), not {:?}",
            op.currency
        ))
    }
}

/// Maps any text to the document's id characters: each other character becomes `_`, cut to 37.
pub fn map_order_id(text: &str) -> String {
    text.chars()
        .take(37)
        .map(|c| {
            if c.is_ascii() && id_char(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// orderId: `params.order_id`, else the request_id, mapped by [`map_order_id`]. The mapping may
/// merge two order ids; the document allows an orderId on many transactions.
pub fn order_id(op: &Operation) -> Result<String, String> {
    match param_str(op, "order_id")? {
        Some(o) if o.is_empty() || o.chars().count() > 64 => {
            Err("params.order_id: must be 1 to 64 characters".into())
        }
        Some(o) => Ok(map_order_id(o)),
        None => Ok(map_order_id(&op.request_id)),
    }
}

/// How long a pay's sale request stays alive at PhonePe: the DQR's `expiresIn`, or the EDC's
/// handover time, as [`pay_request`] sends it.
pub fn window(solution: &str, op: &Operation) -> Result<Duration, String> {
    let s = if solution == "DQR_DEVICE" {
        param_seconds(op, "expires_in", MAX_EXPIRY_S)?
    } else {
        param_seconds(op, "handover_seconds", MAX_HANDOVER_S)?
    };
    Ok(Duration::from_secs(s.unwrap_or(DEFAULT_WINDOW_S)))
}

fn payment_modes(op: &Operation) -> Result<Vec<String>, String> {
    match op.params.get("payment_modes") {
        None | Some(Value::Null) => Ok(vec!["CARD".to_owned(), "DQR".to_owned()]),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|m| match m.as_str() {
                Some(s @ ("CARD" | "DQR")) => Ok(s.to_owned()),
                _ => Err("params.payment_modes: each must be \"CARD\" or \"DQR\"".to_owned()),
            })
            .collect(),
        Some(_) => Err("params.payment_modes: must be a non-empty list".into()),
    }
}

/// The init payload for `solution` (`EDC` or `DQR_DEVICE`), typed as the document's table says:
/// `amount`, `expiresIn` and `timeAllowedForHandoverToTerminalSeconds` are LONG (JSON numbers,
/// as in its samples), `paymentModes` a list, everything else a string; no key is ever null.
pub fn pay_request(ids: &Ids, solution: &str, op: &Operation) -> Result<PayRequest, String> {
    check_currency(op)?;
    let amount = op.amount.ok_or("amount: is required")?;
    let window = window(solution, op)?;
    let mut p = Map::new();
    p.insert("merchantId".into(), json!(ids.merchant_id));
    p.insert("storeId".into(), json!(ids.store_id));
    p.insert("terminalId".into(), json!(ids.terminal_id));
    p.insert("orderId".into(), json!(order_id(op)?));
    p.insert(
        "merchantTransactionId".into(),
        json!(own_id(&ids.terminal_id, op)),
    );
    p.insert("amount".into(), json!(amount));
    p.insert("solutionType".into(), json!(solution));
    if solution == "DQR_DEVICE" {
        p.insert("expiresIn".into(), json!(window.as_secs()));
    } else {
        p.insert("paymentModes".into(), json!(payment_modes(op)?));
        p.insert(
            "timeAllowedForHandoverToTerminalSeconds".into(),
            json!(window.as_secs()),
        );
        match param_str(op, "integration_mapping_type")?.unwrap_or("ONE_TO_ONE") {
            "ONE_TO_ONE" => {
                if param_str(op, "short_order_id")?.is_some() {
                    // The document: "in other cases if shortOrderId passed in request, server
                    // will return error" (SHORT_CODE_NOT_REQUIRED).
                    return Err("params.short_order_id: only with integration_mapping_type \
                                \"OPEN\""
                        .into());
                }
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
        window,
    })
}

/// The backToSource payload: the refund's own id against the pay's merchantTransactionId.
/// Partial amounts are allowed.
pub fn refund_payload(ids: &Ids, op: &Operation) -> Result<Value, String> {
    check_currency(op)?;
    let amount = op.amount.ok_or("amount: is required")?;
    let original = primary_id(op)?;
    Ok(json!({
        "merchantId": ids.merchant_id,
        "transactionId": own_id(&ids.terminal_id, op),
        "originalTransactionId": original,
        "amount": amount,
        "merchantOrderId": order_id(op)?,
        "message": format!("refund {}", map_order_id(&op.request_id)),
    }))
}
