//! The socket contract, API v1: request parsing and response shapes (DESIGN.md §2).
//!
//! Pure: bytes in, typed values out, no I/O. Every way a request line can be wrong maps to one
//! [`Rejection`] naming the field and the reason, so the server can always answer exactly once.
//! This module must not know about the journal, the engine or any provider.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest `request_id`.
pub const MAX_REQUEST_ID: usize = 64;
/// Largest amount accepted, in minor units (a sanity bound far above any counter sale).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// `metadata`: echoed back unchanged and stored with the result.
pub type Metadata = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pay,
    Refund,
    Cancel,
    CloseShift,
    GetResult,
    Status,
    /// posbridge extension: the newest results in the journal, for `posbridge results`.
    Results,
    /// posbridge extension: paired devices and their link state, for `posbridge devices`.
    Devices,
    /// posbridge extension (admin): pair the device at `address` as `role`.
    Pair,
    /// posbridge extension (admin): forget the paired device `id`.
    Unpair,
    /// posbridge extension (admin): list BLE devices advertising the link service, with RSSI.
    Scan,
}

const LIFEPAY_PREFIX: &str = "ru.lifepay.checkout.payment_terminal.";

impl Action {
    /// The action named by `s`, accepting the Lifepay names as aliases.
    pub fn parse(s: &str) -> Option<Action> {
        let short = match s.strip_prefix(LIFEPAY_PREFIX) {
            Some(rest) => match rest {
                "transaction.pay" => "pay",
                "transaction.refund" => "refund",
                "transaction.cancel" => "cancel",
                "transaction.get_result" => "get_result",
                "close_shift" => "close_shift",
                _ => return None,
            },
            None => s,
        };
        Some(match short {
            "pay" => Action::Pay,
            "refund" => Action::Refund,
            "cancel" => Action::Cancel,
            "close_shift" => Action::CloseShift,
            "get_result" => Action::GetResult,
            "status" => Action::Status,
            "results" => Action::Results,
            "devices" => Action::Devices,
            "pair" => Action::Pair,
            "unpair" => Action::Unpair,
            "scan" => Action::Scan,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Refund => "refund",
            Action::Cancel => "cancel",
            Action::CloseShift => "close_shift",
            Action::GetResult => "get_result",
            Action::Status => "status",
            Action::Results => "results",
            Action::Devices => "devices",
            Action::Pair => "pair",
            Action::Unpair => "unpair",
            Action::Scan => "scan",
        }
    }

    /// Needs `api.admin_groups` when that is set: money operations and (un)pairing.
    pub fn needs_admin(self) -> bool {
        self.is_operation() || matches!(self, Action::Pair | Action::Unpair | Action::Scan)
    }

    /// Answered by the device manager rather than the engine.
    pub fn is_device_action(self) -> bool {
        matches!(
            self,
            Action::Devices | Action::Pair | Action::Unpair | Action::Scan
        )
    }

    /// Operations are journaled and executed once; the other actions only read.
    pub fn is_operation(self) -> bool {
        matches!(
            self,
            Action::Pay | Action::Refund | Action::Cancel | Action::CloseShift
        )
    }

    fn needs_amount(self) -> bool {
        matches!(self, Action::Pay | Action::Refund | Action::Cancel)
    }
}

/// A request that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    pub request_id: Option<String>,
    pub metadata: Metadata,
    pub amount: Option<u64>,
    pub currency: Option<String>,
    pub provider: Option<String>,
    /// The `data` of the pay being reversed (refund, cancel), always as an object.
    pub primary_transaction: Option<Map<String, Value>>,
    pub params: Map<String, Value>,
    /// `results` only: how many to list.
    pub limit: Option<usize>,
    /// `pair`: `serial:PATH` or `ble:ADDRESS`.
    pub address: Option<String>,
    /// `pair`: `card-reader` or `dqr-display`.
    pub role: Option<String>,
    /// `pair`, serial only: the baud rate (default 115200).
    pub baud: Option<u32>,
    /// `unpair`: the device id as `devices` lists it.
    pub id: Option<String>,
    /// `scan` only: how long to listen, in seconds.
    pub seconds: Option<u64>,
}

