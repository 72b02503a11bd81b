//! A request that passed the API's checks, in types.

use std::fmt;

use serde_json::{Map, Value};

use super::{Action, Metadata};

/// A valid request. The API builds it from a request line; tests build it directly
/// ([`Request::new`] and the field setters).
#[derive(Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    pub request_id: Option<String>,
    pub metadata: Metadata,
    pub amount: Option<u64>,
    pub currency: Option<String>,
    pub provider: Option<String>,
    /// The `data` of the pay being reversed (refund, cancel), always as an object.
    pub primary_transaction: Option<Map<String, Value>>,
    /// Provider extras; the LIFE POS per-request fields (`login`, `password`, ...) land here
    /// too, under their own names (the engine keeps `password` out of the journal).
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
    /// `resolve` only: the operator's decision and why.
    pub resolution: Option<Resolution>,
    /// `"progress": true`: the POS wants events before the answer (operations: their stages;
    /// scan: the devices it hears).
    pub progress: bool,
}

/// `resolve`: what an operator found out about an unknown outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub charged: bool,
    pub note: String,
}

impl Request {
    /// A request for `action` with no other field set.
    pub fn new(action: Action) -> Request {
        Request {
            action,
            request_id: None,
            metadata: Metadata::new(),
            amount: None,
            currency: None,
            provider: None,
            primary_transaction: None,
            params: Map::new(),
            limit: None,
            address: None,
            role: None,
            baud: None,
            id: None,
            seconds: None,
            resolution: None,
            progress: false,
        }
    }

    /// With `request_id` set.
    pub fn id(mut self, request_id: &str) -> Request {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// With `amount` set (minor units).
    pub fn amount(mut self, amount: u64) -> Request {
        self.amount = Some(amount);
        self
    }

    /// With `provider` set.
    pub fn provider(mut self, provider: &str) -> Request {
        self.provider = Some(provider.to_owned());
        self
    }

    /// With `params[key]` set.
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Request {
        self.params.insert(key.to_owned(), value.into());
        self
    }
}

// Hand-written so a logged request never shows a password in `params`.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = self.params.clone();
        if params.contains_key("password") {
            params.insert("password".into(), Value::from("<redacted>"));
        }
        f.debug_struct("Request")
            .field("action", &self.action)
            .field("request_id", &self.request_id)
            .field("metadata", &self.metadata)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("provider", &self.provider)
            .field("primary_transaction", &self.primary_transaction)
            .field("params", &params)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}
