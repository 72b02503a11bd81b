//! The replica's init checks against the document: every form it shows is accepted, and every
//! refusal code it lists that a payload can cause comes out for the matching fault.

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use serde_json::{json, Value};

use super::*;

fn setup_all() -> (Vec<String>, Vec<String>) {
    (
        vec!["EDC".into(), "DQR_DEVICE".into()],
        vec!["NOT_INTEGRATED_T".into()],
    )
}

fn check(p: &Value) -> Result<u64, &'static str> {
    let (solutions, not_integrated) = setup_all();
    let setup = Setup {
        solutions: &solutions,
        not_integrated: &not_integrated,
    };
    check_init(&setup, p).map_err(|r| r.code)
}

/// The document's "Sample JSON Payload for DQR Device".
fn dqr_sample() -> Value {
    json!({"storeId": "MS2603301457425143586306", "merchantId": "MERCHANTUAT",
        "terminalId": "MST2603301758302811969831", "merchantTransactionId": "TXN0015985",
        "orderId": "MRCHN1RORDID10111114", "amount": 100, "solutionType": "DQR_DEVICE",
        "expiresIn": 180})
}

/// The document's "Sample JSON Payload for EDC".
fn edc_sample() -> Value {
    json!({"merchantId": "MERCHANTUAT", "storeId": "MS2403212004046998204201",
        "orderId": "testorder1", "terminalId": "MST2405301213090857163565",
        "merchantTransactionId": "test_transaction1", "amount": 200,
        "paymentModes": ["CARD", "DQR"], "solutionType": "EDC",
        "timeAllowedForHandoverToTerminalSeconds": 60, "integrationMappingType": "ONE_TO_ONE"})
}

const DQR_B64: &str = "eyJzdG9yZUlkIjogIk1TMjYwMzMwMTQ1NzQyNTE0MzU4NjMwNiIsICJtZXJjaGFudElkIjogIkNPR1dBVkVPRkZMSU5FIiwgInRlcm1pbmFsSWQiOiAiTVNUMjYwMzMwMTc1ODMwMjgxMTk2OTgzMSIsICJtZXJjaGFudFRyYW5zYWN0aW9uSWQiOiAiVFhOMDAxOTQ0MCIsICJvcmRlcklkIjogIk1SQ0hOMVJPUkRJRDEwMTExMTE0IiwgImFtb3VudCI6IDEwMCwgInNvbHV0aW9uVHlwZSI6ICJEUVJfREVWSUNFIiwgImV4cGlyZXNJbiI6IDE4MH0=";
const EDC_B64: &str = "ewogICJtZXJjaGFudElkIjogIk1FUkNIQU5UVUFUIiwKICAic3RvcmVJZCI6ICJNUzI0MDMyMTIwMDQwNDY5OTgyMDQyMDEiLAogICJvcmRlcklkIjogInRlc3RvcmRlcjEiLAogICJ0ZXJtaW5hbElkIjogIk1TVDI0MDUzMDEyMTMwOTA4NTcxNjM1NjUiLAogICJ0cmFuc2FjdGlvbklkIjogInRlc3RfdHJhbnNhY3Rpb24xIiwKICAiYW1vdW50IjogMjAwLAogICJwYXltZW50TW9kZXMiOiBbCiAgICAiQ0FSRCIsCiAgICAiRFFSIgogIF0sCiAgInRpbWVBbGxvd2VkRm9ySGFuZG92ZXJUb1Rlcm1pbmFsU2Vjb25kcyI6IDYwLAogICJpbnRlZ3JhdGlvbk1hcHBpbmdUeXBlIjogIk9ORV9UT19PTkUiCn0=";

fn decoded(b64: &str) -> Value {
    serde_json::from_slice(&B64.decode(b64).unwrap()).unwrap()
}

fn with(mut p: Value, key: &str, v: Value) -> Value {
    p[key] = v;
    p
}

fn without(mut p: Value, key: &str) -> Value {
    p.as_object_mut().unwrap().remove(key);
    p
}

#[test]
fn every_form_the_document_shows_is_accepted() {
    assert_eq!(check(&dqr_sample()), Ok(180_000));
    assert_eq!(check(&edc_sample()), Ok(60_000));
    // The base64 samples (which differ from the JSON printed beside them).
    assert_eq!(check(&decoded(DQR_B64)), Ok(180_000));
    let edc = decoded(EDC_B64);
    assert!(edc.get("solutionType").is_none() && edc.get("transactionId").is_some());
    assert_eq!(check(&edc), Ok(60_000));
    assert_eq!(txn_id_of(&edc), "test_transaction1");
    // The Python samples' ids.
    let py_dqr = with(
        with(dqr_sample(), "storeId", json!("teststore1")),
        "merchantTransactionId",
        json!("TXN0014242"),
    );
    assert!(check(&py_dqr).is_ok());
    let py_edc = with(
        with(edc_sample(), "merchantTransactionId", json!("TXb123")),
        "orderId",
        json!("order77"),
    );
    assert!(check(&py_edc).is_ok());
    // Optional fields left out; OPEN with a short order id and no terminal.
    assert_eq!(
        check(&without(
            edc_sample(),
            "timeAllowedForHandoverToTerminalSeconds"
        )),
        Ok(60_000)
    );
    assert_eq!(check(&without(dqr_sample(), "expiresIn")), Ok(180_000));
    let open = with(
        with(
            without(edc_sample(), "terminalId"),
            "integrationMappingType",
            json!("OPEN"),
        ),
        "shortOrderId",
        json!("4821"),
    );
    assert!(check(&open).is_ok());
    assert!(check(&with(edc_sample(), "autoAccept", json!("true"))).is_ok());
}

