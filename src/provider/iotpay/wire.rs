//! IOT Pay's wire format, without I/O: the deterministic order and refund numbers, the signed
//! parameter maps of create_order / query_order / refund_order, and what an answer says once its
//! signature is checked. It must not send anything, read a clock or log; and it must not let a
//! full card number out (every card number passes through `mask_pan`).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::provider::sign::{iotpay_sign, iotpay_verify, SignError};
use crate::provider::{mask_pan, Approval, Card, Failure, Operation};
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

/// mchOrderNo for the pay `request_id`: `P` + the first 29 hex digits of
/// SHA-256("posbridge:pay:" + request_id) = 30 characters, IOT Pay's limit, letters and digits
/// only. A hash and not the request_id itself because a request_id may be 64 characters and
/// contain `.:_-`. Deterministic, so a restarted daemon queries the very order it created
/// (116 bits: no two request_ids meet in practice).
pub fn order_no(request_id: &str) -> String {
    numbered('P', "pay", request_id)
}

/// mchRefundNo for the refund `request_id`: as [`order_no`], with `R` and "refund".
pub fn refund_no(request_id: &str) -> String {
    numbered('R', "refund", request_id)
}

fn numbered(prefix: char, kind: &str, request_id: &str) -> String {
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

/// An optional string from the request's `params`.
fn text_param(op: &Operation, name: &str) -> Result<Option<String>, Failure> {
    match op.params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Failure::new(
            "invalid_request",
            format!("params.{name}: must be a string"),
        )),
    }
}

/// The signed create_order parameters. `params.device` (terminal) and `params.remarks` are
/// passed through when the POS gives them.
pub fn create_order(m: &Merchant, op: &Operation) -> Result<Map<String, Value>, Failure> {
    let amount = op
        .amount
        .ok_or_else(|| Failure::new("invalid_request", "amount: is required"))?;
    let mut p = Map::new();
    p.insert("mchId".into(), json!(m.mch_id));
    p.insert("mchOrderNo".into(), json!(order_no(&op.request_id)));
    p.insert("channelId".into(), json!(m.channel_id));
    p.insert("currency".into(), json!(op.currency));
    p.insert("amount".into(), json!(amount));
    p.insert("clientIp".into(), json!(CLIENT_IP));
    if let Some(device) = text_param(op, "device")? {
        p.insert("device".into(), json!(device));
    }
    // IOT Pay posts a notification there; the semi-integration does not use it (we ask).
    p.insert("notifyUrl".into(), json!("http://localhost"));
    p.insert("subject".into(), json!("posbridge sale"));
    p.insert("body".into(), json!(format!("POS sale {}", op.request_id)));
    // Must not be empty; the request_id lets a person match the order in IOT Pay's portal.
    p.insert(
        "extra".into(),
        json!(json!({"requestId": op.request_id}).to_string()),
    );
    p.insert("jobNo".into(), json!(m.job_no));
    if let Some(remarks) = text_param(op, "remarks")? {
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

/// The signed refund_order parameters: the same map every time for the same refund, so a
/// re-issue (see `RefundRecheck::Reissue`) is byte-for-byte the original request.
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
    p.insert("mchRefundNo".into(), json!(refund_no(&op.request_id)));
    p.insert("payOrderId".into(), json!(pay_order_id));
    p.insert("refundAmount".into(), json!(amount));
    p.insert("clientIp".into(), json!(CLIENT_IP));
    p.insert("loginName".into(), json!(m.job_no));
    Ok(signed(p, m))
}

/// The POST body: one form field `params` holding the JSON object.
pub fn form(params: &Map<String, Value>) -> [(&'static str, String); 1] {
    let json = serde_json::to_string(params).expect("a JSON map always serializes");
    [("params", json)]
}

/// Why an answer cannot be taken at its word.
#[derive(Debug, PartialEq)]
pub enum Problem {
    /// Not a JSON object (a proxy page, a cut-off body).
    Garbage,
    /// A `sign` was there and did not verify, or a success came without one.
    Signature(SignError),
    /// retCode FAIL: the gateway refused the request (its retMsg).
    Rejected(String),
}

/// Parses an answer and checks its signature. A signed answer must verify; an unsigned one is
/// only believed when it refuses (retCode FAIL), never when it reports success.
pub fn check(body: &[u8], key: &Secret) -> Result<Map<String, Value>, Problem> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(Problem::Garbage);
    };
    let signed = match map.get("sign") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    if signed {
        iotpay_verify(&map, key.expose()).map_err(Problem::Signature)?;
    }
    if text(&map, "retCode") != Some("SUCCESS") {
        let msg = text(&map, "retMsg").unwrap_or("no retMsg");
        return Err(Problem::Rejected(plain(msg)));
    }
    if !signed {
        return Err(Problem::Signature(SignError::MissingSignature("sign")));
    }
    Ok(map)
}

