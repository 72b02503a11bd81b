//! The typed answer: done with its data, or refused with an [`ErrorKind`], a reason and a
//! message. Its serde form is the v1 answer object, field for field and in the same order.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Metadata, Status};

/// Why a request was refused, as the POS tells the cases apart (`error_type` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    DefaultError,
    UnknownResultError,
    DuplicateRequestError,
    ResultNotFoundError,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DefaultError => "default_error",
            ErrorKind::UnknownResultError => "unknown_result_error",
            ErrorKind::DuplicateRequestError => "duplicate_request_error",
            ErrorKind::ResultNotFoundError => "result_not_found_error",
        }
    }

    /// The non-zero `code` that goes with each kind.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::DefaultError => 1,
            ErrorKind::UnknownResultError => 2,
            ErrorKind::DuplicateRequestError => 3,
            ErrorKind::ResultNotFoundError => 4,
        }
    }

    fn of_code(code: i32) -> ErrorKind {
        [
            ErrorKind::UnknownResultError,
            ErrorKind::DuplicateRequestError,
            ErrorKind::ResultNotFoundError,
        ]
        .into_iter()
        .find(|k| k.code() == code)
        .unwrap_or(ErrorKind::DefaultError)
    }
}

/// One answer to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub request_id: Option<String>,
    pub metadata: Metadata,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Done (`code` 0), with its data.
    Done(Data),
    Refused(Refusal),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ErrorKind,
    /// Stable snake_case reason: `declined`, `timeout`, `invalid_request`, ...
    pub reason: String,
    /// For the cashier.
    pub message: String,
}

/// The `data` of a done answer: an approved money movement or the status, typed, or content
/// that is open by nature (a shift summary, a listing, the devices, a scan).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Transaction(Box<Transaction>),
    Status(Box<Status>),
    Open(Value),
}

/// The data of an approved pay, refund or cancel. Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub request_id: String,
    /// `pay`, `refund` or `cancel`.
    pub operation: String,
    pub provider: String,
    /// `approved`, `refunded`, `cancelled`.
    pub status: String,
    /// What the POS asked for, in minor units.
    pub amount: Option<u64>,
    /// What the backend says it charged, when it reports a total of its own (a tip, cashback,
    /// a surcharge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_amount: Option<u64>,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_code: Option<String>,
    /// The masked card, as the provider describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Value>,
    /// The reversed pay (refund, cancel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<PrimaryRef>,
    /// An operator's decision, when one settled the operation (`posbridge resolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Value>,
    /// The operation's id at its backend, when its reversal must name it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_id: Option<String>,
    /// The provider's own fields, in the provider's order ([`Transaction::add_extras`]).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    pub created_at: String,
    pub completed_at: String,
}

/// The pay a refund or cancel reversed, as its data names it (both keys always written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryRef {
    pub request_id: Option<String>,
    pub provider_reference: Option<String>,
}

impl Transaction {
    /// Adds the provider's extra fields in their order, skipping every key the transaction
    /// already has (a field of its own that is set, or an extra added before).
    pub fn add_extras(&mut self, extra: Map<String, Value>) {
        for (key, value) in extra {
            if !self.has(&key) && !self.extra.contains_key(&key) {
                self.extra.insert(key, value);
            }
        }
    }

    fn has(&self, key: &str) -> bool {
        match key {
            "request_id" | "operation" | "provider" | "status" | "amount" | "currency"
            | "created_at" | "completed_at" => true,
            "charged_amount" => self.charged_amount.is_some(),
            "provider_reference" => self.provider_reference.is_some(),
            "rrn" => self.rrn.is_some(),
            "approval_code" => self.approval_code.is_some(),
            "card" => self.card.is_some(),
            "primary" => self.primary.is_some(),
            "resolution" => self.resolution.is_some(),
            "backend_id" => self.backend_id.is_some(),
            _ => false,
        }
    }
}

impl Data {
    /// The data read from its JSON: typed as a [`Transaction`] when it is one and the typed
    /// form writes back the very same bytes; else kept as it is. So a stored answer always
    /// replays byte for byte, whichever version wrote it.
    pub fn from_value(value: Value) -> Data {
        let operation = value.get("operation").and_then(Value::as_str);
        if matches!(operation, Some("pay" | "refund" | "cancel")) {
            if let Ok(t) = serde_json::from_value::<Transaction>(value.clone()) {
                if serde_json::to_string(&t).ok() == serde_json::to_string(&value).ok() {
                    return Data::Transaction(Box::new(t));
                }
            }
        }
        Data::Open(value)
    }

