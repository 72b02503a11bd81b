//! Payment backends behind one trait. The registry (`registry.rs`) lists them: each one's
//! name, what it supports, and how it is built from its config section. What every provider
//! has (name, currency, timeout, status schedule) is one [`Common`] (`common.rs`); each
//! provider keeps only what is its own. Providers read their typed section from `config`.
//!
//! A provider only talks to its backend: it is handed an [`Operation`] and says what happened
//! ([`Outcome`]), or, asked later with [`Provider::status`], what the backend knows about it.
//! Providers never touch the journal and never retry a money-moving call on their own; the
//! engine decides what is durable and what needs reconciling.

pub mod common;
pub mod http;
pub mod iotpay;
pub mod lifepay;
pub mod paysera;
pub mod phonepe;
pub mod progress;
pub mod registry;
pub mod sign;
pub mod sim;
pub mod wake;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::exchange::Metadata;
pub use crate::exchange::{Stage, Stages};
pub use common::Common;

pub use progress::{NoteFuture, NoteSink, Progress};
pub use registry::{from_config, known};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Pay,
    Refund,
    Cancel,
    CloseShift,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Pay => "pay",
            OpKind::Refund => "refund",
            OpKind::Cancel => "cancel",
            OpKind::CloseShift => "close_shift",
        }
    }
}

/// What each provider can do. Asking for anything else is answered `not_supported` before
/// anything is written or contacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub pay: bool,
    pub refund: bool,
    /// A cancel of a pay given by its data (`provider_reference`).
    pub cancel: bool,
    pub close_shift: bool,
    /// Abort: a cancel naming a pay by its request_id only ([`Primary::is_abort`]), e.g. while
    /// it waits for its customer. Taken by every provider that can say honestly what became
    /// of it (docs/api.md's capability table says what each can do).
    pub abort: bool,
}

impl Capabilities {
    /// Whether this provider takes an operation of `kind` reversing `primary`.
    pub fn takes(self, kind: OpKind, primary: Option<&Primary>) -> bool {
        match kind {
            OpKind::Cancel if primary.is_some_and(Primary::is_abort) => self.abort,
            _ => self.supports(kind),
        }
    }

    pub fn supports(self, kind: OpKind) -> bool {
        match kind {
            OpKind::Pay => self.pay,
            OpKind::Refund => self.refund,
            OpKind::Cancel => self.cancel,
            OpKind::CloseShift => self.close_shift,
        }
    }
}

/// The reversed pay, as the POS handed it back (`primary_transaction`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Primary {
    #[serde(default)]
    pub request_id: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub provider_reference: Option<String>,
    pub amount: u64,
    #[serde(default)]
    pub currency: Option<String>,
    /// The original operation's id at its backend, as its answer carried it
    /// (`data.backend_id`); absent for answers of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_id: Option<String>,
    /// An abort's pay, as the journal held it when the abort was accepted: its progress
    /// notes (e.g. the Paysera transaction key of a sale still waiting for its customer).
    /// Only ever filled by the engine from the journal (whatever a POS sends is dropped), and
    /// journaled with the abort's intent, so a status check after a restart has them too.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub pay_notes: Map<String, Value>,
}

impl Primary {
    /// Named by the pay's request_id only, without its answer's `provider_reference`: the POS
    /// has no answer for the pay yet (it may still be running). A cancel of such a pay is an
    /// abort: it stops the pay if it can, and never reverses a pay that has completed (that
    /// answers `already_completed`: refund it).
    pub fn is_abort(&self) -> bool {
        self.request_id.is_some() && self.provider_reference.is_none()
    }
}

