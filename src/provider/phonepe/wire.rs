//! PhonePe request shapes, pure: our deterministic transaction ids, the API paths, and the init
//! and refund payloads built from an [`Operation`] (answers are read in `answer.rs`). No I/O, no
//! clock, no secrets (signing is `provider::sign`); the provider module decides when to call what.
//!
//! Id mapping (documented because a restart must find the same id again): the
//! merchantTransactionId of an operation is `H` + the first 32 hex digits of a SHA-256 over the
//! terminal_id and the request_id (see [`transaction_id`]): 33 characters of `[A-Za-z0-9]`,
//! within PhonePe's rule (under 38 of `[A-Za-z0-9_-]`), and unique per counter even when two
//! counters of one merchant number their sales alike. The answer carries it as
//! `merchant_transaction_id`, so an operator can find the sale in PhonePe's dashboard. A refund's
//! transactionId is the refund's own request_id mapped the same way; a cancel names the pay's id.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::provider::Operation;

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

/// The merchantTransactionId for `request_id` at `terminal_id`: `H` + 32 hex digits of a
/// SHA-256 over both. PhonePe wants it unique per merchant, and two counters of one merchant
/// may well both number their sales 1, 2, 3: scoping by terminal keeps one counter's sale from
/// ever being taken for another's. Length-prefixing the terminal id makes the pair unambiguous.
pub fn transaction_id(terminal_id: &str, request_id: &str) -> String {
    let mut h = Sha256::new();
    h.update((terminal_id.len() as u64).to_be_bytes());
    h.update(terminal_id.as_bytes());
    h.update(request_id.as_bytes());
    format!("H{}", &hex::encode(h.finalize())[..32])
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
        json!(transaction_id(&ids.terminal_id, &op.request_id)),
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
        "transactionId": transaction_id(&ids.terminal_id, &op.request_id),
        "originalTransactionId": transaction_id(&ids.terminal_id, original),
        "amount": amount,
        "merchantOrderId": order_id(op)?,
        "message": format!("refund {}", op.request_id),
    }))
}
