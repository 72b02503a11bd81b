//! IOT Pay MD5 `sign`: the canonical `k=v&k=v` string, signing a request's parameter map and
//! verifying a response's `sign`. It must not build the `params` form field or choose parameters,
//! and must not expose the string with `&key=` appended (it contains the merchant key).

use md5::{Digest, Md5};
use serde_json::{Map, Value};

use super::{ct_eq, SignError};

/// The string IOT Pay hashes, without the trailing `&key=...`: every parameter except `sign`,
/// empty values dropped, sorted by name in byte order (so `Z` sorts before `a`), joined as
/// `k=v&k=v` with raw (not URL-encoded) values.
///
/// Rendering of values (IOT Pay's documentation only shows strings, so this is our reading):
/// strings without quotes; numbers and booleans as their JSON text (`100`, `1.5`, `true`);
/// nested objects/arrays as compact JSON (`{"a":1}`), keys in the order received (posbridge
/// enables serde_json's `preserve_order`). "Empty" means `null` or `""` only; `" "`, `0`,
/// `false`, `{}` and `[]` are kept.
pub fn iotpay_canonical(params: &Map<String, Value>) -> String {
    let mut fields: Vec<(&str, String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some((k.as_str(), s.clone())),
            other => Some((k.as_str(), other.to_string())),
        })
        .collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let pairs: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// IOT Pay `sign`: upper-case hex `MD5(canonical + "&key=" + key)`. Any `sign` already in
/// `params` is ignored, so a request map can be signed in place and re-signed.
pub fn iotpay_sign(params: &Map<String, Value>, key: &str) -> String {
    let mut h = Md5::new();
    h.update(iotpay_canonical(params).as_bytes());
    h.update(b"&key=");
    h.update(key.as_bytes());
    hex::encode_upper(h.finalize())
}

/// Verifies a response's `sign` over whatever other fields arrived. The received value is
/// upper-cased before the constant-time comparison.
pub fn iotpay_verify(response: &Map<String, Value>, key: &str) -> Result<(), SignError> {
    let received = match response.get("sign") {
        Some(Value::String(s)) if !s.is_empty() => s.to_ascii_uppercase(),
        _ => return Err(SignError::MissingSignature("sign")),
    };
    if ct_eq(received.as_bytes(), iotpay_sign(response, key).as_bytes()) {
        Ok(())
    } else {
        Err(SignError::SignatureMismatch("sign"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().expect("test input is an object").clone()
    }

    #[test]
    fn iotpay_sign_matches_hand_computed_md5() {
        // printf '%s' 'Zeta=z&amount=100&channelId=CC_PAX&currency=CAD&extra={"cardType":"VISA","n":[1,2]}&mchId=10000701&mchOrderNo=ORD-1&paid=true&rate=1.5&key=abc123' | md5sum
        // -> 118b79bb1283e3a00fc09b8ed8b70630
        let params = map(json!({
            "mchId": "10000701", "mchOrderNo": "ORD-1", "amount": 100, "currency": "CAD",
            "channelId": "CC_PAX", "extra": {"cardType": "VISA", "n": [1, 2]}, "paid": true,
            "rate": 1.5, "remarks": "", "device": null, "Zeta": "z", "sign": "IGNORED"
        }));
        assert_eq!(
            iotpay_sign(&params, "abc123"),
            "118B79BB1283E3A00FC09B8ED8B70630"
        );
    }

    #[test]
    fn iotpay_canonical_drops_empty_excludes_sign_and_sorts_bytewise() {
        let params =
            map(json!({"b": "2", "a": "", "B": "1", "sign": "X", "c": null, "_": 0, "d": " "}));
        // Byte order: 'B' (0x42) < '_' (0x5F) < 'b' (0x62); "", null and sign are gone.
        assert_eq!(iotpay_canonical(&params), "B=1&_=0&b=2&d= ");
        let small =
            map(json!({"mchOrderNo": "ORD-1", "mchId": "10000701", "sign": "S", "clientIp": ""}));
        // printf '%s' 'mchId=10000701&mchOrderNo=ORD-1&key=abc123' | md5sum
        assert_eq!(
            iotpay_sign(&small, "abc123"),
            "7B78E1C3F6049179CDF6E44D2D9345A0"
        );
    }

    #[test]
    fn iotpay_verify_checks_presence_and_value() {
        let mut resp = map(json!({"retCode": "SUCCESS", "payOrder": {"status": 2, "amount": 100}}));
        assert_eq!(
            iotpay_verify(&resp, "k"),
            Err(SignError::MissingSignature("sign"))
        );
        resp.insert("sign".into(), Value::String(String::new()));
        assert_eq!(
            iotpay_verify(&resp, "k"),
            Err(SignError::MissingSignature("sign"))
        );
        let good = iotpay_sign(&resp, "k");
        resp.insert("sign".into(), Value::String(good.to_lowercase()));
        assert_eq!(iotpay_verify(&resp, "k"), Ok(()));
        assert_eq!(
            iotpay_verify(&resp, "other"),
            Err(SignError::SignatureMismatch("sign"))
        );
        resp.insert("retCode".into(), Value::String("FAIL".into()));
        assert_eq!(
            iotpay_verify(&resp, "k"),
            Err(SignError::SignatureMismatch("sign"))
        );
    }

    #[test]
    fn errors_do_not_leak_keys_or_expected_signatures() {
        let resp = map(json!({"a": "1", "sign": "00"}));
        let err = iotpay_verify(&resp, "s3cret-key").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("s3cret-key") && !shown.contains(&iotpay_sign(&resp, "s3cret-key"))
        );
    }
}
