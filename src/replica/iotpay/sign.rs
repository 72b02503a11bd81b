//! The replica's own IOT Pay `sign`, written from the rule as IOT Pay's public clients have it
//! (../shared/providers.md; document 002 shows only that `sign` is 32 upper-case hex digits):
//! every parameter except `sign`, those with an empty value dropped, sorted by name in byte
//! order, joined `k=v&k=v` with raw values, then `&key=<merchant key>`, MD5, upper-case hex.
//! It is deliberately not the client's code (`crate::provider::sign`), so that the two can
//! disagree in a test. "Empty" is a missing value: JSON null or "". Numbers render as their
//! JSON text, nested objects as compact JSON. It must not log or keep the key.

use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// `MD5(canonical + "&key=" + key)` in upper-case hex.
pub fn make(params: &Map<String, Value>, key: &str) -> String {
    let mut kept: Vec<(String, String)> = Vec::new();
    for (name, value) in params {
        if name == "sign" {
            continue;
        }
        let rendered = match value {
            Value::Null => continue,
            Value::String(s) if s.is_empty() => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        kept.push((name.clone(), rendered));
    }
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = kept
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str("&key=");
    text.push_str(key);
    hex::encode_upper(Md5::digest(text.as_bytes()))
}

/// Whether `params` carry a `sign` that [`make`] agrees with (case-insensitive hex).
pub fn verifies(params: &Map<String, Value>, key: &str) -> bool {
    match params.get("sign").and_then(Value::as_str) {
        Some(sign) => sign.eq_ignore_ascii_case(&make(params, key)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_values_are_left_out_and_names_sorted_bytewise() {
        // printf '%s' 'mchId=10000701&mchOrderNo=ORD-1&key=abc123' | md5sum
        let p = json!({"mchOrderNo": "ORD-1", "mchId": "10000701", "jobNo": "", "x": null});
        let p = p.as_object().unwrap();
        assert_eq!(make(p, "abc123"), "7B78E1C3F6049179CDF6E44D2D9345A0");
    }
}