/// Why a line was refused, with what could be salvaged for the echo fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub request_id: Option<String>,
    pub metadata: Metadata,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Rejection {
    pub fn into_response(self) -> Response {
        Response::error(
            self.request_id,
            self.metadata,
            ErrorType::DefaultError,
            "invalid_request",
            self.message,
        )
    }
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, Rejection> {
    let bare = |message: String| Rejection {
        request_id: None,
        metadata: Metadata::new(),
        field: None,
        message,
    };
    let text = std::str::from_utf8(line)
        .map_err(|e| bare(format!("the request is not valid UTF-8 ({e})")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| bare(format!("the request is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bare(format!(
            "the request must be a JSON object, not {}",
            kind_of(&value)
        )));
    };
    Fields::new(&obj).request()
}

/// Field-by-field reader over one request object; remembers the echo fields for rejections.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    request_id: Option<String>,
    metadata: Metadata,
}

impl<'a> Fields<'a> {
    fn new(obj: &'a Map<String, Value>) -> Self {
        // Echo whatever the request carried, even if it later turns out invalid.
        let request_id = obj
            .get("request_id")
            .and_then(Value::as_str)
            .filter(|s| valid_request_id(s))
            .map(str::to_owned);
        let metadata = obj
            .get("metadata")
            .and_then(Value::as_object)
            .and_then(|m| {
                m.iter()
                    .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect::<Option<Metadata>>()
            })
            .unwrap_or_default();
        Fields {
            obj,
            request_id,
            metadata,
        }
    }

    fn reject(&self, field: &'static str, message: String) -> Rejection {
        Rejection {
            request_id: self.request_id.clone(),
            metadata: self.metadata.clone(),
            field: Some(field),
            message: format!("{field}: {message}"),
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn string(&self, field: &'static str) -> Result<Option<&'a str>, Rejection> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.reject(field, format!("must be a string, not {}", kind_of(v)))),
        }
    }

