//! What the PhonePe replica refuses, and how: payload checks (types, ids, solution, modes,
//! mapping) answered with PhonePe's codes, and the answer envelope. Pure checks; it must not
//! change the ledger or look at signatures.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A refusal: `{success: false, code, message}` with an HTTP status.
pub struct Refusal {
    http: StatusCode,
    code: &'static str,
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

pub fn unauthorized() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "Checksum verification failed (X-VERIFY)",
    )
}

/// Only `amount` is a number (above 0); `paymentModes` a list of strings; everything else a
/// string. A null anywhere is refused.
pub fn check_types(payload: &Value) -> Result<(), Refusal> {
    for (k, v) in payload.as_object().expect("object") {
        let ok = match (k.as_str(), v) {
            ("amount", v) => v.as_u64().is_some_and(|a| a > 0),
            ("paymentModes", Value::Array(list)) => list.iter().all(Value::is_string),
            (_, Value::String(_)) => true,
            _ => false,
        };
        if !ok {
            let code = if k == "amount" {
                "INVALID_AMOUNT"
            } else {
                "INVALID_REQUEST"
            };
            return Err(bad(code, format!("{k}: wrong type or null")));
        }
    }
    Ok(())
}

pub fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn valid_txn_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() < 38
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn seconds(p: &Value, key: &str) -> Option<u64> {
    text(p, key).parse().ok().filter(|s| *s > 0)
}

/// Checks an init payload; the window (ms) the customer has, or the refusal.
pub fn check_init(solutions: &[String], p: &Value) -> Result<u64, Refusal> {
    for key in ["merchantId", "storeId", "terminalId", "orderId"] {
        if text(p, key).is_empty() {
            return Err(bad("INVALID_REQUEST", format!("{key}: is required")));
        }
    }
    if !valid_txn_id(text(p, "merchantTransactionId")) {
        return Err(bad(
            "INVALID_TRANSACTION_ID",
            "merchantTransactionId: bad id",
        ));
    }
    let solution = text(p, "solutionType");
    if !solutions.iter().any(|s| s == solution) {
        return Err(Refusal::new(
            StatusCode::OK,
            "SOLUTION_NOT_ENABLED",
            format!("solution {solution:?} is not enabled for this merchant"),
        ));
    }
    let window = if solution == "DQR_DEVICE" {
        seconds(p, "expiresIn").ok_or_else(|| bad("INVALID_REQUEST", "expiresIn: required"))?
    } else {
        let modes = p.get("paymentModes").and_then(Value::as_array);
        let modes_ok = modes.is_some_and(|m| {
            !m.is_empty() && m.iter().all(|x| matches!(x.as_str(), Some("CARD" | "DQR")))
        });
        if !modes_ok {
            return Err(bad(
                "INVALID_PAYMENT_MODES",
                "paymentModes: CARD and/or DQR",
            ));
        }
        match text(p, "integrationMappingType") {
            "ONE_TO_ONE" => {}
            "OPEN" => {
                let s = text(p, "shortOrderId");
                if !(4..=8).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("INVALID_REQUEST", "shortOrderId: 4 to 8 digits"));
                }
            }
            _ => return Err(bad("INVALID_REQUEST", "integrationMappingType")),
        }
        seconds(p, "timeAllowedForHandoverToTerminalSeconds").ok_or_else(|| {
            bad(
                "INVALID_REQUEST",
                "timeAllowedForHandoverToTerminalSeconds: required",
            )
        })?
    };
    Ok(window * 1000)
}
