//! Reading one request line into a [`Request`]: every field checked, every refusal a
//! [`Rejection`] naming the field and the reason, with the echo fields salvaged (and, for the
//! LIFE POS action names, the action as sent, so the answer comes in the contract's shape).

use serde_json::{Map, Value};

use super::lifepos::{self, LIFEPAY_PREFIX};
use super::{Action, Metadata, Request, Resolution, MAX_AMOUNT, MAX_REQUEST_ID};
use crate::exchange::{Answer, BondMethod, ErrorKind};

/// Why a line was refused, with what could be salvaged for the echo fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// The LIFE POS action name, when the request named one (valid or not).
    pub lifepos_action: Option<String>,
    pub request_id: Option<String>,
    pub metadata: Metadata,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Rejection {
    /// The refusal (`invalid_request`) that answers it.
    pub fn into_answer(self) -> Answer {
        Answer::refused(
            self.request_id,
            self.metadata,
            ErrorKind::DefaultError,
            "invalid_request",
            self.message,
        )
    }
}

/// Parses one request line (without its newline); `super::parse` also says what shape to
/// answer it in.
pub fn parse_request(line: &[u8]) -> Result<Request, Rejection> {
    read(line).map(|(request, _)| request)
}

/// The request in `line`, with the LIFE POS action name as sent when it used one.
pub(super) fn read(line: &[u8]) -> Result<(Request, Option<String>), Rejection> {
    let bare = |message: String| Rejection {
        lifepos_action: None,
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
pub(super) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    lifepos_action: Option<String>,
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
        let lifepos_action = obj
            .get("action")
            .and_then(Value::as_str)
            .filter(|a| a.starts_with(LIFEPAY_PREFIX))
            .map(str::to_owned);
        Fields {
            obj,
            lifepos_action,
            request_id,
            metadata,
        }
    }

    pub(super) fn reject(&self, field: &'static str, message: String) -> Rejection {
        Rejection {
            lifepos_action: self.lifepos_action.clone(),
            request_id: self.request_id.clone(),
            metadata: self.metadata.clone(),
            field: Some(field),
            message: format!("{field}: {message}"),
        }
    }

    pub(super) fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, field: &'static str) -> Result<Option<&'a str>, Rejection> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.reject(field, format!("must be a string, not {}", kind_of(v)))),
        }
    }

    fn request(self) -> Result<(Request, Option<String>), Rejection> {
        let action_name = self
            .string("action")?
            .ok_or_else(|| self.reject("action", "is required".into()))?;
        let action = match action_name.strip_prefix(LIFEPAY_PREFIX) {
            Some(_) => lifepos::action_of(action_name),
            None => Action::parse(action_name),
        };
        let action = action.ok_or_else(|| {
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
            None if matches!(action, Action::GetResult | Action::Resolve) => {
                return Err(
                    self.reject("request_id", format!("is required for {}", action.as_str()))
                )
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
        let mut params = match self.get("params") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(v) => {
                return Err(self.reject("params", format!("must be an object, not {}", kind_of(v))))
            }
        };
        lifepos::request_fields(&self, action, &mut params)?;
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
        let resolution = match action {
            Action::Resolve => Some(self.resolution()?),
            _ => None,
        };
        // Events come only from operations and scan; on another action `true` is taken and
        // nothing comes before the answer.
        let progress = match self.get("progress") {
            None => false,
            Some(Value::Bool(b)) => *b && (action.is_operation() || action == Action::Scan),
            Some(v) => {
                return Err(self.reject(
                    "progress",
                    format!("must be true or false, not {}", kind_of(v)),
                ))
            }
        };
        let (bond, allow_unauthenticated) = self.bond(action, address.as_deref())?;
        let request = Request {
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
            resolution,
            progress,
            bond,
            allow_unauthenticated,
        };
        Ok((request, self.lifepos_action.clone()))
    }

    /// `bond` and `allow_unauthenticated`: `pair` of a `ble:` address only.
    fn bond(
        &self,
        action: Action,
        address: Option<&str>,
    ) -> Result<(Option<BondMethod>, bool), Rejection> {
        let ble = action == Action::Pair && address.is_some_and(|a| a.starts_with("ble:"));
        let bond = match self.get("bond") {
            None | Some(Value::Null) => None,
            Some(_) if !ble => {
                return Err(self.reject("bond", "is for pair of a ble: address only".into()))
            }
            Some(v) => match v.as_str().and_then(BondMethod::parse) {
                Some(m) => Some(m),
                None => {
                    let names: Vec<&str> = BondMethod::ALL.iter().map(|m| m.as_str()).collect();
                    return Err(self.reject("bond", format!("must be one of {}", names.join(", "))));
                }
            },
        };
        let allow = match self.get("allow_unauthenticated") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) if ble => true,
            Some(Value::Bool(true)) => {
                return Err(self.reject(
                    "allow_unauthenticated",
                    "is for pair of a ble: address only".into(),
                ))
            }
            Some(v) => {
                return Err(self.reject(
                    "allow_unauthenticated",
                    format!("must be true or false, not {}", kind_of(v)),
                ))
            }
        };
        Ok((bond, allow))
    }

    fn resolution(&self) -> Result<Resolution, Rejection> {
        let charged = match self.string("decision")? {
            Some("charged") => true,
            Some("not_charged") => false,
            Some(other) => {
                return Err(self.reject(
                    "decision",
                    format!("{other:?} is not a decision; expected charged or not_charged"),
                ))
            }
            None => {
                return Err(self.reject(
                    "decision",
                    "is required for resolve: charged or not_charged".into(),
                ))
            }
        };
        let note = self
            .string("note")?
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                self.reject(
                    "note",
                    "is required for resolve: say what was checked, and where".into(),
                )
            })?;
        Ok(Resolution {
            charged,
            note: note.to_owned(),
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

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
