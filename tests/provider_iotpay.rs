//! The `iotpay` provider end to end: the real daemon over its socket, IOT Pay played by the
//! loopback replica (`posbridge replica iotpay`). Sales, declines, refunds, every injected
//! fault, a killed daemon, forged answers and a wrong key; each test counts the replica's
//! money-moving calls and checks the daemon's log never shows the key.

mod common;

use std::time::{Duration, Instant};

use common::replica::Replica;
use common::Daemon;
use posbridge::provider::iotpay::{order_no, refund_no};
use serde_json::{json, Value};

const KEY: &str = "iotpay-test-key-5f1c0e";

struct Rig {
    d: Daemon,
    r: Replica,
    /// Holds the replica's state and the key file.
    _dir: tempfile::TempDir,
}

/// A replica with `options` and a daemon pointed at it with the key `key` and config `extra`.
fn rig_with(key: &str, options: &[(&str, &str)], extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(dir.path(), "iotpay", KEY, options);
    let key_file = dir.path().join("iotpay.key");
    std::fs::write(&key_file, key).unwrap();
    let config = format!(
        "default_provider = \"iotpay\"\n[providers.iotpay]\nbase_url = \"{}/v1/\"\n\
         mch_id = \"10000701\"\nkey_file = \"{}\"\njob_no = \"cashier1\"\ncurrency = \"CAD\"\n\
         {extra}\n",
        r.url,
        key_file.display()
    );
    let config = if extra.contains("timeout_ms") {
        config
    } else {
        format!("{config}timeout_ms = 1500\n")
    };
    let config = if extra.contains("status_poll_ms") {
        config
    } else {
        format!("{config}status_poll_ms = [100, 200]\n")
    };
    let d = Daemon::start_with(Some(&config), &[]);
    Rig { d, r, _dir: dir }
}

fn rig(options: &[(&str, &str)]) -> Rig {
    rig_with(KEY, options, "")
}

impl Rig {
    fn pay(&self, id: &str, amount: u64) -> Value {
        self.d
            .request(json!({"action": "pay", "request_id": id, "amount": amount}))
    }

    fn refund(&self, id: &str, amount: u64, primary: &Value) -> Value {
        self.d.request(
            json!({"action": "refund", "request_id": id, "amount": amount,
                              "primary_transaction": primary}),
        )
    }

    /// Money-moving calls the replica received for the backend number `no`.
    fn calls(&self, no: &str) -> u64 {
        self.r.state()["calls"][no].as_u64().unwrap_or(0)
    }

    fn order(&self, id: &str) -> Value {
        self.r.state()["orders"][order_no(id)].clone()
    }

    fn settled(&self, id: &str, limit: Duration) -> Value {
        self.d
            .await_result(id, limit, |a| a["error_type"] != "unknown_result_error")
    }

    fn assert_no_secret(&self) {
        let log = self.d.log();
        assert!(!log.contains(KEY), "the key is in the daemon log");
        assert!(
            !log.contains("wrong-key-1234"),
            "a key is in the daemon log"
        );
    }
}

fn assert_approved(a: &Value) {
    assert_eq!(a["code"], 0, "{a}");
    assert_eq!(a["data"]["status"], "approved", "{a}");
    assert_eq!(a["data"]["provider"], "iotpay", "{a}");
}

fn assert_error(a: &Value, error_type: &str, reason: &str) {
    assert_ne!(a["code"], 0, "{a}");
    assert_eq!(a["error_type"], error_type, "{a}");
    assert_eq!(a["reason"], reason, "{a}");
}

