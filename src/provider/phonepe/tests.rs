//! Request shapes, id mapping and answer reading of the PhonePe provider, without a network
//! (the wire itself is in `tests_http.rs`).

use serde_json::{json, Value};

use super::answer::*;
use super::wire::*;
use super::*;
use crate::provider::{OpKind, Operation, Primary};

fn ids() -> Ids {
    Ids {
        merchant_id: "M1".into(),
        store_id: "S1".into(),
        terminal_id: "T1".into(),
    }
}

fn op(kind: OpKind, request_id: &str, amount: u64, params: Value) -> Operation {
    Operation {
        request_id: request_id.into(),
        kind,
        provider: "phonepe".into(),
        amount: Some(amount),
        currency: "INR".into(),
        metadata: Default::default(),
        params: params.as_object().cloned().unwrap_or_default(),
        primary: None,
        created_at: crate::clock::now_rfc3339(),
        backend_id: crate::provider::new_backend_id(kind),
        progress: Default::default(),
        stages: Default::default(),
    }
}

#[test]
fn legacy_transaction_ids_are_deterministic_and_within_phonepe_rules() {
    let uuid = "0b7c4d4e-9a51-4b8e-8f3e-2f1c1d9e6a70";
    for rid in [
        "a.b",
        "x:y",
        &"z".repeat(37),
        &"q".repeat(64),
        "sale_1",
        uuid,
    ] {
        let id = legacy_transaction_id("T1", rid);
        assert!(valid_transaction_id(&id), "{rid} -> {id}");
        assert_eq!(id.len(), 33);
        assert_eq!(id, legacy_transaction_id("T1", rid), "stable");
    }
    // Lossy characters never merge two request_ids into one transaction.
    assert_ne!(
        legacy_transaction_id("T1", "a.b"),
        legacy_transaction_id("T1", "a_b")
    );
    assert_ne!(
        legacy_transaction_id("T1", "a.b"),
        legacy_transaction_id("T1", "a:b")
    );
    // Two counters numbering their sales alike never share a PhonePe transaction.
    assert_ne!(
        legacy_transaction_id("T1", "1"),
        legacy_transaction_id("T2", "1")
    );
    assert_ne!(
        legacy_transaction_id("T1", "21"),
        legacy_transaction_id("T12", "1")
    );
}

/// The document's types: LONG fields are JSON numbers, paymentModes a list, the rest strings.
fn typed_as_documented(v: &Value) {
    for (k, val) in v.as_object().unwrap() {
        match (k.as_str(), val) {
            (
                "amount" | "expiresIn" | "timeAllowedForHandoverToTerminalSeconds",
                Value::Number(n),
            ) => assert!(n.is_u64(), "{k}: {n}"),
            ("paymentModes", Value::Array(a)) => assert!(a.iter().all(Value::is_string)),
            (_, Value::String(_)) => {}
            _ => panic!("{k} must be a string, is {val}"),
        }
    }
}

#[test]
fn edc_init_payload_has_every_field_typed_as_the_document_says() {
    let pay = op(OpKind::Pay, "sale.1", 1250, json!({}));
    let req = pay_request(&ids(), "EDC", &pay).unwrap();
    let p = &req.payload;
    assert_eq!(p["merchantId"], "M1");
    assert_eq!(p["storeId"], "S1");
    assert_eq!(p["terminalId"], "T1");
    assert_eq!(p["orderId"], "sale_1");
    assert_eq!(p["merchantTransactionId"], json!(pay.backend_id));
    assert_eq!(p["amount"], 1250);
    assert_eq!(p["paymentModes"], json!(["CARD", "DQR"]));
    assert_eq!(p["solutionType"], "EDC");
    assert_eq!(p["timeAllowedForHandoverToTerminalSeconds"], json!(60));
    assert_eq!(p["integrationMappingType"], "ONE_TO_ONE");
    assert!(p.get("shortOrderId").is_none() && p.get("expiresIn").is_none());
    typed_as_documented(p);
    assert_eq!(req.window, Duration::from_secs(60));
}

#[test]
fn edc_params_override_modes_window_mapping_and_order() {
    let params = json!({"payment_modes": ["CARD"], "handover_seconds": 30,
        "integration_mapping_type": "OPEN", "short_order_id": "4821", "order_id": "INV-7"});
    let req = pay_request(&ids(), "EDC", &op(OpKind::Pay, "s2", 100, params)).unwrap();
    assert_eq!(req.payload["paymentModes"], json!(["CARD"]));
    assert_eq!(
        req.payload["timeAllowedForHandoverToTerminalSeconds"],
        json!(30)
    );
    assert_eq!(req.payload["integrationMappingType"], "OPEN");
    assert_eq!(req.payload["shortOrderId"], "4821");
    assert_eq!(
        req.payload["orderId"], "INV_7",
        "mapped to the document's characters"
    );
    assert_eq!(req.window, Duration::from_secs(30));
    typed_as_documented(&req.payload);
}