    fn request(self) -> Result<Request, Rejection> {
        let action_name = self
            .string("action")?
            .ok_or_else(|| self.reject("action", "is required".into()))?;
        let action = Action::parse(action_name).ok_or_else(|| {
            self.reject(
                "action",
                format!(
                    "unknown action {action_name:?}; expected pay, refund, cancel, get_result, \
                     close_shift, status, results, devices, pair or unpair"
                ),
            )
        })?;
        let request_id = match self.string("request_id")? {
            Some(id) if !valid_request_id(id) => {
                return Err(self.reject(
                    "request_id",
                    "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -".into(),
                ))
            }
            Some(id) => Some(id.to_owned()),
            None if action == Action::GetResult => {
                return Err(self.reject("request_id", "is required for get_result".into()))
            }
            None => None,
        };
        let metadata = self.metadata()?;
        let amount = self.amount(action)?;
        let currency = match self.string("currency")? {
            Some(c) if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) => {
                return Err(self.reject(
                    "currency",
                    format!("{c:?} is not an ISO 4217 code (three capital letters, e.g. INR)"),
                ))
            }
            c => c.map(str::to_owned),
        };
        let provider = match self.string("provider")? {
            Some("") => return Err(self.reject("provider", "must not be empty".into())),
            p => p.map(str::to_owned),
        };
        let primary_transaction = self.primary(action)?;
        let params = match self.get("params") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(v) => {
                return Err(self.reject("params", format!("must be an object, not {}", kind_of(v))))
            }
        };
        let limit = match self.get("limit") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=10_000).contains(&n) => Some(n as usize),
                _ => return Err(self.reject("limit", "must be an integer from 1 to 10000".into())),
            },
        };
        let address = self.string("address")?.map(str::to_owned);
        if action == Action::Pair && address.is_none() {
            return Err(self.reject(
                "address",
                "is required for pair: serial:PATH or ble:ADDRESS".into(),
            ));
        }
        let role = match self.string("role")? {
            Some(r @ ("card-reader" | "dqr-display")) => Some(r.to_owned()),
            Some(other) => {
                return Err(self.reject(
                    "role",
                    format!("{other:?} is not a role; expected card-reader or dqr-display"),
                ))
            }
            None if action == Action::Pair => {
                return Err(self.reject(
                    "role",
                    "is required for pair: card-reader or dqr-display".into(),
                ))
            }
            None => None,
        };
        let baud = match self.get("baud") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if (50..=4_000_000).contains(&n) => Some(n as u32),
                _ => {
                    return Err(self.reject("baud", "must be an integer from 50 to 4000000".into()))
                }
            },
        };
        let id = match self.string("id")? {
            Some(id) if !id.is_empty() => Some(id.to_owned()),
            _ if action == Action::Unpair => {
                return Err(self.reject(
                    "id",
                    "is required for unpair: the device id `devices` lists".into(),
                ))
            }
            _ => None,
        };
        let seconds = match self.get("seconds") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=60).contains(&n) => Some(n),
                _ => return Err(self.reject("seconds", "must be an integer from 1 to 60".into())),
            },
        };
        Ok(Request {
            action,
            request_id,
            metadata,
            amount,
            currency,
            provider,
            primary_transaction,
            params,
            limit,
            address,
            role,
            baud,
            id,
            seconds,
        })
    }

    fn metadata(&self) -> Result<Metadata, Rejection> {
        match self.get("metadata") {
            None => Ok(Metadata::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(self.reject(
                        "metadata",
                        format!("value of {k:?} must be a string, not {}", kind_of(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.reject(
                "metadata",
                format!("must be an object of strings, not {}", kind_of(v)),
            )),
        }
    }

    fn amount(&self, action: Action) -> Result<Option<u64>, Rejection> {
        let Some(v) = self.get("amount") else {
            if action.needs_amount() {
                return Err(self.reject(
                    "amount",
                    format!(
                        "is required for {} (minor units, e.g. 100 = 1.00)",
                        action.as_str()
                    ),
                ));
            }
            return Ok(None);
        };
        let reason = match v {
            Value::Number(n) => match n.as_u64() {
                Some(0) => "must be greater than 0".to_owned(),
                Some(a) if a > MAX_AMOUNT => format!("must be at most {MAX_AMOUNT}"),
                Some(a) => return Ok(Some(a)),
                None if n.as_i64().is_some() => "must be greater than 0".to_owned(),
                // Not an integer JSON can hold in 64 bits: a float, or an integer beyond u64.
                None => match n.as_f64() {
                    Some(f) if f <= 0.0 => "must be greater than 0".to_owned(),
                    Some(f) if f.fract() != 0.0 => {
                        "must be a whole number of minor units, not a fraction".to_owned()
                    }
                    Some(f) if f > MAX_AMOUNT as f64 => format!("must be at most {MAX_AMOUNT}"),
                    _ => "must be written as a plain integer (no decimal point or exponent)"
                        .to_owned(),
                },
            },
            other => format!(
                "must be an integer number of minor units, not {}",
                kind_of(other)
            ),
        };
        Err(self.reject("amount", reason))
    }

    fn primary(&self, action: Action) -> Result<Option<Map<String, Value>>, Rejection> {
        const F: &str = "primary_transaction";
        let needed = matches!(action, Action::Refund | Action::Cancel);
        let obj = match self.get(F) {
            None if needed => {
                return Err(self.reject(
                    F,
                    format!(
                        "is required for {}: pass the data of the pay being reversed",
                        action.as_str()
                    ),
                ))
            }
            None => return Ok(None),
            Some(Value::Object(m)) => m.clone(),
            // Lifepay clients pass the primary transaction as a JSON string.
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => return Err(self.reject(F, "string does not hold a JSON object".into())),
            },
            Some(v) => {
                return Err(self.reject(
                    F,
                    format!("must be an object or a JSON string, not {}", kind_of(v)),
                ))
            }
        };
        Ok(Some(obj))
    }
}

pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    DefaultError,
    UnknownResultError,
    DuplicateRequestError,
    ResultNotFoundError,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::DefaultError => "default_error",
            ErrorType::UnknownResultError => "unknown_result_error",
            ErrorType::DuplicateRequestError => "duplicate_request_error",
            ErrorType::ResultNotFoundError => "result_not_found_error",
        }
    }

    /// The non-zero `code` that goes with each error type.
    pub fn code(self) -> i32 {
        match self {
            ErrorType::DefaultError => 1,
            ErrorType::UnknownResultError => 2,
            ErrorType::DuplicateRequestError => 3,
            ErrorType::ResultNotFoundError => 4,
        }
    }
}

/// One response line. Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub code: i32,
    pub request_id: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl Response {
    pub fn ok(request_id: Option<String>, metadata: Metadata, data: Value) -> Self {
        Response {
            code: 0,
            request_id,
            metadata,
            data: Some(data),
            error_type: None,
            reason: None,
            message: None,
            log: None,
        }
    }

    pub fn error(
        request_id: Option<String>,
        metadata: Metadata,
        error_type: ErrorType,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Response {
            code: error_type.code(),
            request_id,
            metadata,
            data: None,
            error_type: Some(error_type),
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
            log: None,
        }
    }

    /// The response as one line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a Response always serializes")
    }
}

#[cfg(test)]
mod tests;
