//! IOT Pay's wire format, without I/O: the order and refund numbers, the signed parameter maps
//! of create_order / query_order / refund_order, the form they travel in, and the signature
//! check of an answer. What a verified answer means is `answer.rs`'s. It must not send
//! anything, read a clock or log.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::provider::sign::{iotpay_sign, iotpay_verify, SignError};
use crate::provider::{Failure, Operation};
use crate::secret::Secret;

/// IOT Pay wants the merchant side's IP; a counter device has no public one of its own, and
/// the field is informational for CC_PAX (the terminal is addressed by the merchant account).
pub const CLIENT_IP: &str = "127.0.0.1";

/// The merchant account every request is made for.
pub struct Merchant {
    pub mch_id: String,
    pub job_no: String,
    pub channel_id: String,
    pub key: Secret,
}

/// mchOrderNo of a pay: the operation's own backend id (`P` + 28 hex digits, made when its
/// intent was written and journaled with it), so a request_id reused after the journal forgot
/// it is a new order. Intents written before backend ids existed have none: those keep the
/// number they were created under ([`legacy_order_no`]), so their outcome is still found.
pub fn mch_order_no(op: &Operation) -> String {
    if op.backend_id.is_empty() {
        legacy_order_no(&op.request_id)
    } else {
        op.backend_id.clone()
    }
}

/// mchRefundNo of a refund: as [`mch_order_no`] (legacy: [`legacy_refund_no`]).
pub fn mch_refund_no(op: &Operation) -> String {
    if op.backend_id.is_empty() {
        legacy_refund_no(&op.request_id)
    } else {
        op.backend_id.clone()
    }
}

/// The mchOrderNo older versions derived from the request_id: `P` + the first 29 hex digits of
/// SHA-256("posbridge:pay:" + request_id), 30 characters. Only for intents without a backend id.
pub fn legacy_order_no(request_id: &str) -> String {
    legacy('P', "pay", request_id)
}

/// The mchRefundNo older versions derived: as [`legacy_order_no`], with `R` and "refund".
pub fn legacy_refund_no(request_id: &str) -> String {
    legacy('R', "refund", request_id)
}

fn legacy(prefix: char, kind: &str, request_id: &str) -> String {
    let h = Sha256::digest(format!("posbridge:{kind}:{request_id}").as_bytes());
    let mut out = String::with_capacity(30);
    out.push(prefix);
    out.push_str(&hex::encode_upper(h)[..29]);
    out
}

fn signed(mut params: Map<String, Value>, m: &Merchant) -> Map<String, Value> {
    let sign = iotpay_sign(&params, m.key.expose());
    params.insert("sign".into(), Value::String(sign));
    params
}

/// An optional string from the request's `params`, at most `max` characters (the document's
/// String(n) for the field it fills).
fn text_param(op: &Operation, name: &str, max: usize) -> Result<Option<String>, Failure> {
    match op.params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(Failure::new(
            "invalid_request",
            format!("params.{name}: at most {max} characters (IOT Pay's limit)"),
        )),
        Some(_) => Err(Failure::new(
            "invalid_request",
            format!("params.{name}: must be a string"),
        )),
    }
}

/// The signed create_order parameters: every field the document marks required, with its
/// limits (mchOrderNo String(30), subject String(64), body String(255), extra String(512) and
/// never empty). `params.device` (String(64)) and `params.remarks` (String(200)) are passed
/// through when the POS gives them.
pub fn create_order(m: &Merchant, op: &Operation) -> Result<Map<String, Value>, Failure> {
    let amount = op
        .amount
        .ok_or_else(|| Failure::new("invalid_request", "amount: is required"))?;
    let mut p = Map::new();
    p.insert("mchId".into(), json!(m.mch_id));
    p.insert("mchOrderNo".into(), json!(mch_order_no(op)));
    p.insert("channelId".into(), json!(m.channel_id));
    p.insert("currency".into(), json!(op.currency));
    p.insert("amount".into(), json!(amount));
    p.insert("clientIp".into(), json!(CLIENT_IP));
    if let Some(device) = text_param(op, "device", 64)? {
        p.insert("device".into(), json!(device));
    }
    // "use 'http://localhost' when channel='CC_PAX'": the semi-integration asks, it is not called.
    p.insert("notifyUrl".into(), json!("http://localhost"));
    p.insert("subject".into(), json!("posbridge sale"));
    p.insert("body".into(), json!(format!("POS sale {}", op.request_id)));
    // "any string you want, not used now, but must have a value": the request_id, so a person
    // can match the order in IOT Pay's portal (a request_id is at most 64 characters).
    p.insert(
        "extra".into(),
        json!(json!({"requestId": op.request_id}).to_string()),
    );
    p.insert("jobNo".into(), json!(m.job_no));
    if let Some(remarks) = text_param(op, "remarks", 200)? {
        p.insert("remarks".into(), json!(remarks));
    }
    Ok(signed(p, m))
}

/// The signed query_order parameters for the order `mch_order_no`.
pub fn query_order(m: &Merchant, mch_order_no: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("mchId".into(), json!(m.mch_id));
    p.insert("mchOrderNo".into(), json!(mch_order_no));
    signed(p, m)
}

/// The signed refund_order parameters. Sent once per refund, never again (see `mod.rs`).
pub fn refund_order(m: &Merchant, op: &Operation) -> Result<Map<String, Value>, Failure> {
    let amount = op
        .amount
        .ok_or_else(|| Failure::new("invalid_request", "amount: is required"))?;
    let pay_order_id = op
        .primary
        .as_ref()
        .and_then(|p| p.provider_reference.clone())
        .ok_or_else(|| {
            Failure::new(
                "invalid_request",
                "primary_transaction: has no provider_reference (the IOT Pay payOrderId)",
            )
        })?;
    let mut p = Map::new();
    p.insert("mchId".into(), json!(m.mch_id));
    p.insert("mchRefundNo".into(), json!(mch_refund_no(op)));
    p.insert("payOrderId".into(), json!(pay_order_id));
    p.insert("refundAmount".into(), json!(amount));
    p.insert("clientIp".into(), json!(CLIENT_IP));
    p.insert("loginName".into(), json!(m.job_no));
    Ok(signed(p, m))
}

/// The POST body: one form field `params` holding the JSON object (`Content-Type:
/// application/x-www-form-urlencoded`, as the document says; the field name is our reading).
pub fn form(params: &Map<String, Value>) -> [(&'static str, String); 1] {
    let json = serde_json::to_string(params).expect("a JSON map always serializes");
    [("params", json)]
}

/// Why an answer cannot be taken at its word.
#[derive(Debug, PartialEq)]
pub enum Problem {
    /// Not a JSON object (a proxy page, a cut-off body).
    Garbage,
    /// No `sign`, or one that does not verify under our key. The document lists `sign` as
    /// required in every answer, refusals included, so an unsigned answer is not IOT Pay's.
    Signature(SignError),
}

/// Parses an answer and checks its signature. Only a verified answer is read any further;
/// what it says is [`super::answer::read_order`]'s business.
pub fn check(body: &[u8], key: &Secret) -> Result<Map<String, Value>, Problem> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(Problem::Garbage);
    };
    iotpay_verify(&map, key.expose()).map_err(Problem::Signature)?;
    Ok(map)
}

#[cfg(test)]
mod tests;
