//! A paid IOT Pay order as posbridge reports it: the receipt the document demands ("a strict
//! specification on the format and content on the receipt"), built from the card data the
//! terminal returns in payOrder.extra, and what IOT Pay says was charged (amount and tip;
//! cashback and surcharge are kept as sent, their unit being unknown). It must never let a full card number or an expiry date out: `cardNum`
//! passes through `mask_pan`, `expireDate` is left out, and unknown keys are never copied.

use serde_json::{json, Map, Value};

use super::fields::{as_text, integer, plain, text};
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

/// What IOT Pay says was charged, in minor units: payOrder.amount (the document: "payment
/// amount in cents") plus payOrder.tip (an integer beside it, read in the same unit: the
/// document's request sample sends `"tip": "0"` beside `"amount": "1"`; docs/providers.md,
/// "What the documents leave open"). `None` when payOrder.amount is missing or unreadable,
/// or when cashback or a surcharge was added: extra.cashbackAmount and extra.surchargeAmount
/// are strings the document only ever shows blank, so their unit is unknown and no total
/// that includes them can be given (they are kept as sent, see [`approval`]).
pub fn charged(order: &Map<String, Value>, extra: &Map<String, Value>) -> Option<u64> {
    let amount = order
        .get("amount")
        .and_then(integer)
        .and_then(|n| u64::try_from(n).ok())?;
    let unknown_unit = ["cashbackAmount", "surchargeAmount"]
        .iter()
        .any(|k| text(extra, k).is_some_and(|v| !is_zero(v)));
    if unknown_unit {
        return None;
    }
    amount.checked_add(tip(order))
}

/// payOrder.tip, when it is a positive integer (else 0).
fn tip(order: &Map<String, Value>) -> u64 {
    order
        .get("tip")
        .and_then(integer)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// Whether a value of unknown unit is zero whatever the unit: blank, or only zeros and at
/// most one decimal point ("0", "0.00", ".0").
pub fn is_zero(v: &str) -> bool {
    let v = v.trim();
    v.chars().all(|c| c == '0' || c == '.') && v.matches('.').count() <= 1
}

/// The approval of a paid order: payOrderId, authNum, the masked card and its scheme, the
/// receipt, the tip, cashback and surcharge as IOT Pay sent them (`cashback_amount_raw`,
/// `surcharge_amount_raw`: strings, unit unknown, never converted), and the charge (the
/// answer's `charged_amount`, see [`charged`] and `engine::answer`).
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
    if tip(order) > 0 {
        kept.insert("tip".into(), json!(tip(order)));
    }
    for (key, name) in [
        ("cashbackAmount", "cashback_amount_raw"),
        ("surchargeAmount", "surcharge_amount_raw"),
    ] {
        if let Some(v) = text(extra, key).map(plain).filter(|v| !v.is_empty()) {
            kept.insert(name.into(), json!(v));
        }
    }
    Approval {
        status: "approved".into(),
        provider_reference: order.get("payOrderId").and_then(as_text),
        rrn: None,
        approval_code: text(extra, "authNum").map(plain),
        card,
        charged_amount: charged(order, extra),
        backend_id: None,
        extra: kept,
    }
}