#[test]
fn each_fault_gets_the_documents_code() {
    let e = edc_sample;
    let d = dqr_sample;
    let cases: Vec<(Value, &str)> = vec![
        (without(e(), "merchantId"), "INVALID_MERCHANT_ID"),
        (
            with(e(), "merchantId", json!("MERCH-1")),
            "INVALID_MERCHANT_ID",
        ),
        (with(e(), "storeId", json!("store 1")), "INVALID_STORE_ID"),
        (without(d(), "storeId"), "INVALID_STORE_ID"),
        (with(e(), "terminalId", json!("T-1")), "INVALID_TERMINAL_ID"),
        (without(e(), "terminalId"), "INVALID_TERMINAL_ID"),
        (without(d(), "terminalId"), "INVALID_TERMINAL_ID"),
        (
            with(e(), "merchantTransactionId", json!("txn-1")),
            "INVALID_TRANSACTION_ID",
        ),
        (
            with(e(), "merchantTransactionId", json!("a".repeat(40))),
            "INVALID_TRANSACTION_ID",
        ),
        (
            without(e(), "merchantTransactionId"),
            "INVALID_TRANSACTION_ID",
        ),
        (with(e(), "amount", json!("200")), "INVALID_AMOUNT"),
        (with(e(), "amount", json!(0)), "INVALID_AMOUNT"),
        (with(e(), "amount", json!(2.5)), "INVALID_AMOUNT"),
        (without(d(), "amount"), "INVALID_AMOUNT"),
        (
            with(e(), "integrationMappingType", json!("MANY")),
            "INVALID_INTEGRATION_MAPPING_TYPE",
        ),
        (
            without(e(), "integrationMappingType"),
            "INVALID_INTEGRATION_MAPPING_TYPE",
        ),
        (
            with(e(), "shortOrderId", json!("4821")),
            "SHORT_CODE_NOT_REQUIRED",
        ),
        (
            with(e(), "integrationMappingType", json!("OPEN")),
            "SHORT_CODE_IS_REQUIRED",
        ),
        (
            with(
                with(e(), "integrationMappingType", json!("OPEN")),
                "shortOrderId",
                json!("12"),
            ),
            "INVALID_SHORTCODE_LENGTH",
        ),
        (
            with(e(), "timeAllowedForHandoverToTerminalSeconds", json!("60")),
            "INVALID_TERMINAL_HANDOVER_TIME",
        ),
        (
            with(e(), "timeAllowedForHandoverToTerminalSeconds", json!(0)),
            "INVALID_TERMINAL_HANDOVER_TIME",
        ),
        (
            with(e(), "timeAllowedForHandoverToTerminalSeconds", json!(61)),
            "INVALID_TERMINAL_HANDOVER_TIME",
        ),
        (
            with(e(), "paymentModes", json!([])),
            "INVALID_PAYMENT_MODES",
        ),
        (
            with(e(), "paymentModes", json!(["CASH"])),
            "INVALID_PAYMENT_MODES",
        ),
        (without(e(), "paymentModes"), "INVALID_PAYMENT_MODES"),
        (
            with(e(), "terminalId", json!("NOT_INTEGRATED_T")),
            "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL",
        ),
        // Silent in the document: the replica's own code.
        (with(d(), "expiresIn", json!("180")), "BAD_REQUEST"),
        (with(e(), "orderId", json!("order-1")), "BAD_REQUEST"),
        (without(e(), "orderId"), "BAD_REQUEST"),
        (with(e(), "solutionType", json!("POS")), "BAD_REQUEST"),
        (with(e(), "autoAccept", json!(true)), "BAD_REQUEST"),
    ];
    for (p, code) in cases {
        assert_eq!(check(&p), Err(code), "{p}");
    }
    let only_edc = vec!["EDC".to_owned()];
    let setup = Setup {
        solutions: &only_edc,
        not_integrated: &[],
    };
    assert_eq!(
        check_init(&setup, &dqr_sample()).unwrap_err().code,
        "SOLUTION_NOT_ENABLED"
    );
}

#[test]
fn refunds_need_valid_ids_and_a_long_amount() {
    let r = json!({"merchantId": "M1", "transactionId": "R1", "originalTransactionId": "P1",
        "amount": 100, "merchantOrderId": "o1", "message": "refund o1"});
    assert!(check_refund(&r).is_ok());
    let code = |p: Value| check_refund(&p).unwrap_err().code;
    assert_eq!(
        code(with(r.clone(), "amount", json!("100"))),
        "INVALID_AMOUNT"
    );
    assert_eq!(
        code(with(r.clone(), "transactionId", json!("R-1"))),
        "INVALID_TRANSACTION_ID"
    );
    assert_eq!(
        code(without(r, "originalTransactionId")),
        "INVALID_TRANSACTION_ID"
    );
}