#[test]
fn bad_params_are_named_before_anything_is_sent() {
    let bad = [
        (json!({"payment_modes": []}), "params.payment_modes"),
        (json!({"payment_modes": ["CASH"]}), "params.payment_modes"),
        (json!({"handover_seconds": 0}), "params.handover_seconds"),
        (
            json!({"integration_mapping_type": "OPEN"}),
            "params.short_order_id",
        ),
        (
            json!({"integration_mapping_type": "OPEN", "short_order_id": "12a4"}),
            "params.short_order_id",
        ),
        (
            json!({"integration_mapping_type": "MANY"}),
            "params.integration_mapping_type",
        ),
        (json!({"handover_seconds": 61}), "params.handover_seconds"),
        (json!({"short_order_id": "4821"}), "params.short_order_id"),
        (json!({"order_id": ""}), "params.order_id"),
    ];
    for (params, field) in bad {
        let err =
            pay_request(&ids(), "EDC", &op(OpKind::Pay, "s", 100, params.clone())).unwrap_err();
        assert!(err.contains(field), "{params}: {err}");
    }
}

#[test]
fn dqr_device_payload_has_expiry_and_no_card_fields() {
    let req = pay_request(
        &ids(),
        "DQR_DEVICE",
        &op(OpKind::Pay, "q1", 500, json!({"expires_in": 90})),
    )
    .unwrap();
    let keys: Vec<&str> = req
        .payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "merchantId",
            "storeId",
            "terminalId",
            "orderId",
            "merchantTransactionId",
            "amount",
            "solutionType",
            "expiresIn"
        ]
    );
    assert_eq!(req.payload["expiresIn"], json!(90));
    assert_eq!(req.payload["solutionType"], "DQR_DEVICE");
    typed_as_documented(&req.payload);
}

#[test]
fn refund_payload_names_a_new_id_and_the_original() {
    let mut r = op(OpKind::Refund, "refund-1", 300, json!({}));
    assert!(refund_payload(&ids(), &r)
        .unwrap_err()
        .contains("primary_transaction"));
    r.primary = Some(Primary {
        request_id: Some("sale-1".into()),
        provider: "phonepe".into(),
        provider_reference: Some("T123".into()),
        amount: 1000,
        currency: None,
        backend_id: None,
        pay_notes: Default::default(),
    });
    // No backend_id (the journal no longer holds the pay): refused, the field named; no id
    // is derived from the request_id for a money-moving call.
    let refused = refund_payload(&ids(), &r).unwrap_err();
    assert!(
        refused.contains("primary_transaction.backend_id"),
        "{refused}"
    );
    // A pay that carried its backend_id: that is the original.
    r.primary.as_mut().unwrap().backend_id = Some("P0123456789abcdef0123456789ab".into());
    let p = refund_payload(&ids(), &r).unwrap();
    assert_eq!(p["originalTransactionId"], "P0123456789abcdef0123456789ab");
    assert_eq!(p["amount"], 300);
    typed_as_documented(&p);
}

fn answer(v: Value) -> Answer {
    parse_answer(v.to_string().as_bytes()).unwrap()
}

#[test]
fn init_answers_are_classified_without_guessing_nothing_happened() {
    let sent = |code: &str| {
        classify_sent(
            OpKind::Pay,
            &answer(json!({"success": false, "code": code, "message": "m"})),
        )
    };
    let refused = |code: &str| match sent(code) {
        Sent::Refused(f) => f.reason,
        Sent::Follow => "follow".into(),
        Sent::Duplicate => "duplicate".into(),
    };
    assert_eq!(refused("UNAUTHORIZED"), "unauthorized");
    assert_eq!(refused("INVALID_AMOUNT"), "invalid_request");
    assert_eq!(refused("INVALID_PAYMENT_MODES"), "invalid_request");
    assert_eq!(refused("INVALID_TRANSACTION_ID"), "invalid_request");
    assert_eq!(refused("SOLUTION_NOT_ENABLED"), "provider_unavailable");
    assert_eq!(
        refused("INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL"),
        "provider_unavailable"
    );
    assert_eq!(refused("SHORT_CODE_NOT_REQUIRED"), "invalid_request");
    assert_eq!(refused("DUPLICATE_TRANSACTION_ID"), "duplicate");
    for follow in ["SUCCESS", "INTERNAL_SERVER_ERROR", "WHAT_IS_THIS"] {
        assert_eq!(refused(follow), "follow", "{follow}");
    }
    assert!(parse_answer(b"<html>").is_none());
    assert!(parse_answer(b"{\"success\": true}").is_none());
}

