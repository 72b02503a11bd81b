//! The `iotpay` provider end to end: the real daemon over its socket, IOT Pay played by the
//! loopback replica written from IOT Pay's document (`posbridge replica iotpay`). Sales,
//! declines (the document's status 9), the receipt, refunds, every injected fault, answers the
//! client must not take as final (duplicates, unknown shapes, failed queries), "no such order"
//! timing, a killed daemon, forged answers and a wrong key; each test counts the replica's
//! money-moving calls and checks the daemon's log never shows the key.

mod common;

use std::time::{Duration, Instant};

use common::replica::Replica;
use common::Daemon;
use serde_json::{json, Value};

const KEY: &str = "iotpay-test-key-5f1c0e";

/// The merchant id the daemon is configured with and the replica knows (IOT Pay assigns it).
const MCH: &str = "10000701";

/// `options` with the replica's `mch_id` set to [`MCH`] unless they name one.
fn with_mch<'a>(options: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = options.to_vec();
    if !options.iter().any(|(k, _)| *k == "mch_id") {
        all.push(("mch_id", MCH));
    }
    all
}

struct Rig {
    d: Daemon,
    r: Replica,
    /// Holds the replica's state and the key file.
    _dir: tempfile::TempDir,
}

/// A replica with `options` and a daemon pointed at it with the key `key` and the
/// `[providers.iotpay]` lines `extra` (defaults: timeout_ms 1500, status_poll_ms [100, 200],
/// not_found_final_ms 500).
fn rig_with(key: &str, options: &[(&str, &str)], extra: &str) -> Rig {
    rig_full(key, options, "", extra)
}

/// As [`rig_with`], with `top` (TOML before the provider section, e.g. `[journal]`).
fn rig_full(key: &str, options: &[(&str, &str)], top: &str, extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(dir.path(), "iotpay", KEY, &with_mch(options));
    let d = Daemon::start_with(Some(&config(&r.url, dir.path(), key, top, extra)), &[]);
    Rig { d, r, _dir: dir }
}

fn config(url: &str, dir: &std::path::Path, key: &str, top: &str, extra: &str) -> String {
    let key_file = dir.join("iotpay.key");
    std::fs::write(&key_file, key).unwrap();
    let mut config = format!(
        "default_provider = \"iotpay\"\n{top}\n[providers.iotpay]\nbase_url = \"{url}/v1/\"\n\
         mch_id = \"10000701\"\nkey_file = \"{}\"\njob_no = \"cashier1\"\ncurrency = \"CAD\"\n{extra}\n",
        key_file.display()
    );
    for (key, default) in [
        ("timeout_ms", "1500"),
        ("status_poll_ms", "[100, 200]"),
        ("not_found_final_ms", "500"),
    ] {
        if !extra.contains(key) {
            config.push_str(&format!("{key} = {default}\n"));
        }
    }
    config
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

    /// The replica's orders made for the POS request `id` (found by the requestId the client
    /// puts in `extra`), as (mchOrderNo, order).
    fn orders_of(&self, id: &str) -> Vec<(String, Value)> {
        let needle = json!({"requestId": id}).to_string();
        self.r.state()["orders"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, o)| o["request"]["extra"] == needle)
            .map(|(no, o)| (no.clone(), o.clone()))
            .collect()
    }

    /// The one order of request `id` (Null if there is none).
    fn order(&self, id: &str) -> Value {
        let mut all = self.orders_of(id);
        assert!(all.len() <= 1, "{id}: {all:?}");
        all.pop().map(|(_, o)| o).unwrap_or(Value::Null)
    }

    /// create_order calls the replica received for request `id`'s order numbers.
    fn charges(&self, id: &str) -> u64 {
        let calls = self.r.state()["calls"].clone();
        self.orders_of(id)
            .iter()
            .map(|(no, _)| calls[no].as_u64().unwrap_or(0))
            .sum()
    }

    fn refund_calls(&self, no: &str) -> u64 {
        self.r.state()["calls"][no].as_u64().unwrap_or(0)
    }

    fn settled(&self, id: &str, limit: Duration) -> Value {
        self.d
            .await_result(id, limit, |a| a["error_type"] != "unknown_result_error")
    }

    /// `answer` (to `id`) when it is final, else what get_result answers once it is (or
    /// after `limit`).
    fn final_of(&self, id: &str, answer: Value, limit: Duration) -> Value {
        if answer["error_type"] == "unknown_result_error" {
            self.settled(id, limit)
        } else {
            answer
        }
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

#[path = "provider_iotpay/abort.rs"]
mod abort;
#[path = "provider_iotpay/clock.rs"]
mod clock;
#[path = "provider_iotpay/evidence.rs"]
mod evidence;
#[path = "provider_iotpay/flows.rs"]
mod flows;
#[path = "provider_iotpay/not_final.rs"]
mod not_final;
#[path = "provider_iotpay/replica.rs"]
mod replica;
