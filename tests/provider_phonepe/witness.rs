//! The PhonePe replica as a witness, spoken to directly the way the init document's Python
//! samples do (no daemon): it takes the document's own samples, refuses what the document
//! refuses with the document's codes, answers a repeated merchantTransactionId with
//! DUPLICATE_TRANSACTION_ID, and answers status with `amount: 0` unless told otherwise.

use serde_json::{json, Value};

use super::{common::replica::Replica, INIT, SALT};
use posbridge::provider::sign;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// POSTs `payload` to the init as the document's Python sample does; `salt` signs it.
fn init(r: &Replica, payload: &Value, salt: &str) -> Value {
    let b64 = sign::phonepe_encode_request(payload);
    let x = sign::phonepe_x_verify(&b64, INIT, salt, 1);
    block_on(async {
        reqwest::Client::new()
            .post(format!("{}{INIT}", r.url))
            .header("X-VERIFY", x)
            .header("X-PROVIDER-ID", "MERCHANTPROVIDER")
            .json(&json!({ "request": b64 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn status(r: &Replica, merchant: &str, id: &str) -> Value {
    let path = format!("/v1/payment/{merchant}/{id}/status");
    let x = sign::phonepe_x_verify_path(&path, SALT, 1);
    block_on(async {
        reqwest::Client::new()
            .get(format!("{}{path}", r.url))
            .header("X-VERIFY", x)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn edc_sample() -> Value {
    json!({"merchantId": "MERCHANTUAT", "storeId": "MS2403212004046998204201",
        "orderId": "testorder1", "terminalId": "MST2405301213090857163565",
        "merchantTransactionId": "test_transaction1", "amount": 200,
        "paymentModes": ["CARD", "DQR"], "solutionType": "EDC",
        "timeAllowedForHandoverToTerminalSeconds": 60, "integrationMappingType": "ONE_TO_ONE"})
}

#[test]
fn the_replica_takes_the_documents_sample_and_refuses_what_the_document_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(dir.path(), "phonepe", SALT, &[("pay_after_ms", "0")]);
    let ok = init(&r, &edc_sample(), SALT);
    assert_eq!(ok["code"], "SUCCESS", "{ok}");
    assert_eq!(
        ok["data"],
        json!({"merchantId": "MERCHANTUAT", "transactionId": "test_transaction1", "amount": 200})
    );
    let again = init(&r, &edc_sample(), SALT);
    assert_eq!(again["code"], "DUPLICATE_TRANSACTION_ID", "{again}");
    assert_eq!(again["success"], false);
    let wrong_key = init(&r, &json!({"merchantTransactionId": "t2"}), "not-the-salt");
    assert_eq!(wrong_key["code"], "UNAUTHORIZED", "{wrong_key}");
    let mut p = edc_sample();
    p["merchantTransactionId"] = json!("t3");
    p["amount"] = json!("200");
    assert_eq!(init(&r, &p, SALT)["code"], "INVALID_AMOUNT");
    p["amount"] = json!(200);
    p["timeAllowedForHandoverToTerminalSeconds"] = json!("60");
    assert_eq!(init(&r, &p, SALT)["code"], "INVALID_TERMINAL_HANDOVER_TIME");
    p["timeAllowedForHandoverToTerminalSeconds"] = json!(60);
    p["merchantTransactionId"] = json!("t-3");
    assert_eq!(init(&r, &p, SALT)["code"], "INVALID_TRANSACTION_ID");
    // Paid: status says SUCCESS with amount 0, as PhonePe's public samples do.
    let s = status(&r, "MERCHANTUAT", "test_transaction1");
    assert_eq!(s["data"]["status"], "SUCCESS", "{s}");
    assert_eq!(s["data"]["amount"], 0);
    let none = status(&r, "MERCHANTUAT", "never_sent");
    assert_eq!(none["code"], "TRANSACTION_NOT_FOUND");
    // With status_amount=real it tells the amount.
    let dir2 = tempfile::tempdir().unwrap();
    let real = Replica::start(
        dir2.path(),
        "phonepe",
        SALT,
        &[("pay_after_ms", "0"), ("status_amount", "real")],
    );
    assert_eq!(init(&real, &edc_sample(), SALT)["code"], "SUCCESS");
    let s = status(&real, "MERCHANTUAT", "test_transaction1");
    assert_eq!(s["data"]["amount"], 200, "{s}");
}

#[test]
fn a_status_blind_replica_hides_an_acknowledged_payment_for_n_checks_after_finding_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        dir.path(),
        "phonepe",
        SALT,
        &[
            ("pay_after_ms", "0"),
            ("status_blind", "2"),
            ("status_blind_after", "1"),
        ],
    );
    assert_eq!(init(&r, &edc_sample(), SALT)["code"], "SUCCESS");
    let codes: Vec<Value> = (0..4)
        .map(|_| status(&r, "MERCHANTUAT", "test_transaction1")["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            "PAYMENT_SUCCESS",
            "TRANSACTION_NOT_FOUND",
            "TRANSACTION_NOT_FOUND",
            "PAYMENT_SUCCESS"
        ]
    );
    // The switch: blind for every payment until it is turned off.
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        dir.path(),
        "phonepe",
        SALT,
        &[("pay_after_ms", "0"), ("status_blind", "on")],
    );
    assert_eq!(init(&r, &edc_sample(), SALT)["code"], "SUCCESS");
    let code = || status(&r, "MERCHANTUAT", "test_transaction1")["code"].clone();
    assert_eq!(code(), "TRANSACTION_NOT_FOUND");
    assert_eq!(code(), "TRANSACTION_NOT_FOUND");
    let off = block_on(async {
        reqwest::Client::new()
            .post(format!("{}/_replica/status_blind", r.url))
            .json(&json!({"blind": false}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(off, 204);
    assert_eq!(code(), "PAYMENT_SUCCESS");
}

/// Sends `request` (a base64 payload, or None for a status GET) to `path` with `x_verify`
/// exactly as given, and returns the answer's `code`.
fn raw(r: &Replica, path: &str, request: Option<&str>, x_verify: &str) -> Value {
    block_on(async {
        let c = reqwest::Client::new();
        let req = match request {
            Some(b64) => c
                .post(format!("{}{path}", r.url))
                .json(&json!({ "request": b64 })),
            None => c.get(format!("{}{path}", r.url)),
        };
        let a: Value = req
            .header("X-VERIFY", x_verify)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        a["code"].clone()
    })
}

#[test]
fn the_replica_checks_x_verify_by_the_documents_formula_not_by_the_clients_code() {
    // A salt of our own and salt index 2. Every header below was computed outside Rust with the
    // document's Python lines (001, "Python SampleCode for EDC Testing"):
    //   hashlib.sha256((base64_req + apiUrl + salt).encode()).hexdigest() + "###2"
    // and, for the status GET (beyond the document, as docs/providers.md assumes it),
    //   hashlib.sha256((path + salt).encode()).hexdigest() + "###2".
    // base64_req is the base64 of
    // {"merchantId":"MERCHANTUAT","storeId":"MS2403212004046998204201","orderId":"testorder1",
    //  "terminalId":"MST2405301213090857163565","merchantTransactionId":"own_salt_1",
    //  "amount":200,"paymentModes":["CARD","DQR"],"solutionType":"EDC",
    //  "timeAllowedForHandoverToTerminalSeconds":60,"integrationMappingType":"ONE_TO_ONE"}
    const OWN_SALT: &str = "witness-own-salt-91ad";
    const B64: &str = "eyJtZXJjaGFudElkIjoiTUVSQ0hBTlRVQVQiLCJzdG9yZUlkIjoiTVMyNDAzMjEyMDA0MDQ2OTk4MjA0MjAxIiwib3JkZXJJZCI6InRlc3RvcmRlcjEiLCJ0ZXJtaW5hbElkIjoiTVNUMjQwNTMwMTIxMzA5MDg1NzE2MzU2NSIsIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6Im93bl9zYWx0XzEiLCJhbW91bnQiOjIwMCwicGF5bWVudE1vZGVzIjpbIkNBUkQiLCJEUVIiXSwic29sdXRpb25UeXBlIjoiRURDIiwidGltZUFsbG93ZWRGb3JIYW5kb3ZlclRvVGVybWluYWxTZWNvbmRzIjo2MCwiaW50ZWdyYXRpb25NYXBwaW5nVHlwZSI6Ik9ORV9UT19PTkUifQ==";
    const INIT_OK: &str = "d86d79cdb1155c6e2fa2fa33cf8fbde5681bc0b465bd21e5c2c9ccd5261be22a###2";
    // The same with the path appended twice (B64 + INIT + INIT + salt): a broken client signer.
    const INIT_TWICE: &str = "f2c51143b04c68b33b72569464e656526933c3020676e979810f7e2b418555c9###2";
    const STATUS: &str = "/v1/payment/MERCHANTUAT/own_salt_1/status";
    const STATUS_OK: &str = "350041841d35776a66433ba2ecb6ecc42adee97c2bac90140c127e15b8f4b561###2";
    const STATUS_TWICE: &str =
        "f0350145d34bf4aba072929a5c12a8b8d205dbb5049bb3ec111014cddd16d936###2";

    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        dir.path(),
        "phonepe",
        OWN_SALT,
        &[("pay_after_ms", "0"), ("salt_index", "2")],
    );
    assert_eq!(raw(&r, INIT, Some(B64), INIT_TWICE), "UNAUTHORIZED");
    assert_eq!(
        raw(&r, INIT, Some(B64), &INIT_OK.replace("###2", "###1")),
        "UNAUTHORIZED"
    );
    assert_eq!(raw(&r, STATUS, None, STATUS_OK), "TRANSACTION_NOT_FOUND");
    assert_eq!(raw(&r, INIT, Some(B64), INIT_OK), "SUCCESS");
    // Under the UAT prefix the signed path is still the bare api path (the document's samples).
    assert_eq!(
        raw(
            &r,
            &format!("/enterprise-sandbox{INIT}"),
            Some(B64),
            INIT_OK
        ),
        "DUPLICATE_TRANSACTION_ID"
    );
    assert_eq!(raw(&r, STATUS, None, STATUS_TWICE), "UNAUTHORIZED");
    assert_eq!(raw(&r, STATUS, None, STATUS_OK), "PAYMENT_SUCCESS");
}
