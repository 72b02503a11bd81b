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
    /// `pair`, BLE only: how the technician's CLI made the bond with the device (it ran the
    /// BlueZ agent and saw which method the pairing used). `None`: the client did not say.
    pub bond: Option<BondMethod>,
    /// `pair`, BLE only: the operator accepts a bond that is not authenticated (Just Works, or
    /// one made outside posbridge) and lets the acquirer's credentials go over it.
    pub allow_unauthenticated: bool,
}

/// How a Bluetooth LE bond was made: which pairing method BlueZ's agent saw. Only a bond whose
/// method compared or entered a code is authenticated (protected against a man in the middle
/// while it was made).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BondMethod {
    /// The reader and the CLI showed the same six digits and the technician confirmed.
    NumericComparison,
    /// The reader showed six digits and the technician typed them into the CLI.
    PasskeyEntry,
    /// The CLI showed six digits and the technician typed them on the reader.
    PasskeyDisplay,
    /// No code at all: anyone in radio range while the bond was made could sit in the middle.
    JustWorks,
    /// Made outside posbridge (e.g. `bluetoothctl pair`): how is not known.
    Unknown,
}

impl BondMethod {
    pub const ALL: [BondMethod; 5] = [
        BondMethod::NumericComparison,
        BondMethod::PasskeyEntry,
        BondMethod::PasskeyDisplay,
        BondMethod::JustWorks,
        BondMethod::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BondMethod::NumericComparison => "numeric_comparison",
            BondMethod::PasskeyEntry => "passkey_entry",
            BondMethod::PasskeyDisplay => "passkey_display",
            BondMethod::JustWorks => "just_works",
            BondMethod::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<BondMethod> {
        BondMethod::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Whether the bond's key is authenticated: a code was compared or entered.
    pub fn authenticated(self) -> bool {
        matches!(
            self,
            BondMethod::NumericComparison | BondMethod::PasskeyEntry | BondMethod::PasskeyDisplay
        )
    }
}

impl fmt::Display for BondMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
            bond: None,
            allow_unauthenticated: false,
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
            .field("bond", &self.bond)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .finish_non_exhaustive()
    }
}
