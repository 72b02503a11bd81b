//! Reading single values out of IOT Pay's JSON, as the document shows them: text that may be
//! empty, numbers that may come as strings, backend words made fit for a cashier or a receipt.
//! Shared by the answer reading (`answer.rs`) and the receipt (`receipt.rs`); it must not
//! decide what an answer means.

use serde_json::{Map, Value};

pub(super) fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A status or amount that may come as a number or a numeric string (the document's request
/// sample sends `"amount": "1"`).
pub(super) fn integer(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Backend text for a cashier or a receipt: printable, bounded.
pub(super) fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}
