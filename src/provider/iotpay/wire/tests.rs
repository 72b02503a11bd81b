//! Request shapes, order numbers and the signature check of the IOT Pay wire format, without a
//! network. The readings of answers are tested in `../tests.rs`.

use serde_json::{json, Map, Value};

use super::*;
use crate::provider::sign::iotpay_sign;
use crate::provider::{OpKind, Primary};

const KEY: &str = "test-merchant-key";

fn merchant() -> Merchant {
    Merchant {
        mch_id: "10000701".into(),
        job_no: "cashier1".into(),
        channel_id: "CC_PAX".into(),
        key: Secret::new(KEY),
    }
}

fn op(kind: OpKind, request_id: &str, amount: u64) -> Operation {
    Operation {
        request_id: request_id.into(),
        kind,
        provider: "iotpay".into(),
        amount: Some(amount),
        currency: "CAD".into(),
        metadata: Default::default(),
        params: Map::new(),
        primary: None,
        created_at: "2026-11-23T00:00:00Z".into(),
        backend_id: String::new(),
        progress: Default::default(),
        stages: Default::default(),
    }
}

fn signed_answer(v: Value) -> Vec<u8> {
    let mut m = v.as_object().unwrap().clone();
    let sign = iotpay_sign(&m, KEY);
    m.insert("sign".into(), json!(sign));
    Value::Object(m).to_string().into_bytes()
}

#[test]
fn the_order_number_is_the_backend_id_and_legacy_only_without_one() {
    let mut o = op(OpKind::Pay, "sale-1", 100);
    o.backend_id = "P0123456789abcdef0123456789ab".into();
    assert_eq!(mch_order_no(&o), "P0123456789abcdef0123456789ab");
    assert_eq!(
        create_order(&merchant(), &o).unwrap()["mchOrderNo"],
        json!(o.backend_id)
    );
    // An intent written by an older version has no backend id: the number it was created under.
    o.backend_id.clear();
    assert_eq!(mch_order_no(&o), legacy_order_no("sale-1"));
    let mut r = op(OpKind::Refund, "refund-1", 100);
    assert_eq!(mch_refund_no(&r), legacy_refund_no("refund-1"));
    r.backend_id = "R0123456789abcdef0123456789ab".into();
    assert_eq!(mch_refund_no(&r), r.backend_id);
}

#[test]
fn legacy_numbers_are_deterministic_short_alphanumeric_and_distinct() {
    let long = "a".repeat(64);
    for id in ["1", "sale:2026-11-23.0001_x", long.as_str()] {
        let no = legacy_order_no(id);
        assert_eq!(no, legacy_order_no(id));
        assert_eq!(no.len(), 30, "{no}");
        assert!(no.starts_with('P') && no.chars().all(|c| c.is_ascii_alphanumeric()));
        let r = legacy_refund_no(id);
        assert!(r.starts_with('R') && r.len() == 30 && r[1..] != no[1..]);
    }
    assert_ne!(legacy_order_no("sale-1"), legacy_order_no("sale-2"));
}

#[test]
fn create_order_has_every_documented_field_and_a_valid_sign() {
    let mut o = op(OpKind::Pay, "sale-1", 1234);
    o.params.insert("device".into(), json!("PAX-A920-1"));
    let p = create_order(&merchant(), &o).unwrap();
    for (k, v) in [
        ("mchId", json!("10000701")),
        ("mchOrderNo", json!(legacy_order_no("sale-1"))),
        ("channelId", json!("CC_PAX")),
        ("currency", json!("CAD")),
        ("amount", json!(1234)),
        ("clientIp", json!(CLIENT_IP)),
        ("device", json!("PAX-A920-1")),
        ("notifyUrl", json!("http://localhost")),
        ("jobNo", json!("cashier1")),
    ] {
        assert_eq!(p[k], v, "{k}");
    }
    assert!(!p["subject"].as_str().unwrap().is_empty());
    assert!(!p["body"].as_str().unwrap().is_empty());
    let extra: Value = serde_json::from_str(p["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["requestId"], "sale-1");
    assert!(!p.contains_key("remarks"), "optional and not given");
    crate::provider::sign::iotpay_verify(&p, KEY).unwrap();
    // The form: exactly one field `params` with the whole JSON object, sign included.
    let [(name, value)] = form(&p);
    assert_eq!(name, "params");
    let back: Map<String, Value> = serde_json::from_str(&value).unwrap();
    assert_eq!(back, p);
    assert!(!value.contains(KEY));
}

#[test]
fn create_order_refuses_a_non_string_device() {
    let mut o = op(OpKind::Pay, "sale-1", 1);
    o.params.insert("device".into(), json!(7));
    let f = create_order(&merchant(), &o).unwrap_err();
    assert_eq!(f.reason, "invalid_request");
    assert!(f.message.contains("params.device"));
}

#[test]
fn query_and_refund_shapes() {
    let q = query_order(&merchant(), "P123");
    assert_eq!(
        q.keys().collect::<Vec<_>>(),
        ["mchId", "mchOrderNo", "sign"]
    );
    crate::provider::sign::iotpay_verify(&q, KEY).unwrap();

    let mut r = op(OpKind::Refund, "refund-1", 400);
    assert_eq!(
        refund_order(&merchant(), &r).unwrap_err().reason,
        "invalid_request"
    );
    r.primary = Some(Primary {
        request_id: Some("sale-1".into()),
        provider: "iotpay".into(),
        provider_reference: Some("IOT0000000001".into()),
        amount: 1000,
        currency: Some("CAD".into()),
        backend_id: None,
        pay_notes: Default::default(),
    });
    let p = refund_order(&merchant(), &r).unwrap();
    assert_eq!(p["mchRefundNo"], json!(legacy_refund_no("refund-1")));
    assert_eq!(p["payOrderId"], "IOT0000000001");
    assert_eq!(p["refundAmount"], 400);
    assert_eq!(p["loginName"], "cashier1");
    assert_eq!(p["clientIp"], CLIENT_IP);
    crate::provider::sign::iotpay_verify(&p, KEY).unwrap();
}

#[test]
fn over_long_pos_params_are_refused_before_anything_is_sent() {
    let mut o = op(OpKind::Pay, "sale-1", 1);
    o.params.insert("device".into(), json!("d".repeat(65)));
    let f = create_order(&merchant(), &o).unwrap_err();
    assert!(
        f.message.contains("params.device") && f.message.contains("64"),
        "{f:?}"
    );
}

#[test]
fn only_a_verified_answer_is_read() {
    let key = Secret::new(KEY);
    let refusal = json!({"retCode": "FAIL", "resCode": "FAIL", "retMsg": "signature fail"});
    assert!(check(&signed_answer(refusal.clone()), &key).is_ok());
    // The document lists `sign` as required in every answer: an unsigned refusal is not
    // IOT Pay's word either (the old client believed it).
    assert!(matches!(
        check(refusal.to_string().as_bytes(), &key),
        Err(Problem::Signature(_))
    ));
    assert!(matches!(
        check(&signed_answer(refusal), &Secret::new("other-key")),
        Err(Problem::Signature(_))
    ));
    assert_eq!(check(b"<html>", &key), Err(Problem::Garbage));
}
