//! What the IOT Pay replica accepts, written from the document's parameter table ("Unified
//! Create Order Interface", channel CC_PAX) and, for query_order and refund_order which the
//! document does not describe, from the assumptions in docs/providers.md, "What the documents leave open". Pure: a
//! request's parameters in, a refusal message out. It must not look at posbridge's client.

use serde_json::{Map, Value};

/// The type a field must have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string of at most this many characters (the document's `String(n)`).
    Text(usize),
    /// The document's `int`: a JSON integer, or a string of digits (its request sample sends
    /// `"amount": "1"`), above zero.
    Int,
}

/// One row of a parameter table: name, required, type.
pub type Field = (&'static str, bool, Kind);

/// create_order, as the document's table lists it. `source` and `tip` appear only in its
/// request sample: accepted, not required.
pub const CREATE_ORDER: &[Field] = &[
    ("mchId", true, Kind::Text(30)),
    ("mchOrderNo", true, Kind::Text(30)),
    ("channelId", true, Kind::Text(24)),
    ("currency", true, Kind::Text(3)),
    ("amount", true, Kind::Int),
    ("clientIp", true, Kind::Text(32)),
    ("device", false, Kind::Text(64)),
    ("notifyUrl", true, Kind::Text(200)),
    ("subject", true, Kind::Text(64)),
    ("body", true, Kind::Text(255)),
    ("extra", true, Kind::Text(512)),
    ("jobNo", true, Kind::Text(50)),
    ("remarks", false, Kind::Text(200)),
    ("sign", true, Kind::Text(32)),
    ("source", false, Kind::Text(64)),
];

/// query_order (assumed: mchId, and mchOrderNo or payOrderId, sign).
pub const QUERY_ORDER: &[Field] = &[
    ("mchId", true, Kind::Text(30)),
    ("mchOrderNo", false, Kind::Text(30)),
    ("payOrderId", false, Kind::Text(30)),
    ("sign", true, Kind::Text(32)),
];

/// refund_order (assumed from IOT Pay's unified API: mchId, mchRefundNo, payOrderId,
/// refundAmount, clientIp, loginName, sign).
pub const REFUND_ORDER: &[Field] = &[
    ("mchId", true, Kind::Text(30)),
    ("mchRefundNo", true, Kind::Text(30)),
    ("payOrderId", true, Kind::Text(30)),
    ("refundAmount", true, Kind::Int),
    ("clientIp", true, Kind::Text(32)),
    ("loginName", true, Kind::Text(50)),
    ("sign", true, Kind::Text(32)),
];

/// Checks `p` against `table`: every required field present and not empty ("must have a
/// value"), every field of its type and length. Fields not in the table are let through (they
/// are signed over like the rest).
pub fn fields(p: &Map<String, Value>, table: &[Field]) -> Result<(), String> {
    for (name, required, kind) in table {
        let value = match p.get(*name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(v),
        };
        let Some(value) = value else {
            if *required {
                return Err(format!("{name} is required and must have a value"));
            }
            continue;
        };
        match (kind, value) {
            (Kind::Text(max), Value::String(s)) if s.chars().count() <= *max => {}
            (Kind::Text(max), Value::String(_)) => {
                return Err(format!("{name} is longer than {max} characters"))
            }
            (Kind::Text(_), _) => return Err(format!("{name} must be a string")),
            (Kind::Int, v) => match int(v) {
                Some(n) if n > 0 => {}
                _ => return Err(format!("{name} must be a positive integer (cents)")),
            },
        }
    }
    Ok(())
}

/// What create_order adds to the table: the channel of this integration, the notifyUrl the
/// document prescribes for it, a 3-letter currency, and an order number of letters and digits.
pub fn create_rules(p: &Map<String, Value>) -> Result<(), String> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
    if s("channelId") != "CC_PAX" {
        return Err(format!(
            "channelId {:?} is not supported here: the POS semi-integration is CC_PAX",
            s("channelId")
        ));
    }
    if s("notifyUrl") != "http://localhost" {
        return Err("notifyUrl must be 'http://localhost' when channelId is CC_PAX".into());
    }
    if !(s("currency").len() == 3 && s("currency").chars().all(|c| c.is_ascii_uppercase())) {
        return Err("currency must be 3 capital letters, e.g. CAD".into());
    }
    if !s("mchOrderNo").chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("mchOrderNo must be letters and digits".into());
    }
    Ok(())
}

/// An integer field: a JSON integer or a string of digits.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// The document's sign: 32 hexadecimal digits (upper case in its samples).
pub fn sign_shape(p: &Map<String, Value>) -> Result<(), String> {
    match p.get("sign").and_then(Value::as_str) {
        Some(s) if s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()) => Ok(()),
        _ => Err("signature fail".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The document's own request sample, as printed (amount as a string, `source`, `tip`).
    pub fn document_sample() -> Map<String, Value> {
        json!({
          "amount": "1", "body": "IOTPay", "channelId": "CC_PAX", "clientIp": "192.168.50.186",
          "currency": "CAD", "device": "V1-B25",
          "extra": "{\"pos_flag\":\"yes\",\"productId\":\"10000576_null\"}", "jobNo": "testpax",
          "mchId": "10000576", "mchOrderNo": "1632349674730", "notifyUrl": "http://localhost",
          "source": "pos_2.1.54", "subject": "IOTPay", "tip": "0",
          "sign": "AE51912B1FB627A1820BAF34DC89EF10"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn the_documents_request_sample_passes() {
        let p = document_sample();
        fields(&p, CREATE_ORDER).unwrap();
        create_rules(&p).unwrap();
        sign_shape(&p).unwrap();
    }

    #[test]
    fn what_the_document_refuses_is_refused() {
        let cases: &[(&str, Value, &str)] = &[
            ("mchOrderNo", json!("1".repeat(31)), "longer than 30"),
            ("extra", json!(""), "extra is required"),
            ("subject", Value::Null, "subject is required"),
            ("amount", json!("1.5"), "positive integer"),
            ("amount", json!(0), "positive integer"),
            ("mchId", json!(10000576), "must be a string"),
            ("channelId", json!("WX_NATIVE"), "CC_PAX"),
            (
                "notifyUrl",
                json!("https://shop.example/notify"),
                "http://localhost",
            ),
            ("currency", json!("cad"), "3 capital letters"),
            ("mchOrderNo", json!("ORDER-1"), "letters and digits"),
        ];
        for (key, value, expect) in cases {
            let mut p = document_sample();
            p.insert((*key).into(), value.clone());
            let err = fields(&p, CREATE_ORDER)
                .and_then(|()| create_rules(&p))
                .unwrap_err();
            assert!(err.contains(expect), "{key}={value}: {err}");
        }
        let mut p = document_sample();
        p.insert("sign".into(), json!("not-a-sign"));
        assert!(sign_shape(&p).is_err());
    }
}