/// Whether a refusal means IOT Pay has no such order.
pub fn is_not_found(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("not exist") || m.contains("not found")
}

/// Whether a refusal is about our signature (wrong key or mchId).
pub fn is_sign_error(msg: &str) -> bool {
    msg.to_ascii_lowercase().contains("sign")
}

/// What a verified create_order or query_order answer says about the order.
#[derive(Debug, PartialEq)]
pub enum PayState {
    Paid(Approval),
    /// Final, nothing charged: status 4 (declined / cancelled by the system), status 9
    /// (cancelled by the customer), or a business failure without an order.
    Failed(Failure),
    /// Status 0 or 1 (or one we do not know): not final yet.
    Pending(String),
    /// IOT Pay has no order with this number.
    NotFound,
}

pub fn pay_state(map: &Map<String, Value>) -> PayState {
    let business_ok = text(map, "resCode") == Some("SUCCESS");
    // The order comes as `payOrder`; some answers put its fields at the top level.
    let order = match map.get("payOrder") {
        Some(Value::Object(o)) => o,
        _ if map.contains_key("status") && map.contains_key("payOrderId") => map,
        _ => {
            let why = text(map, "errDes")
                .or(text(map, "errCode"))
                .or(text(map, "retMsg"))
                .unwrap_or("no reason given");
            if is_not_found(why) || text(map, "errCode") == Some("ORDER_NOT_EXIST") {
                return PayState::NotFound;
            }
            return PayState::Failed(Failure::new(
                "declined",
                format!("IOT Pay declined the sale: {}", plain(why)),
            ));
        }
    };
    let status = order.get("status").and_then(number);
    let extra = order_extra(order);
    let receipt = text(&extra, "receiptDisp").map(plain);
    match status {
        Some(2 | 3) if business_ok => PayState::Paid(approval(order, &extra)),
        Some(4) => PayState::Failed(Failure::new(
            "declined",
            format!(
                "The card was declined: {}.",
                receipt
                    .as_deref()
                    .unwrap_or("declined by the payment system")
            ),
        )),
        Some(9) => PayState::Failed(Failure::new(
            "cancelled",
            format!(
                "The payment was cancelled on the terminal: {}.",
                receipt.as_deref().unwrap_or("cancelled by the customer")
            ),
        )),
        Some(s) => PayState::Pending(format!("status {s}")),
        None => PayState::Pending("no status".into()),
    }
}

/// `extra` of an order: a JSON string (as documented) or an object.
fn order_extra(order: &Map<String, Value>) -> Map<String, Value> {
    match order.get("extra") {
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn approval(order: &Map<String, Value>, extra: &Map<String, Value>) -> Approval {
    let card = text(extra, "cardNum").map(|pan| Card {
        masked_pan: mask_pan(pan),
        scheme: text(extra, "cardType").map(str::to_owned),
    });
    let mut kept = Map::new();
    if let Some(no) = text(order, "mchOrderNo") {
        kept.insert("mch_order_no".into(), json!(no));
    }
    Approval {
        status: "approved".into(),
        provider_reference: order.get("payOrderId").and_then(as_text),
        rrn: None,
        approval_code: text(extra, "authNum").map(str::to_owned),
        card,
        extra: kept,
    }
}

/// What a verified refund_order answer says.
pub fn refund_state(map: &Map<String, Value>) -> Result<Approval, NotRefunded> {
    let refund = match map.get("refundOrder") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    if text(map, "resCode") != Some("SUCCESS") {
        let why = text(map, "errDes")
            .or(text(map, "retMsg"))
            .unwrap_or("no reason given");
        return Err(NotRefunded::Failed(Failure::new(
            "declined",
            format!("IOT Pay refused the refund: {}", plain(why)),
        )));
    }
    match refund.get("status").and_then(number) {
        None | Some(2 | 3) => {}
        Some(s @ (0 | 1)) => return Err(NotRefunded::Pending(format!("status {s}"))),
        Some(s) => {
            return Err(NotRefunded::Failed(Failure::new(
                "declined",
                format!("IOT Pay did not refund (refund status {s})."),
            )))
        }
    }
    let mut kept = Map::new();
    if let Some(no) = text(&refund, "mchRefundNo").or(text(map, "mchRefundNo")) {
        kept.insert("mch_refund_no".into(), json!(no));
    }
    Ok(Approval {
        status: "refunded".into(),
        provider_reference: refund
            .get("refundOrderId")
            .or(map.get("refundOrderId"))
            .and_then(as_text),
        extra: kept,
        ..Approval::default()
    })
}

/// A refund that is not (yet) a success.
#[derive(Debug, PartialEq)]
pub enum NotRefunded {
    Failed(Failure),
    Pending(String),
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A status that may come as a number or a numeric string.
fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Backend text for a cashier: printable, bounded.
fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests;