#[test]
fn a_paid_status_gives_rrn_reference_and_a_masked_card_only() {
    let pay = op(OpKind::Pay, "s1", 1000, json!({}));
    let a = answer(
        json!({"success": true, "code": "PAYMENT_SUCCESS", "message": "ok",
        "data": {"merchantId": "M1", "transactionId": "Ps1", "amount": 1000, "status": "SUCCESS",
            "phonepeTransactionId": "T2411", "referenceNumber": "431234567890",
            "paymentMode": "CARD", "paymentInstruments": [
                {"type": "CARD", "cardNetwork": "VISA", "cardNumber": "4111111111111111"}]}}),
    );
    let Status::Success(ap) = classify_status(&pay, "Ps1", &a) else {
        panic!()
    };
    assert_eq!(ap.status, "approved");
    assert_eq!(ap.provider_reference.as_deref(), Some("T2411"));
    assert_eq!(ap.rrn.as_deref(), Some("431234567890"));
    assert_eq!(ap.backend_id.as_deref(), Some("Ps1"));
    assert!(ap.extra.get("backend_id").is_none());
    assert!(ap.extra.get("phonepe_amount").is_none());
    let card = ap.card.unwrap();
    assert_eq!(card.masked_pan, "411111******1111");
    assert_eq!(card.scheme.as_deref(), Some("VISA"));
    let last4 = json!({"paymentInstruments": {"last4Digits": "4444", "network": "MASTERCARD"}});
    assert_eq!(answer::card(&last4).unwrap().masked_pan, "************4444");
    let masked = json!({"paymentInstruments": [{"maskedCardNumber": "XXXXXXXXXXXX0003"}]});
    assert_eq!(
        answer::card(&masked).unwrap().masked_pan,
        "************0003"
    );
}

#[test]
fn failed_expired_pending_and_missing_are_told_apart() {
    let pay = op(OpKind::Pay, "s1", 1000, json!({}));
    let with = |code: &str, status: &str| {
        classify_status(
            &pay,
            "Ps1",
            &answer(json!({"success": false, "code": code, "message": "m",
            "data": {"amount": 1000, "status": status}})),
        )
    };
    let reason = |s: Status| match s {
        Status::Failed(f) => f.reason,
        Status::Pending => "pending".into(),
        Status::NotFound => "not_found".into(),
        Status::Unclear(_) => "unclear".into(),
        Status::Success(_) => "success".into(),
    };
    assert_eq!(reason(with("PAYMENT_DECLINED", "FAILED")), "declined");
    assert_eq!(reason(with("PAYMENT_CANCELLED", "FAILED")), "cancelled");
    assert_eq!(reason(with("PAYMENT_EXPIRED", "EXPIRED")), "expired");
    assert_eq!(reason(with("PAYMENT_PENDING", "PENDING")), "pending");
    assert_eq!(reason(with("INTERNAL_SERVER_ERROR", "")), "pending");
    assert_eq!(reason(with("TRANSACTION_NOT_FOUND", "")), "not_found");
    // Document 001: a format error of the id (an init refusal), not "no such transaction".
    assert_eq!(reason(with("INVALID_TRANSACTION_ID", "")), "unclear");
    assert_eq!(reason(with("UNAUTHORIZED", "")), "unclear");
    // SUCCESS is a charge whatever data.amount says (the public samples answer 0); a
    // different amount is recorded, never a refusal.
    for theirs in [0, 999] {
        let paid = classify_status(
            &pay,
            "Ps1",
            &answer(json!({"success": true, "code": "PAYMENT_SUCCESS",
            "data": {"amount": theirs, "status": "SUCCESS"}})),
        );
        let Status::Success(ap) = paid else {
            panic!("{theirs}: {paid:?}")
        };
        assert_eq!(ap.extra["phonepe_amount"], theirs);
    }
}

#[test]
fn the_published_schedule_is_phonepes() {
    let s = published_schedule();
    assert_eq!(s[0], Duration::from_secs(20));
    let total: Duration = s.iter().sum();
    // 20 + 30 + 60 + 60 + 60 + 60 s, then 60 s repeating.
    assert_eq!(total, Duration::from_secs(290));
    assert_eq!(*s.last().unwrap(), Duration::from_secs(60));
}

#[test]
fn backend_text_never_carries_a_card_number() {
    assert_eq!(
        scrub("card 4111111111111111 declined"),
        "card 411111******1111 declined"
    );
    assert_eq!(scrub("rrn 431234 ok\u{1}"), "rrn 431234 ok");
    let a = answer(json!({"success": false, "code": "PAYMENT_DECLINED",
        "message": "PAN 5555555555554444 refused"}));
    assert!(!a.message.contains("5555555555554444"), "{}", a.message);
}
