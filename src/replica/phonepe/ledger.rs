//! The PhonePe replica's state: every transaction it accepted, how it evolves with time, and
//! how many money-moving calls each transaction id received. Pure data and rules (the clock is
//! passed in); the HTTP side is in `mod.rs`. It must not know about signatures or faults.
//!
//! Test amounts (a pay's amount in paise): ending in 51 -> FAILED (declined) once the customer
//! "pays" (`pay_after_ms`); ending in 77 -> stays PENDING until its handover/expiry window ends,
//! then EXPIRED; anything else -> SUCCESS with a referenceNumber and a card (last four digits
//! and network only). Refunds stay PENDING for `refund_after_ms`, then SUCCESS.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Payment,
    Refund,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Txn {
    pub kind: Kind,
    pub merchant_id: String,
    pub phonepe_id: String,
    pub amount: u64,
    /// PENDING, SUCCESS, FAILED, EXPIRED.
    pub status: String,
    /// The status answer's code: PAYMENT_PENDING, PAYMENT_SUCCESS, PAYMENT_DECLINED, ...
    pub code: String,
    pub created_ms: u64,
    pub settle_at_ms: u64,
    pub expires_at_ms: u64,
    #[serde(default)]
    pub original: Option<String>,
    #[serde(default)]
    pub reference_number: Option<String>,
    #[serde(default)]
    pub card: Option<Value>,
    #[serde(default)]
    pub provider_id: Option<String>,
    /// The decoded request payload, as received (tests check its shape).
    pub payload: Value,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Ledger {
    /// By the merchant's transaction id.
    pub transactions: BTreeMap<String, Txn>,
    /// Money-moving calls (init, backToSource) per transaction id, duplicates included.
    pub calls: BTreeMap<String, u64>,
    /// Cancel calls per transaction id.
    pub cancels: BTreeMap<String, u64>,
    /// Status calls per payment id, counted while `status_blind` may hide it (`blind.rs`).
    #[serde(default)]
    pub status_checks: BTreeMap<String, u64>,
}

pub fn now_ms() -> u64 {
    crate::clock::unix_ms()
}

fn digits(seed: &str, salt: &str, n: usize) -> String {
    let h = Sha256::digest(format!("{salt}:{seed}").as_bytes());
    h.iter()
        .cycle()
        .take(n)
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// PhonePe's own id for a transaction (stable, so restarts agree).
pub fn phonepe_id(merchant_txn: &str) -> String {
    format!("T{}", digits(merchant_txn, "id", 21))
}

impl Txn {
    pub fn new(kind: Kind, merchant_id: &str, id: &str, amount: u64, now: u64) -> Txn {
        Txn {
            kind,
            merchant_id: merchant_id.to_owned(),
            phonepe_id: phonepe_id(id),
            amount,
            status: "PENDING".into(),
            code: "PAYMENT_PENDING".into(),
            created_ms: now,
            settle_at_ms: now,
            expires_at_ms: u64::MAX,
            original: None,
            reference_number: None,
            card: None,
            provider_id: None,
            payload: Value::Null,
        }
    }

    /// Moves a pending transaction on, as time has passed. Returns whether it changed.
    pub fn advance(&mut self, id: &str, now: u64) -> bool {
        if self.status != "PENDING" {
            return false;
        }
        let (status, code) = match self.kind {
            Kind::Payment if self.amount % 100 == 77 => {
                if now < self.expires_at_ms {
                    return false;
                }
                ("EXPIRED", "PAYMENT_EXPIRED")
            }
            _ if now < self.settle_at_ms => return false,
            Kind::Payment if self.amount % 100 == 51 => ("FAILED", "PAYMENT_DECLINED"),
            Kind::Payment => {
                self.reference_number = Some(digits(id, "rrn", 12));
                let network = ["VISA", "MASTERCARD", "RUPAY"][self.amount as usize % 3];
                self.card = Some(json!({"type": "CARD", "cardNetwork": network,
                    "last4Digits": digits(id, "card", 4)}));
                ("SUCCESS", "PAYMENT_SUCCESS")
            }
            Kind::Refund => {
                self.reference_number = Some(digits(id, "rrn", 12));
                ("SUCCESS", "PAYMENT_SUCCESS")
            }
        };
        self.status = status.into();
        self.code = code.into();
        true
    }

    /// The `data` of a status answer; `amount` is 0 unless `real_amount` (PhonePe's public
    /// status samples answer `amount: 0`).
    pub fn data(&self, id: &str, real_amount: bool) -> Value {
        let mut d = json!({
            "merchantId": self.merchant_id,
            "transactionId": id,
            "phonepeTransactionId": self.phonepe_id,
            "amount": if real_amount { self.amount } else { 0 },
            "status": self.status,
        });
        let m = d.as_object_mut().expect("object");
        if let Some(r) = &self.reference_number {
            m.insert("referenceNumber".into(), json!(r));
        }
        if let Some(c) = &self.card {
            m.insert("paymentMode".into(), json!("CARD"));
            m.insert("paymentInstruments".into(), json!([c]));
        }
        if let Some(o) = &self.original {
            m.insert("originalTransactionId".into(), json!(o));
        }
        d
    }
}

impl Ledger {
    /// Advances every pending transaction to `now`.
    pub fn advance_all(&mut self, now: u64) {
        for (id, t) in self.transactions.iter_mut() {
            t.advance(id, now);
        }
    }

    /// The merchant's id of the transaction named `id` (ours or PhonePe's).
    pub fn find(&self, id: &str) -> Option<String> {
        if self.transactions.contains_key(id) {
            return Some(id.to_owned());
        }
        self.transactions
            .iter()
            .find(|(_, t)| t.phonepe_id == id)
            .map(|(k, _)| k.clone())
    }

    /// Why a refund of `amount` against `original` cannot be taken now, if it cannot.
    pub fn refund_refusal(&self, original: &str, amount: u64) -> Option<(&'static str, String)> {
        let Some(pay) = self
            .transactions
            .get(original)
            .filter(|t| t.kind == Kind::Payment)
        else {
            return Some(("INVALID_TRANSACTION_ID", format!("no payment {original}")));
        };
        if pay.status != "SUCCESS" {
            return Some((
                "INVALID_TRANSACTION_ID",
                format!("payment {original} is not paid"),
            ));
        }
        let refunds = self
            .transactions
            .values()
            .filter(|t| t.kind == Kind::Refund && t.original.as_deref() == Some(original));
        let mut used = 0;
        for r in refunds {
            if r.status == "PENDING" {
                return Some((
                    "EXCESS_REFUND_AMOUNT",
                    "a refund of this payment is still pending".into(),
                ));
            }
            if r.status == "SUCCESS" {
                used += r.amount;
            }
        }
        if amount > pay.amount - used {
            return Some((
                "EXCESS_REFUND_AMOUNT",
                format!("only {} left to refund", pay.amount - used),
            ));
        }
        None
    }
}
