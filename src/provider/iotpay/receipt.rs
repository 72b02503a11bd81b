//! A paid IOT Pay order as posbridge reports it: the receipt the document demands ("a strict
//! specification on the format and content on the receipt"), built from the card data the
//! terminal returns in payOrder.extra, and what was actually charged (tip, cashback and
//! surcharge included). It must never let a full card number or an expiry date out: `cardNum`
//! passes through `mask_pan`, `expireDate` is left out, and unknown keys are never copied.

use serde_json::{json, Map, Value};

use super::answer::{as_text, integer, plain, text};
use crate::provider::{mask_pan, Approval, Card};

/// The keys of payOrder.extra a receipt uses, in the document's order ("Useful card
/// transaction data returned in 'extra' field"), kept under IOT Pay's own names so a receipt
/// can follow IOT Pay's specification. `expireDate` is deliberately absent.
pub const RECEIPT_KEYS: &[&str] = &[
    "cardType",
    "cardNum",
    "emvLabel",
    "emvAID",
    "emvTVR",
    "emvTSI",
    "emvTC",
    "termNum",
    "bankTermNum",
    "termInvoiceNum",
    "seqNum",
    "authNum",
    "batchNum",
    "trxMethod",
    "accountType",
    "receiptDisp",
    "cashbackAmount",
    "timeStamp",
    "surchargeAmount",
    "langCode",
    "trxDate",
    "trxTime",
    "cvmResults",
    "trxCode",
];

/// `extra` of an order: a JSON string (as documented) or an object; anything else is empty.
pub fn order_extra(order: &Map<String, Value>) -> Map<String, Value> {
    match order.get("extra") {
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// The receipt: every [`RECEIPT_KEYS`] value the terminal filled in (blank ones left out),
/// the card number masked, plus the order's payOrderId, mchOrderNo, currency and tip.
pub fn receipt(order: &Map<String, Value>, extra: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in RECEIPT_KEYS {
        let Some(value) = extra.get(*key).and_then(as_text) else {
            continue;
        };
        let value = plain(&value);
        if value.is_empty() {
            continue;
        }
        let value = if *key == "cardNum" {
            mask_pan(&value)
        } else {
            value
        };
        out.insert((*key).into(), json!(value));
    }
    for key in ["payOrderId", "mchOrderNo", "currency"] {
        if let Some(v) = order.get(key).and_then(as_text) {
            out.insert(key.into(), json!(plain(&v)));
        }
    }
    if let Some(tip) = order.get("tip").and_then(integer).filter(|t| *t > 0) {
        out.insert("tip".into(), json!(tip));
    }
    out
}

/// What the card was charged, in minor units, and of what.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Charged {
    /// payOrder.amount: the sale itself.
    pub amount: u64,
    pub tip: u64,
    pub cashback: u64,
    pub surcharge: u64,
}

impl Charged {
    pub fn total(&self) -> u64 {
        self.amount + self.tip + self.cashback + self.surcharge
    }
}

/// The charge: payOrder.amount and payOrder.tip (cents, as the document's amounts), plus
/// extra.cashbackAmount and extra.surchargeAmount (strings the document only shows blank; a
/// value with a decimal point is read as dollars and cents, one without as cents). `None`
/// when payOrder.amount is missing or unreadable.
pub fn charged(order: &Map<String, Value>, extra: &Map<String, Value>) -> Option<Charged> {
    let cents_of = |v: Option<&Value>| -> u64 {
        v.and_then(integer)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    };
    let amount = order
        .get("amount")
        .and_then(integer)
        .and_then(|n| u64::try_from(n).ok())?;
    Some(Charged {
        amount,
        tip: cents_of(order.get("tip")),
        cashback: text(extra, "cashbackAmount").and_then(cents).unwrap_or(0),
        surcharge: text(extra, "surchargeAmount").and_then(cents).unwrap_or(0),
    })
}

/// "12.50" -> 1250, "1250" -> 1250, "0.5" -> 50; anything else -> None.
pub fn cents(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.split_once('.') {
        None => s.parse().ok(),
        Some((whole, frac)) if frac.len() <= 2 && frac.chars().all(|c| c.is_ascii_digit()) => {
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            let frac: u64 = format!("{frac:0<2}").parse().ok()?;
            whole.checked_mul(100)?.checked_add(frac)
        }
        Some(_) => None,
    }
}

/// The approval of a paid order: payOrderId, authNum, the masked card and its scheme, the
/// receipt, and the charge (the answer's `charged_amount`, see `engine::answer`).
pub fn approval(order: &Map<String, Value>, extra: &Map<String, Value>) -> Approval {
    let card = text(extra, "cardNum").map(|pan| Card {
        masked_pan: mask_pan(pan),
        scheme: text(extra, "emvLabel")
            .or(text(extra, "cardType"))
            .map(plain),
    });
    let mut kept = Map::new();
    if let Some(no) = text(order, "mchOrderNo") {
        kept.insert("mch_order_no".into(), json!(no));
    }
    kept.insert("receipt".into(), Value::Object(receipt(order, extra)));
    let charged_amount = charged(order, extra).map(|c| {
        for (key, v) in [
            ("tip", c.tip),
            ("cashback", c.cashback),
            ("surcharge", c.surcharge),
        ] {
            if v > 0 {
                kept.insert(key.into(), json!(v));
            }
        }
        c.total()
    });
    Approval {
        status: "approved".into(),
        provider_reference: order.get("payOrderId").and_then(as_text),
        rrn: None,
        approval_code: text(extra, "authNum").map(plain),
        card,
        charged_amount,
        extra: kept,
    }
}