/// One accepted operation: what is journaled as the intent and handed to the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub request_id: String,
    pub kind: OpKind,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    pub currency: String,
    #[serde(default)]
    pub metadata: Metadata,
    /// Provider extras, with the LIFE POS per-request fields. Serialized (the journaled
    /// intent) without [`SECRET_PARAMS`]: a request's password lives only in memory while the
    /// operation runs, and a status check later uses the configured credentials.
    #[serde(
        default,
        skip_serializing_if = "Map::is_empty",
        serialize_with = "without_secrets"
    )]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Primary>,
    pub created_at: String,
    /// This operation's own id at the backend or reader (PhonePe merchantTransactionId, IOT Pay
    /// mchOrderNo/mchRefundNo, Paysera's order reference, the reader's sale id). Made once, when
    /// the intent is written ([`new_backend_id`]), and journaled with it: recovery after a crash
    /// reads it back and never recomputes it, and a request_id reused after eviction gets a new
    /// one. Empty only in intents written before it existed; a provider then falls back to the
    /// id it used to derive from the request_id (so an old unknown outcome is still found).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend_id: String,
    /// Notes the provider recorded mid-operation for recovery (an id the backend assigned),
    /// journaled with the intent by the engine ([`Progress`]). Empty for most operations.
    #[serde(default, skip_serializing_if = "Progress::is_empty")]
    pub progress: Progress,
    /// Where the provider tells the stages the backend or reader reports while it runs
    /// (progress events for the POS that asked; never journaled, no part of the outcome).
    #[serde(skip)]
    pub stages: Stages,
}

impl Operation {
    /// A cancel whose primary names the pay by request_id only ([`Primary::is_abort`]).
    pub fn is_abort(&self) -> bool {
        self.kind == OpKind::Cancel && self.primary.as_ref().is_some_and(Primary::is_abort)
    }
}

/// `params` keys that are never written anywhere (journal, logs).
pub const SECRET_PARAMS: &[&str] = &["password"];

fn without_secrets<S: serde::Serializer>(
    params: &Map<String, Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let kept: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !SECRET_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kept.serialize(s)
}

/// A fresh backend id for one operation of `kind`: a letter for the kind (`P` pay, `R` refund,
/// `C` cancel, `S` close_shift) and 28 lowercase hex digits, 112 random bits. 29 characters of
/// `[A-Za-z0-9]`, which every backend accepts (IOT Pay: at most 30, letters and digits;
/// PhonePe: under 38, letters, digits and underscore; the link protocol: 1..64).
pub fn new_backend_id(kind: OpKind) -> String {
    let a = *uuid::Uuid::new_v4().as_bytes();
    // A v4 UUID fixes the top nibble of byte 6 (version) and two bits of byte 8 (variant);
    // the other 14 bytes are random.
    let random = a[..6].iter().chain(&a[7..8]).chain(&a[9..]);
    let letter = match kind {
        OpKind::Pay => 'P',
        OpKind::Refund => 'R',
        OpKind::Cancel => 'C',
        OpKind::CloseShift => 'S',
    };
    std::iter::once(letter.to_string())
        .chain(random.map(|b| format!("{b:02x}")))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub masked_pan: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
}