#[test]
fn approve_decline_refund_and_no_cancel() {
    let t = rig(&[]);
    let sale = t.pay("sale-ok", 1000);
    assert_approved(&sale);
    let data = &sale["data"];
    assert!(
        data["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("IOT"),
        "{sale}"
    );
    assert_eq!(data["approval_code"].as_str().unwrap().len(), 6, "{sale}");
    assert_eq!(data["card"]["scheme"], "VISA");
    // IOT Pay sends it masked already; posbridge keeps it masked and keeps the last four.
    assert_eq!(data["card"]["masked_pan"], "************1111", "{sale}");
    assert_eq!(data["mch_order_no"], order_no("sale-ok"));
    assert_eq!(t.calls(&order_no("sale-ok")), 1);
    assert_eq!(t.order("sale-ok")["status"], 2);

    let declined = t.pay("sale-declined", 1051);
    assert_error(&declined, "default_error", "declined");
    assert!(
        declined["message"]
            .as_str()
            .unwrap()
            .contains("DECLINED BY ISSUER"),
        "{declined}"
    );
    assert_eq!(t.order("sale-declined")["status"], 4);

    let refund = t.refund("refund-1", 400, data);
    assert_eq!(refund["code"], 0, "{refund}");
    assert_eq!(refund["data"]["status"], "refunded");
    assert_eq!(t.calls(&refund_no("refund-1")), 1);
    assert_eq!(t.order("sale-ok")["refunded"], 400);
    let too_much = t.refund("refund-2", 700, data);
    assert_error(&too_much, "default_error", "declined");
    assert!(
        too_much["message"].as_str().unwrap().contains("exceeds"),
        "{too_much}"
    );
    assert_eq!(t.order("sale-ok")["refunded"], 400);

    let cancel =
        t.d.request(json!({"action": "cancel", "request_id": "cancel-1",
                                    "amount": 1000, "primary_transaction": data}));
    assert_error(&cancel, "default_error", "not_supported");
    assert_eq!(t.r.requests()["/v1/create_order"], 2);
    t.assert_no_secret();
}

#[test]
fn faults_before_create_order_acts_are_not_processed() {
    let t = rig(&[]);
    for (i, kind) in ["error", "drop", "timeout", "garbage"].iter().enumerate() {
        t.r.arm(json!({"path": "/v1/create_order", "kind": kind, "after": false}));
        let id = format!("before-{kind}");
        let a = t.pay(&id, 1000 + i as u64);
        assert_error(&a, "default_error", "not_processed");
        assert_eq!(t.calls(&order_no(&id)), 0, "{kind}");
        assert!(t.order(&id).is_null(), "{kind}");
    }
    t.assert_no_secret();
}

#[test]
fn lost_answers_after_the_charge_are_found_by_query_order() {
    let t = rig(&[]);
    for kind in ["error", "drop", "timeout", "garbage"] {
        t.r.arm(json!({"path": "/v1/create_order", "kind": kind, "after": true}));
        let id = format!("after-{kind}");
        let started = Instant::now();
        let a = t.pay(&id, 1200);
        assert_approved(&a);
        eprintln!(
            "{kind} after the charge: approved in {:?}",
            started.elapsed()
        );
        assert_eq!(
            t.calls(&order_no(&id)),
            1,
            "{kind}: exactly one create_order"
        );
    }
    // A slow backend within the timeout is simply slower.
    t.r.arm(json!({"path": "/v1/create_order", "kind": "slow", "delay_ms": 500}));
    assert_approved(&t.pay("slow-ok", 1300));
    assert_eq!(t.r.requests()["/v1/create_order"], 5);
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() >= 4);
    t.assert_no_secret();
}

#[test]
fn a_terminal_slower_than_the_timeout_is_reconciled() {
    let t = rig_with(KEY, &[("slow_ms", "3000")], "timeout_ms = 1000");
    // The first status checks get garbage: still unknown, never lost.
    t.r.arm(json!({"path": "/v1/query_order", "kind": "garbage", "count": 5}));
    let started = Instant::now();
    let first = t.pay("slow-sale", 2093);
    assert_error(&first, "unknown_result_error", "timeout");
    eprintln!("first answer after {:?}", started.elapsed());
    let last = t.settled("slow-sale", Duration::from_secs(15));
    assert_approved(&last);
    eprintln!("reconciled after {:?}", started.elapsed());
    assert_eq!(t.calls(&order_no("slow-sale")), 1);
    t.assert_no_secret();
}

#[test]
fn kill9_with_a_sale_in_flight_charges_once() {
    let mut t = rig_with(KEY, &[("slow_ms", "2500")], "timeout_ms = 5000");
    let socket = t.d.socket.clone();
    let pos = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.write_all(b"{\"action\":\"pay\",\"request_id\":\"crash-sale\",\"amount\":3093}\n")
            .unwrap();
        // The daemon dies before answering: EOF or a reset, never an answer.
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    });
    // Kill the daemon while the terminal is busy with the sale (status 1, paying).
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.order("crash-sale")["status"] != 1 {
        assert!(Instant::now() < deadline, "create_order never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.order("crash-sale")["status"], 1, "the terminal is busy");
    t.d.kill9();
    assert!(
        pos.join().unwrap().is_empty(),
        "no answer from a killed daemon"
    );
    t.d.restart();
    let a = t.settled("crash-sale", Duration::from_secs(15));
    assert_approved(&a);
    assert_eq!(t.calls(&order_no("crash-sale")), 1);
    assert_eq!(t.r.requests()["/v1/create_order"], 1);
    assert!(t.d.log().contains("crash-sale"));
    t.assert_no_secret();
}

#[test]
fn a_bad_response_signature_is_never_approved() {
    let mut t = rig(&[("response_key", "forged-key")]);
    let first = t.pay("forged", 1000);
    assert_error(&first, "unknown_result_error", "bad_signature");
    std::thread::sleep(Duration::from_millis(1000));
    let still =
        t.d.request(json!({"action": "get_result", "request_id": "forged"}));
    assert_eq!(still["error_type"], "unknown_result_error", "{still}");
    assert!(t.d.log().contains("signature failed"));
    assert_eq!(t.calls(&order_no("forged")), 1);
    // The backend answers honestly again: the real outcome arrives, still one charge.
    let addr = t.r.addr().to_owned();
    let state = t.r.state.clone();
    t.r.kill();
    t.r = Replica::start_at(&state, &addr, "iotpay", KEY, &[]);
    let last = t.settled("forged", Duration::from_secs(10));
    assert_approved(&last);
    assert_eq!(t.calls(&order_no("forged")), 1);
    t.assert_no_secret();
}

#[test]
fn a_wrong_key_is_refused_and_never_approved() {
    let t = rig_with("wrong-key-1234", &[], "");
    let a = t.pay("wrong-key", 1000);
    assert_error(&a, "default_error", "unauthorized");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("sign error") && msg.contains("key"), "{a}");
    assert!(t.order("wrong-key").is_null());
    t.assert_no_secret();
}

