//! The replica itself, spoken to directly: it refuses what IOT Pay's document refuses and
//! accepts every form the document shows, and signs every answer.

use super::*;
use posbridge::provider::sign::{iotpay_sign, iotpay_verify};

/// Posts `params` (signed with `key`) to the replica's `call` as one form field `params`.
fn post(r: &Replica, call: &str, mut params: serde_json::Map<String, Value>, key: &str) -> Value {
    let sign = iotpay_sign(&params, key);
    params.insert("sign".into(), json!(sign));
    let body = vec![("params".to_owned(), Value::Object(params).to_string())];
    send(r, call, body)
}

fn send(r: &Replica, call: &str, body: Vec<(String, String)>) -> Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{}/v1/{call}", r.url))
                .form(&body)
                .send()
                .await
                .unwrap();
            resp.json().await.unwrap()
        })
}

/// The document's request sample (amount as a string, `source` and `tip` beside the table).
fn sample() -> serde_json::Map<String, Value> {
    json!({"amount": "1", "body": "IOTPay", "channelId": "CC_PAX", "clientIp": "192.168.50.186",
        "currency": "CAD", "device": "V1-B25",
        "extra": "{\"pos_flag\":\"yes\",\"productId\":\"10000576_null\"}", "jobNo": "testpax",
        "mchId": "10000576", "mchOrderNo": "1632349674730", "notifyUrl": "http://localhost",
        "source": "pos_2.1.54", "subject": "IOTPay", "tip": "0"})
    .as_object()
    .unwrap()
    .clone()
}

fn refused(a: &Value, why: &str) {
    assert_eq!(a["retCode"], "FAIL", "{a}");
    assert!(a["retMsg"].as_str().unwrap().contains(why), "{why}: {a}");
    iotpay_verify(a.as_object().unwrap(), KEY).expect("refusals are signed too");
}

#[test]
fn the_replica_accepts_the_documents_forms_and_refuses_what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        dir.path(),
        "iotpay",
        KEY,
        &[("terminal_ms", "0"), ("mch_id", "10000576")],
    );
    // The document's own request, and its result shape.
    let first = post(&r, "create_order", sample(), KEY);
    assert_eq!(first["retCode"], "SUCCESS", "{first}");
    assert_eq!(first["resCode"], "SUCCESS", "{first}");
    assert_eq!(first["payOrder"]["status"], 2, "{first}");
    assert_eq!(first["mchOrderNo"], "1632349674730");
    assert_eq!(first["payOrderId"], first["payOrder"]["payOrderId"]);
    let extra: Value = serde_json::from_str(first["payOrder"]["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["emvLabel"], "MASTERCARD");
    iotpay_verify(first.as_object().unwrap(), KEY).unwrap();
    // The same number again: refused, never charged again.
    refused(&post(&r, "create_order", sample(), KEY), "already exists");
    // The status-9 decline, both codes SUCCESS.
    let mut declined = sample();
    declined.insert("mchOrderNo".into(), json!("2"));
    declined.insert("amount".into(), json!(151));
    let d = post(&r, "create_order", declined, KEY);
    assert_eq!(
        (d["retCode"].as_str(), d["resCode"].as_str()),
        (Some("SUCCESS"), Some("SUCCESS"))
    );
    assert_eq!(d["payOrder"]["status"], 9, "{d}");
    // The form fields themselves instead of `params`.
    let mut plain = sample();
    plain.insert("mchOrderNo".into(), json!("3"));
    let sign = iotpay_sign(&plain, KEY);
    let mut body: Vec<(String, String)> = plain
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    body.push(("sign".into(), sign));
    assert_eq!(send(&r, "create_order", body)["payOrder"]["status"], 2);

    let cases: &[(&str, Value, &str)] = &[
        ("channelId", json!("WX_NATIVE"), "CC_PAX"),
        ("mchOrderNo", json!("1".repeat(31)), "longer than 30"),
        ("mchOrderNo", json!("ORDER-1"), "letters and digits"),
        ("extra", json!(""), "extra is required"),
        ("subject", Value::Null, "subject is required"),
        (
            "notifyUrl",
            json!("https://shop.example/n"),
            "http://localhost",
        ),
        ("amount", json!("-5"), "positive integer"),
    ];
    for (key, value, why) in cases {
        let mut p = sample();
        p.insert("mchOrderNo".into(), json!("9"));
        if value.is_null() {
            p.remove(*key);
        } else {
            p.insert((*key).into(), value.clone());
        }
        refused(&post(&r, "create_order", p, KEY), why);
    }
    let mut p = sample();
    p.insert("mchOrderNo".into(), json!("10"));
    refused(
        &post(&r, "create_order", p, "not-the-key"),
        "signature fail",
    );
    let state = r.state();
    assert_eq!(state["orders"].as_object().unwrap().len(), 3, "{state}");

    // query_order: by mchOrderNo, signed; an unknown order is "does not exist".
    let q = post(
        &r,
        "query_order",
        json!({"mchId": "10000576", "mchOrderNo": "2"})
            .as_object()
            .unwrap()
            .clone(),
        KEY,
    );
    assert_eq!(q["payOrder"]["status"], 9, "{q}");
    let nf = post(
        &r,
        "query_order",
        json!({"mchId": "10000576", "mchOrderNo": "404"})
            .as_object()
            .unwrap()
            .clone(),
        KEY,
    );
    refused_query(&nf);
}

fn refused_query(a: &Value) {
    assert_eq!(a["resCode"], "FAIL", "{a}");
    assert!(a["retMsg"].as_str().unwrap().contains("not exist"), "{a}");
    iotpay_verify(a.as_object().unwrap(), KEY).unwrap();
}

#[test]
fn the_replica_refuses_a_merchant_id_iot_pay_never_assigned() {
    // The document: mchId is the "merchant id assigned by IOTPay". The replica knows one
    // merchant (option mch_id, required) and refuses any other, correctly signed or not.
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        dir.path(),
        "iotpay",
        KEY,
        &[("terminal_ms", "0"), ("mch_id", "10000576")],
    );
    for mch in ["10000701", "1", "100005760"] {
        let mut p = sample();
        p.insert("mchId".into(), json!(mch));
        p.insert("mchOrderNo".into(), json!(format!("M{mch}")));
        refused(&post(&r, "create_order", p, KEY), "mchId does not exist");
        let q = json!({"mchId": mch, "mchOrderNo": format!("M{mch}")});
        refused(
            &post(&r, "query_order", q.as_object().unwrap().clone(), KEY),
            "mchId does not exist",
        );
    }
    let state = r.state();
    assert_eq!(state["orders"], json!({}), "nothing was created: {state}");
    // The known merchant is served.
    assert_eq!(
        post(&r, "create_order", sample(), KEY)["resCode"],
        "SUCCESS"
    );
}

#[test]
fn the_replica_will_not_start_without_knowing_its_merchant() {
    // Before, a replica not given mch_id took any mchId, so a daemon configured with a merchant
    // id IOT Pay never assigned (tests/clock.rs had mch_id = "1") was served as if it were right.
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(super::common::BIN)
        .args(["replica", "iotpay", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.path().join("state.json"))
        .env("POSBRIDGE_REPLICA_SECRET", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    // A replica that starts prints "listening on ..." and keeps the pipe open: read one line.
    let mut byte = [0u8; 1];
    let mut stdout = child.stdout.take().unwrap();
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        out.push(byte[0] as char);
    }
    let _ = child.kill();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let _ = child.wait();
    assert!(!out.starts_with("listening"), "it started: {out}");
    assert!(err.contains("mch_id"), "{err}");
}