/// Masks a card number down to its first six and last four digits. A full number never leaves
/// a provider: whatever a backend sends passes through here. Positions a backend already masked
/// (`*`, `X`, `x`, `•`) stay masked.
pub fn mask_pan(pan: &str) -> String {
    let chars: Vec<char> = pan
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '*' | 'X' | 'x' | '•'))
        .collect();
    let n = chars.len();
    if n < 10 {
        return "*".repeat(n.max(4));
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if (i < 6 || i >= n - 4) && c.is_ascii_digit() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// `text` with every run of 12 or more digits (a card number would be one) masked by
/// [`mask_pan`]: for text from outside (a backend's message, an operator's note) that goes into
/// the journal, the log or a cashier's message.
pub fn mask_card_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 12 {
            out.push_str(&mask_pan(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// A successful money movement as the backend reported it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Approval {
    /// `approved`, `refunded`, `cancelled`.
    pub status: String,
    pub provider_reference: Option<String>,
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    pub card: Option<Card>,
    /// What the backend says was charged, in minor units, when it reports a total of its own
    /// (a tip, cashback or a surcharge added at the terminal): the answer's `charged_amount`,
    /// beside `amount`, which stays what the POS asked for (`engine::answer`).
    pub charged_amount: Option<u64>,
    /// The operation's own id at its backend, when the answer carries it (`data.backend_id`):
    /// what the POS hands back as `primary_transaction.backend_id` to refund or cancel it.
    pub backend_id: Option<String>,
    /// Provider-specific fields kept in the transaction (never secrets, never a full PAN).
    pub extra: Map<String, Value>,
}

/// Why an operation did not succeed, in the API's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Stable snake_case reason: `declined`, `timeout`, `provider_unavailable`, ...
    pub reason: String,
    /// For the cashier.
    pub message: String,
}

impl Failure {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Approved(Approval),
    /// close_shift: the backend's shift summary.
    ShiftClosed(Value),
    /// Final: the backend refused or never did it; nothing was charged.
    Failed(Failure),
    /// The backend may or may not have done it: must be reconciled, never re-sent.
    Unknown(Failure),
    /// The backend has no record of the operation, and by the provider's own rules the request
    /// can no longer come alive there ("not found", "no such order", "result not found"). Not
    /// a verdict by itself: the engine settles it as `Failed` (nothing charged) only when no
    /// backend answer ever showed the transaction exists ([`Progress::evidence`]); after
    /// evidence it is a contradiction, and the outcome stays unknown.
    NotFound(Failure),
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// What every provider has (name, currency, timeout, status schedule); the four
    /// accessors below read it.
    fn common(&self) -> &Common;
    fn name(&self) -> &'static str {
        self.common().name
    }
    fn capabilities(&self) -> Capabilities {
        known(self.name()).expect("every provider is in the registry")
    }
    fn default_currency(&self) -> &str {
        &self.common().currency
    }
    /// How long the request path waits for `execute` before the outcome counts as unknown.
    fn timeout(&self) -> Duration {
        self.common().timeout
    }
    /// Intervals between status checks of an unknown outcome; the last one repeats.
    fn status_schedule(&self) -> &[Duration] {
        &self.common().schedule
    }
    /// Carries the operation out. Called at most once per request_id, ever.
    async fn execute(&self, op: &Operation) -> Outcome;
    /// Asks the backend what became of `op`. Never moves money.
    async fn status(&self, op: &Operation) -> Outcome;
    /// Whether a status check can ever find out what became of an operation of `kind` whose
    /// outcome is unknown. When it cannot (an IOT Pay refund: no refund query; a reader's
    /// shift close), the LIFE POS contract forbids `unknown_result_error` (it promises that
    /// get_result can settle it): the answer is then a `default_error` with reason
    /// `manual_check`, and the operation stays open in the journal for `posbridge resolve`.
    fn status_can_settle(&self, _kind: OpKind) -> bool {
        true
    }
    /// Bytes of SQLite page cache the provider's own store holds in this process (the `sim`
    /// backend's ledger); `None` for a provider that keeps no store here.
    fn store_cache_bytes(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_six_and_four() {
        assert_eq!(mask_pan("4111111111111111"), "411111******1111");
        assert_eq!(mask_pan("4111 1111 1111 1111"), "411111******1111");
        assert_eq!(mask_pan("1234"), "****");
        assert!(!mask_pan("5500005555555559").contains("0055555"));
        assert_eq!(mask_pan("************1111"), "************1111");
        assert_eq!(mask_pan("4111 11XX XXXX 1111"), "411111******1111");
    }

    #[test]
    fn backend_ids_are_new_each_time_and_fit_every_backend() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_backend_id(OpKind::Pay)).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 29, "{id}");
            assert!(id.starts_with('P'));
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
        assert!(new_backend_id(OpKind::Refund).starts_with('R'));
    }

    #[test]
    fn card_numbers_in_free_text_are_masked_and_short_numbers_kept() {
        assert_eq!(
            mask_card_numbers("card 4111111111111111, order 12345"),
            "card 411111******1111, order 12345"
        );
    }
}