    /// The data as one JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Data::Transaction(t) => serde_json::to_value(t).unwrap_or(Value::Null),
            Data::Status(s) => serde_json::to_value(s).unwrap_or(Value::Null),
            Data::Open(v) => v.clone(),
        }
    }

    /// Its `status`, when it has one.
    pub fn status(&self) -> Option<&str> {
        match self {
            Data::Transaction(t) => Some(&t.status),
            Data::Status(_) => None,
            Data::Open(v) => v.get("status").and_then(Value::as_str),
        }
    }
}

impl From<Value> for Data {
    fn from(v: Value) -> Data {
        Data::Open(v)
    }
}

impl From<Transaction> for Data {
    fn from(t: Transaction) -> Data {
        Data::Transaction(Box::new(t))
    }
}

impl From<Status> for Data {
    fn from(s: Status) -> Data {
        Data::Status(Box::new(s))
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Transaction(t) => t.serialize(s),
            Data::Status(status) => status.serialize(s),
            Data::Open(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        Value::deserialize(d).map(Data::from_value)
    }
}

impl Answer {
    /// Done, with `data`.
    pub fn done(request_id: Option<String>, metadata: Metadata, data: impl Into<Data>) -> Answer {
        Answer {
            request_id,
            metadata,
            body: Body::Done(data.into()),
        }
    }

    /// Refused as `kind`, for `reason`, with a message for the cashier.
    pub fn refused(
        request_id: Option<String>,
        metadata: Metadata,
        kind: ErrorKind,
        reason: &str,
        message: impl Into<String>,
    ) -> Answer {
        Answer {
            request_id,
            metadata,
            body: Body::Refused(Refusal {
                kind,
                reason: reason.to_owned(),
                message: message.into(),
            }),
        }
    }

    /// The wire `code`: 0 when done, else the kind's.
    pub fn code(&self) -> i32 {
        match &self.body {
            Body::Done(_) => 0,
            Body::Refused(r) => r.kind.code(),
        }
    }

    pub fn data(&self) -> Option<&Data> {
        match &self.body {
            Body::Done(d) => Some(d),
            Body::Refused(_) => None,
        }
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.body {
            Body::Done(_) => None,
            Body::Refused(r) => Some(r),
        }
    }

    /// The refusal's kind; `None` when done.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.refusal().map(|r| r.kind)
    }

    /// The refusal's reason; `None` when done.
    pub fn reason(&self) -> Option<&str> {
        self.refusal().map(|r| r.reason.as_str())
    }

    /// One line for the log: the status or the reason, never card data.
    pub fn summary(&self) -> String {
        match &self.body {
            Body::Done(d) => d.status().unwrap_or("done").to_owned(),
            Body::Refused(r) => format!("{} ({})", r.kind.as_str(), r.reason),
        }
    }
}

/// The v1 answer object as written. Field order is the wire order.
#[derive(Serialize)]
struct WireOut<'a> {
    code: i32,
    request_id: &'a Option<String>,
    metadata: &'a Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Data>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<ErrorKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The v1 answer object as read (an unknown field, such as a `log`, is ignored).
#[derive(Deserialize)]
struct WireIn {
    code: i32,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<ErrorKind>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let refusal = self.refusal();
        WireOut {
            code: self.code(),
            request_id: &self.request_id,
            metadata: &self.metadata,
            data: self.data(),
            error_type: refusal.map(|r| r.kind),
            reason: refusal.map(|r| r.reason.as_str()),
            message: refusal.map(|r| r.message.as_str()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Answer, D::Error> {
        let w = WireIn::deserialize(d)?;
        let body = if w.code == 0 {
            Body::Done(w.data.unwrap_or(Data::Open(Value::Null)))
        } else {
            Body::Refused(Refusal {
                kind: w.error_type.unwrap_or(ErrorKind::of_code(w.code)),
                reason: w.reason.unwrap_or_default(),
                message: w.message.unwrap_or_default(),
            })
        };
        Ok(Answer {
            request_id: w.request_id,
            metadata: w.metadata,
            body,
        })
    }
}

#[cfg(test)]
mod tests;
