//! What the PhonePe replica refuses in an init, and with which code: written from the init
//! document (001_206d3d9ac737255e.txt, "Request Parameters" and "Response Codes"), not from the
//! client. Types as the document's table gives them (amount, expiresIn and
//! timeAllowedForHandoverToTerminalSeconds are LONG: JSON integers, never strings), ids of
//! letters, digits and underscore, mandatory fields, and the EDC rules (mapping type, short
//! order id, payment modes, handover time). Pure checks; it must not change the ledger or look
//! at signatures.
//!
//! Where the document is silent the replica chooses, and says so (docs/providers.md, "What the documents leave open"):
//! a bad or missing orderId, solutionType or expiresIn is answered `BAD_REQUEST` (no documented
//! code); the handover time must be 1 to 60 s ("Range 60sec"); expiresIn defaults to 180 s and
//! the handover time to 60 s when absent; a payload without solutionType is EDC (the document's
//! EDC base64 sample has none), and `transactionId` is taken for merchantTransactionId (the same
//! sample). Unknown keys are accepted.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A refusal: `{success: false, code, message}` with an HTTP status.
#[derive(Debug)]
pub struct Refusal {
    http: StatusCode,
    pub code: &'static str,
    message: String,
}

impl Refusal {
    pub fn new(http: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            http,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        answer(self.http, false, self.code, &self.message, Value::Null)
    }
}

pub fn answer(http: StatusCode, success: bool, code: &str, message: &str, data: Value) -> Response {
    let mut body = json!({"success": success, "code": code, "message": message});
    if !data.is_null() {
        body["data"] = data;
    }
    (http, Json(body)).into_response()
}

pub fn bad(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, code, message)
}

/// The document's answer to a wrong X-VERIFY.
pub fn unauthorized() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "checksum verification failed",
    )
}

pub fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

/// "Special chars allowed: UNDERSCORE".
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// merchantTransactionId: "less than 40 characters", letters, digits, underscore.
pub fn valid_txn_id(id: &str) -> bool {
    valid_id(id) && id.len() < 40
}

/// The merchant's transaction id of an init: `merchantTransactionId`, or `transactionId` as
/// the document's EDC base64 sample spells it.
pub fn txn_id_of(p: &Value) -> &str {
    match p.get("merchantTransactionId") {
        Some(v) => v.as_str().unwrap_or(""),
        None => text(p, "transactionId"),
    }
}

/// A String field: present (when `mandatory`), a JSON string, of id characters.
fn id_field(p: &Value, key: &str, mandatory: bool, code: &'static str) -> Result<(), Refusal> {
    match p.get(key) {
        None if !mandatory => Ok(()),
        Some(Value::String(s)) if valid_id(s) => Ok(()),
        None => Err(bad(code, format!("{key}: is mandatory"))),
        Some(v) => Err(bad(
            code,
            format!("{key}: must be a string of letters, digits and underscore, not {v}"),
        )),
    }
}

/// A LONG field: absent (`None`), or a JSON integer (a string such as `"60"` is refused).
fn long_field(p: &Value, key: &str, code: &'static str) -> Result<Option<u64>, Refusal> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => Ok(n.as_u64()),
        Some(v) => Err(bad(code, format!("{key}: must be a LONG number, not {v}"))),
    }
}

/// What the replica is told about its merchant.
pub struct Setup<'a> {
    /// Solution types enabled for the merchant (others: SOLUTION_NOT_ENABLED).
    pub solutions: &'a [String],
    /// Terminals not in integrated mode (INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL).
    pub not_integrated: &'a [String],
}

const DEFAULT_EXPIRY_S: u64 = 180;
const DEFAULT_HANDOVER_S: u64 = 60;
const MAX_HANDOVER_S: u64 = 60;

