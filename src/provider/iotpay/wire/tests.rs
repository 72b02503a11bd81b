//! Request shapes and answer readings of the IOT Pay wire format, checked without a network.

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
    }
}

fn signed_answer(v: Value) -> Vec<u8> {
    let mut m = v.as_object().unwrap().clone();
    let sign = iotpay_sign(&m, KEY);
    m.insert("sign".into(), json!(sign));
    Value::Object(m).to_string().into_bytes()
}

fn paid_order(status: u64) -> Value {
    json!({"retCode": "SUCCESS", "resCode": "SUCCESS", "payOrder": {
        "payOrderId": "IOT0000000001", "mchOrderNo": "P1", "status": status, "amount": 1000,
        "extra": json!({"cardType": "VISA", "cardNum": "4111111111111111", "authNum": "A1B2C3",
                        "receiptDisp": "APPROVED", "trxCode": "00"}).to_string()}})
}

#[test]
fn order_numbers_are_deterministic_short_alphanumeric_and_distinct() {
    let long = "a".repeat(64);
    for id in ["1", "sale:2026-11-23.0001_x", long.as_str()] {
        let no = order_no(id);
        assert_eq!(no, order_no(id));
        assert_eq!(no.len(), 30, "{no}");
        assert!(no.starts_with('P') && no.chars().all(|c| c.is_ascii_alphanumeric()));
        let r = refund_no(id);
        assert!(r.starts_with('R') && r.len() == 30 && r[1..] != no[1..]);
    }
    assert_ne!(order_no("sale-1"), order_no("sale-2"));
}

#[test]
fn create_order_has_every_documented_field_and_a_valid_sign() {
    let mut o = op(OpKind::Pay, "sale-1", 1234);
    o.params.insert("device".into(), json!("PAX-A920-1"));
    let p = create_order(&merchant(), &o).unwrap();
    for (k, v) in [
        ("mchId", json!("10000701")),
        ("mchOrderNo", json!(order_no("sale-1"))),
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
    });
    let p = refund_order(&merchant(), &r).unwrap();
    assert_eq!(p["mchRefundNo"], json!(refund_no("refund-1")));
    assert_eq!(p["payOrderId"], "IOT0000000001");
    assert_eq!(p["refundAmount"], 400);
    assert_eq!(p["loginName"], "cashier1");
    assert_eq!(p["clientIp"], CLIENT_IP);
    crate::provider::sign::iotpay_verify(&p, KEY).unwrap();
    // Re-issuing builds the very same request.
    assert_eq!(refund_order(&merchant(), &r).unwrap(), p);
}

#[test]
fn a_paid_answer_is_approved_with_a_masked_card() {
    for status in [2, 3] {
        let map = check(&signed_answer(paid_order(status)), &Secret::new(KEY)).unwrap();
        let PayState::Paid(a) = pay_state(&map) else {
            panic!("status {status} is paid")
        };
        assert_eq!(a.provider_reference.as_deref(), Some("IOT0000000001"));
        assert_eq!(a.approval_code.as_deref(), Some("A1B2C3"));
        let card = a.card.unwrap();
        assert_eq!(card.masked_pan, "411111******1111");
        assert_eq!(card.scheme.as_deref(), Some("VISA"));
    }
}

#[test]
fn statuses_map_to_final_or_pending() {
    let key = Secret::new(KEY);
    let with_status = |s: u64, receipt: &str| {
        let mut v = paid_order(s);
        v["payOrder"]["extra"] = json!(json!({"receiptDisp": receipt}).to_string());
        pay_state(&check(&signed_answer(v), &key).unwrap())
    };
    let PayState::Failed(f) = with_status(4, "DECLINED BY ISSUER") else {
        panic!("4 is final")
    };
    assert_eq!(f.reason, "declined");
    assert!(f.message.contains("DECLINED BY ISSUER"), "{}", f.message);
    let PayState::Failed(f) = with_status(9, "USER CANCEL") else {
        panic!("9 is final")
    };
    assert_eq!(f.reason, "cancelled");
    assert!(matches!(with_status(0, ""), PayState::Pending(_)));
    assert!(matches!(with_status(1, ""), PayState::Pending(_)));
    // Paid status but a failed business code: not believed, asked again.
    let mut v = paid_order(2);
    v["resCode"] = json!("FAIL");
    assert!(matches!(
        pay_state(&check(&signed_answer(v), &key).unwrap()),
        PayState::Pending(_)
    ));
    let nf = json!({"retCode": "SUCCESS", "resCode": "FAIL", "errCode": "ORDER_NOT_EXIST",
                    "errDes": "order not exist"});
    assert_eq!(
        pay_state(&check(&signed_answer(nf), &key).unwrap()),
        PayState::NotFound
    );
}

#[test]
fn unsigned_forged_and_garbage_answers_are_never_believed() {
    let key = Secret::new(KEY);
    let unsigned = paid_order(2).to_string().into_bytes();
    assert!(matches!(check(&unsigned, &key), Err(Problem::Signature(_))));
    let forged = signed_answer(paid_order(2));
    assert!(matches!(
        check(&forged, &Secret::new("other-key")),
        Err(Problem::Signature(_))
    ));
    assert_eq!(check(b"<html>", &key), Err(Problem::Garbage));
    // An unsigned refusal is believed as a refusal (IOT Pay does not sign them).
    let refused = json!({"retCode": "FAIL", "retMsg": "sign error"}).to_string();
    let Err(Problem::Rejected(msg)) = check(refused.as_bytes(), &key) else {
        panic!("a refusal")
    };
    assert!(is_sign_error(&msg));
}

#[test]
fn refund_answers() {
    let key = Secret::new(KEY);
    let ok = json!({"retCode": "SUCCESS", "resCode": "SUCCESS", "refundOrder": {
        "refundOrderId": "R1", "mchRefundNo": "Rabc", "status": 2}});
    let a = refund_state(&check(&signed_answer(ok), &key).unwrap()).unwrap();
    assert_eq!(a.status, "refunded");
    assert_eq!(a.provider_reference.as_deref(), Some("R1"));
    let no = json!({"retCode": "SUCCESS", "resCode": "FAIL", "errDes": "refund amount exceeds"});
    let Err(NotRefunded::Failed(f)) = refund_state(&check(&signed_answer(no), &key).unwrap())
    else {
        panic!("refused")
    };
    assert_eq!(f.reason, "declined");
    assert!(f.message.contains("refund amount exceeds"));
}