#[test]
fn a_lost_refund_answer_is_reissued_with_the_same_number_when_configured() {
    let t = rig_with(KEY, &[], "refund_recheck = \"reissue\"");
    let sale = t.pay("sale-r", 1000);
    assert_approved(&sale);
    t.r.arm(json!({"path": "/v1/refund_order", "kind": "drop", "after": true}));
    let first = t.refund("refund-r", 400, &sale["data"]);
    assert_error(&first, "unknown_result_error", "timeout");
    let last = t.settled("refund-r", Duration::from_secs(10));
    assert_eq!(last["data"]["status"], "refunded", "{last}");
    // Sent twice under one mchRefundNo, refunded once.
    assert_eq!(t.calls(&refund_no("refund-r")), 2);
    assert_eq!(t.order("sale-r")["refunded"], 400);
    t.assert_no_secret();
}

#[test]
fn a_lost_refund_answer_waits_for_a_manual_check_by_default() {
    let t = rig(&[]);
    let sale = t.pay("sale-m", 1000);
    assert_approved(&sale);
    t.r.arm(json!({"path": "/v1/refund_order", "kind": "error", "after": true}));
    let first = t.refund("refund-m", 300, &sale["data"]);
    assert_error(&first, "unknown_result_error", "manual_check");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains(&refund_no("refund-m")),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let still =
        t.d.request(json!({"action": "get_result", "request_id": "refund-m"}));
    assert_eq!(still["error_type"], "unknown_result_error", "{still}");
    assert_eq!(t.calls(&refund_no("refund-m")), 1, "never re-sent");
    assert_eq!(t.order("sale-m")["refunded"], 300);
    t.assert_no_secret();
}

/// Posts `params` (signed with `key`) to the replica's `call`, as the provider does.
fn post(r: &Replica, call: &str, mut params: serde_json::Map<String, Value>, key: &str) -> Value {
    let sign = posbridge::provider::sign::iotpay_sign(&params, key);
    params.insert("sign".into(), json!(sign));
    let body = [("params", Value::Object(params).to_string())];
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

#[test]
fn the_replica_refuses_a_repeated_order_number_and_a_bad_sign() {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(dir.path(), "iotpay", KEY, &[("terminal_ms", "0")]);
    let order = json!({"mchId": "1", "mchOrderNo": "ORDER-1", "channelId": "CC_PAX",
        "currency": "CAD", "amount": 500, "clientIp": "127.0.0.1",
        "notifyUrl": "http://localhost", "subject": "s", "body": "b", "extra": "{\"a\":1}",
        "jobNo": "cashier1"});
    let order = order.as_object().unwrap().clone();
    let first = post(&r, "create_order", order.clone(), KEY);
    assert_eq!(first["payOrder"]["status"], 2, "{first}");
    posbridge::provider::sign::iotpay_verify(first.as_object().unwrap(), KEY).unwrap();
    let again = post(&r, "create_order", order, KEY);
    assert_eq!(again["retCode"], "FAIL", "{again}");
    assert!(again["retMsg"].as_str().unwrap().contains("duplicate"));
    let state = r.state();
    assert_eq!(state["calls"]["ORDER-1"], 2);
    assert_eq!(
        state["orders"].as_object().unwrap().len(),
        1,
        "charged once"
    );
    let query = json!({"mchId": "1", "mchOrderNo": "ORDER-1"});
    let forged = post(
        &r,
        "query_order",
        query.as_object().unwrap().clone(),
        "not-the-key",
    );
    assert_eq!(forged, json!({"retCode": "FAIL", "retMsg": "sign error"}));
}