/// Checks an init payload; the window (ms) the sale request stays alive, or the refusal.
pub fn check_init(setup: &Setup, p: &Value) -> Result<u64, Refusal> {
    if !p.is_object() {
        return Err(bad("BAD_REQUEST", "request is not a JSON object"));
    }
    id_field(p, "merchantId", true, "INVALID_MERCHANT_ID")?;
    id_field(p, "storeId", true, "INVALID_STORE_ID")?;
    let txn = txn_id_of(p);
    if !valid_txn_id(txn) {
        return Err(bad(
            "INVALID_TRANSACTION_ID",
            "merchantTransactionId: mandatory, under 40 letters, digits or underscores",
        ));
    }
    match long_field(p, "amount", "INVALID_AMOUNT")? {
        Some(a) if a > 0 => {}
        _ => return Err(bad("INVALID_AMOUNT", "amount: a LONG above 0, in paise")),
    }
    id_field(p, "orderId", true, "BAD_REQUEST")?;
    let solution = match p.get("solutionType") {
        None => "EDC",
        Some(Value::String(s)) if s == "EDC" || s == "DQR_DEVICE" => s.as_str(),
        Some(v) => {
            return Err(bad(
                "BAD_REQUEST",
                format!("solutionType: EDC or DQR_DEVICE, not {v}"),
            ))
        }
    };
    if !setup.solutions.iter().any(|s| s == solution) {
        return Err(Refusal::new(
            StatusCode::OK,
            "SOLUTION_NOT_ENABLED",
            format!("solution {solution} is not enabled for this merchant"),
        ));
    }
    let window_s = if solution == "DQR_DEVICE" {
        id_field(p, "terminalId", true, "INVALID_TERMINAL_ID")?;
        match long_field(p, "expiresIn", "BAD_REQUEST")? {
            None => DEFAULT_EXPIRY_S,
            Some(0) => return Err(bad("BAD_REQUEST", "expiresIn: above 0")),
            Some(s) => s,
        }
    } else {
        check_edc(p)?
    };
    if setup
        .not_integrated
        .iter()
        .any(|t| t == text(p, "terminalId"))
    {
        return Err(Refusal::new(
            StatusCode::OK,
            "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL",
            "The Terminal is not in integrated mode",
        ));
    }
    Ok(window_s * 1000)
}

/// The EDC context: mapping type, terminal, short order id, payment modes, handover time.
fn check_edc(p: &Value) -> Result<u64, Refusal> {
    let open = match p.get("integrationMappingType").and_then(Value::as_str) {
        Some("ONE_TO_ONE") => false,
        Some("OPEN") => true,
        _ => {
            return Err(bad(
                "INVALID_INTEGRATION_MAPPING_TYPE",
                "integrationMappingType: ONE_TO_ONE or OPEN",
            ))
        }
    };
    // "TerminalId param is optional in case integrationMappingType: OPEN"
    id_field(p, "terminalId", !open, "INVALID_TERMINAL_ID")?;
    match (open, p.get("shortOrderId")) {
        (false, Some(_)) => {
            return Err(bad(
                "SHORT_CODE_NOT_REQUIRED",
                "Short Order Id is not required",
            ))
        }
        (true, None) => {
            return Err(bad(
                "SHORT_CODE_IS_REQUIRED",
                "shortOrderId is mandatory for OPEN",
            ))
        }
        (true, Some(v)) => {
            let ok = v.as_str().is_some_and(|s| {
                (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            });
            if !ok {
                return Err(bad(
                    "INVALID_SHORTCODE_LENGTH",
                    "shortOrderId: 4 to 8 digits",
                ));
            }
        }
        (false, None) => {}
    }
    let modes = p.get("paymentModes").and_then(Value::as_array);
    let modes_ok = modes.is_some_and(|m| {
        !m.is_empty() && m.iter().all(|x| matches!(x.as_str(), Some("CARD" | "DQR")))
    });
    if !modes_ok {
        return Err(bad(
            "INVALID_PAYMENT_MODES",
            "paymentModes: a non-empty list of CARD and/or DQR",
        ));
    }
    if let Some(v) = p.get("autoAccept") {
        if !v.is_string() {
            return Err(bad("BAD_REQUEST", "autoAccept: a String"));
        }
    }
    let code = "INVALID_TERMINAL_HANDOVER_TIME";
    match long_field(p, "timeAllowedForHandoverToTerminalSeconds", code)? {
        None => Ok(DEFAULT_HANDOVER_S),
        Some(s @ 1..=MAX_HANDOVER_S) => Ok(s),
        Some(s) => Err(bad(
            code,
            format!("timeAllowedForHandoverToTerminalSeconds: 1 to 60, not {s}"),
        )),
    }
}

/// A backToSource payload (not in the init document; shared/providers.md): ids of the
/// document's characters, amount a LONG above 0.
pub fn check_refund(p: &Value) -> Result<(), Refusal> {
    id_field(p, "merchantId", true, "INVALID_MERCHANT_ID")?;
    for key in ["transactionId", "originalTransactionId"] {
        if !valid_txn_id(text(p, key)) {
            return Err(bad("INVALID_TRANSACTION_ID", format!("{key}: bad id")));
        }
    }
    match long_field(p, "amount", "INVALID_AMOUNT")? {
        Some(a) if a > 0 => Ok(()),
        _ => Err(bad("INVALID_AMOUNT", "amount: a LONG above 0, in paise")),
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
