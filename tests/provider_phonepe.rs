//! PhonePe end to end: the real daemon over its socket, `base_url` pointed at the PhonePe
//! replica (`posbridge replica phonepe`). Sales, declines, expiry, cancel, refund, signing with
//! a base path, a wrong key, duplicate ids; faults and crashes are in `provider_phonepe/`.

mod common;

#[path = "provider_phonepe/abort.rs"]
mod abort;
#[path = "provider_phonepe/clock.rs"]
mod clock;
#[path = "provider_phonepe/document.rs"]
mod document;
#[path = "provider_phonepe/evidence.rs"]
mod evidence;
#[path = "provider_phonepe/faults.rs"]
mod faults;
#[path = "provider_phonepe/progress.rs"]
mod progress;
#[path = "provider_phonepe/reversals.rs"]
mod reversals;
#[path = "provider_phonepe/witness.rs"]
mod witness;

use std::path::PathBuf;
use std::time::Duration;

use common::replica::Replica;
use common::{Client, Daemon};
use serde_json::{json, Value};

pub const SALT: &str = "pp-salt-5f0c9e1d-test";
pub const INIT: &str = "/v1/payment/init";

/// The orderId the client sends for `request_id` (docs/providers.md): each character other
/// than `A-Z a-z 0-9 _` becomes `_`, cut to 37.
pub fn order_id_of(request_id: &str) -> String {
    request_id
        .chars()
        .take(37)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub replica: Replica,
    pub d: Daemon,
}

pub fn salt_file(dir: &tempfile::TempDir, salt: &str) -> PathBuf {
    let path = dir.path().join("salt_key");
    std::fs::write(&path, format!("{salt}\n")).unwrap();
    path
}

/// The daemon config; `over` replaces or adds `[providers.phonepe]` keys (TOML values).
pub fn config(url: &str, salt_file: &std::path::Path, over: &[(&str, &str)]) -> String {
    let mut keys: Vec<(String, String)> = [
        ("base_url", format!("{url:?}")),
        ("merchant_id", "\"MERCH1\"".into()),
        ("store_id", "\"STORE1\"".into()),
        ("terminal_id", "\"TERM1\"".into()),
        (
            "salt_key_file",
            format!("{:?}", salt_file.display().to_string()),
        ),
        ("salt_index", "1".into()),
        ("provider_id", "\"PROV1\"".into()),
        ("timeout_ms", "10000".into()),
        ("request_timeout_ms", "1000".into()),
        ("status_poll_ms", "[100]".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in over {
        match keys.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => keys.push((k.to_string(), v.to_string())),
        }
    }
    let body: Vec<String> = keys.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!(
        "default_provider = \"phonepe\"\n[providers.phonepe]\n{}\n",
        body.join("\n")
    )
}

impl Setup {
    pub fn new(replica_opts: &[(&str, &str)], over: &[(&str, &str)]) -> Setup {
        Setup::with_base(replica_opts, over, "")
    }

    /// `base_path` is appended to the replica's URL in `base_url` (e.g. `/enterprise-sandbox`).
    pub fn with_base(
        replica_opts: &[(&str, &str)],
        over: &[(&str, &str)],
        base_path: &str,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::start(dir.path(), "phonepe", SALT, replica_opts);
        let salt = salt_file(&dir, SALT);
        let url = format!("{}{base_path}", replica.url);
        let d = Daemon::start_with(Some(&config(&url, &salt, over)), &[]);
        Setup { dir, replica, d }
    }

    pub fn pay(&self, id: &str, amount: u64, params: Value) -> Value {
        self.d
            .request(json!({"action": "pay", "request_id": id, "amount": amount, "params": params}))
    }

    /// The replica's transaction ids made for `request_id`: those whose init (orderId) or
    /// backToSource (merchantOrderId) carried it, mapped as the client maps it.
    pub fn txn_ids(&self, request_id: &str) -> Vec<String> {
        let order = order_id_of(request_id);
        let state = self.replica.state();
        let Some(all) = state["transactions"].as_object() else {
            return Vec::new();
        };
        all.iter()
            .filter(|(_, t)| {
                t["payload"]["orderId"] == order.as_str()
                    || t["payload"]["merchantOrderId"] == order.as_str()
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The replica's transaction for `request_id` (null when there is none).
    pub fn txn(&self, request_id: &str) -> Value {
        match self.txn_ids(request_id).first() {
            Some(id) => self.replica.state()["transactions"][id].clone(),
            None => Value::Null,
        }
    }

    /// Money-moving calls (init, backToSource) the replica got for `request_id`'s transactions.
    pub fn calls(&self, request_id: &str) -> u64 {
        let state = self.replica.state();
        self.txn_ids(request_id)
            .iter()
            .map(|id| state["calls"][id].as_u64().unwrap_or(0))
            .sum()
    }

    /// Init requests the replica got, whatever became of them.
    pub fn inits(&self) -> u64 {
        self.replica.requests()[INIT].as_u64().unwrap_or(0)
    }

    /// Polls get_result until the outcome is final (code 0 or default_error).
    pub fn settled(&self, id: &str, limit: Duration) -> Value {
        self.d.await_result(id, limit, |a| {
            a["code"] == 0 || a["error_type"] == "default_error"
        })
    }

    /// Ends every test: the salt key never reached the log.
    pub fn no_secret_in_log(&self) {
        let log = self.d.log();
        assert!(!log.contains(SALT), "the salt key is in the daemon log");
        assert!(!log.is_empty());
    }
}

/// Sends `req` on its own connection from another thread; the answer comes from `join()`.
pub fn in_background(d: &Daemon, req: Value) -> std::thread::JoinHandle<Option<Value>> {
    let socket = d.socket.clone();
    std::thread::spawn(move || {
        let mut c = Client::connect(&socket).ok()?;
        c.send_raw(format!("{req}\n").as_bytes());
        c.read_line().and_then(|l| serde_json::from_str(&l).ok())
    })
}

pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn a_sale_is_approved_with_rrn_and_masked_card_after_one_init() {
    let s = Setup::new(&[], &[]);
    let a = s.pay("sale-1", 1000, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let data = &a["data"];
    assert_eq!(data["status"], "approved");
    assert_eq!(data["provider"], "phonepe");
    assert_eq!(data["amount"], 1000);
    let txn = s.txn("sale-1");
    assert_eq!(s.txn_ids("sale-1"), [data["backend_id"].as_str().unwrap()]);
    assert_eq!(data["merchant_transaction_id"], data["backend_id"]);
    // The order of `data` is part of the answer (tests/golden.rs covers the sim only).
    assert_eq!(
        common::keys_of(data),
        common::approved_keys(
            "currency provider_reference rrn card backend_id \
             merchant_transaction_id phonepe_amount payment_mode"
        ),
        "{a}"
    );
    assert_eq!(data["provider_reference"], txn["phonepe_id"]);
    assert_eq!(data["rrn"], txn["reference_number"]);
    let last4 = txn["card"]["last4Digits"].as_str().unwrap();
    assert_eq!(data["card"]["masked_pan"], format!("************{last4}"));
    assert_eq!(data["card"]["scheme"], txn["card"]["cardNetwork"]);
    // The init as PhonePe saw it: EDC defaults, header, and exactly one call.
    let p = &txn["payload"];
    assert_eq!(p["solutionType"], "EDC");
    assert_eq!(p["paymentModes"], json!(["CARD", "DQR"]));
    assert_eq!(p["integrationMappingType"], "ONE_TO_ONE");
    assert_eq!(p["terminalId"], "TERM1");
    assert_eq!(txn["provider_id"], "PROV1");
    assert_eq!(s.calls("sale-1"), 1);
    // get_result replays the same answer.
    let again =
        s.d.request(json!({"action": "get_result", "request_id": "sale-1"}));
    assert_eq!(again, a);
    s.no_secret_in_log();
}

#[test]
fn amount_ending_51_is_declined_and_never_approved() {
    let s = Setup::new(&[], &[]);
    let a = s.pay("sale-51", 1051, json!({}));
    assert_eq!(a["error_type"], "default_error", "{a}");
    assert_eq!(a["reason"], "declined");
    assert!(
        a["message"].as_str().unwrap().contains("PAYMENT_DECLINED"),
        "{a}"
    );
    assert_eq!(s.txn("sale-51")["status"], "FAILED");
    assert_eq!(s.calls("sale-51"), 1);
    s.no_secret_in_log();
}

#[test]
fn amount_ending_77_expires_after_the_handover_window() {
    let s = Setup::new(&[], &[]);
    let a = s.pay(
        "sale-77",
        1077,
        json!({"handover_seconds": 1, "payment_modes": ["CARD"]}),
    );
    assert_eq!(a["reason"], "expired", "{a}");
    let txn = s.txn("sale-77");
    assert_eq!(txn["status"], "EXPIRED");
    assert_eq!(txn["payload"]["timeAllowedForHandoverToTerminalSeconds"], 1);
    assert_eq!(txn["payload"]["paymentModes"], json!(["CARD"]));
    s.no_secret_in_log();
}

#[test]
fn a_base_url_with_the_sandbox_prefix_is_signed_without_it() {
    let s = Setup::with_base(&[], &[], "/enterprise-sandbox");
    let a = s.pay("sale-uat", 1200, json!({}));
    assert_eq!(a["code"], 0, "{a}");
    let seen = s.replica.requests();
    assert_eq!(seen["/enterprise-sandbox/v1/payment/init"], 1, "{seen}");
    assert!(seen.get("/v1/payment/init").is_none(), "{seen}");
    let c = s.d.request(
        json!({"action": "cancel", "request_id": "cancel-uat", "amount": 1200,
        "primary_transaction": a["data"]}),
    );
    assert_eq!(c["reason"], "already_completed", "{c}");
    s.no_secret_in_log();
}

#[test]
fn a_wrong_salt_key_is_unauthorized_and_never_approved() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(dir.path(), "phonepe", SALT, &[]);
    let wrong = salt_file(&dir, "not-the-salt-key");
    let d = Daemon::start_with(Some(&config(&replica.url, &wrong, &[])), &[]);
    let a = d.request(json!({"action": "pay", "request_id": "sale-k", "amount": 100}));
    assert_eq!(a["error_type"], "default_error", "{a}");
    assert_eq!(a["reason"], "unauthorized");
    assert!(a["message"].as_str().unwrap().contains("salt_key"), "{a}");
    assert_eq!(replica.state()["transactions"], json!({}));
    assert!(!d.log().contains("not-the-salt-key"));
}

#[test]
fn a_dqr_device_sale_sends_the_dqr_payload() {
    let s = Setup::new(&[], &[("solution_type", "\"DQR_DEVICE\"")]);
    let a = s.pay("sale-q1", 300, json!({"expires_in": 45}));
    assert_eq!(a["code"], 0, "{a}");
    let p = &s.txn("sale-q1")["payload"];
    assert_eq!(p["solutionType"], "DQR_DEVICE");
    assert_eq!(p["expiresIn"], 45);
    assert!(p.get("paymentModes").is_none(), "{p}");
    s.no_secret_in_log();
}

#[test]
fn a_solution_not_enabled_is_provider_unavailable_with_phonepes_words() {
    let s = Setup::new(
        &[("solutions", "EDC")],
        &[("solution_type", "\"DQR_DEVICE\"")],
    );
    let a = s.pay("sale-ne", 300, json!({}));
    assert_eq!(a["reason"], "provider_unavailable", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("SOLUTION_NOT_ENABLED"),
        "{a}"
    );
    s.no_secret_in_log();
}

#[test]
fn bad_params_are_refused_before_phonepe_is_called() {
    let s = Setup::new(&[], &[]);
    let a = s.pay(
        "sale-bp",
        300,
        json!({"integration_mapping_type": "OPEN", "short_order_id": "12"}),
    );
    assert_eq!(a["reason"], "invalid_request", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("params.short_order_id"),
        "{a}"
    );
    assert_eq!(s.inits(), 0);
    s.no_secret_in_log();
}

#[test]
fn a_request_id_reused_on_a_fresh_counter_is_a_new_sale_with_its_own_id() {
    let s = Setup::new(&[], &[]);
    let first = s.pay("sale-dup", 900, json!({}));
    assert_eq!(first["code"], 0, "{first}");
    // A second counter (fresh journal, same terminal) numbering its sales alike: a new
    // operation, a new merchantTransactionId, its own answer (never the old sale's).
    let salt = salt_file(&s.dir, SALT);
    let other = Daemon::start_with(Some(&config(&s.replica.url, &salt, &[])), &[]);
    let again = other.request(json!({"action": "pay", "request_id": "sale-dup", "amount": 901}));
    assert_eq!(again["data"]["status"], "approved", "{again}");
    assert_eq!(again["data"]["amount"], 901);
    assert_ne!(again["data"]["backend_id"], first["data"]["backend_id"]);
    let ids = s.txn_ids("sale-dup");
    assert_eq!(ids.len(), 2, "two sales, two PhonePe transactions: {ids:?}");
    let state = s.replica.state();
    for id in &ids {
        assert_eq!(state["calls"][id], 1, "each init sent once");
    }
    let amounts: std::collections::BTreeSet<u64> = ids
        .iter()
        .map(|id| state["transactions"][id]["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(amounts, [900, 901].into());
    s.no_secret_in_log();
}

#[test]
fn status_calls_name_our_own_id_in_the_request_and_in_reconciliation() {
    let s = Setup::new(&[("pay_after_ms", "800")], &[("timeout_ms", "600")]);
    let a = s.pay("saleid", 1000, json!({}));
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    let r = s.settled("saleid", Duration::from_secs(15));
    assert_eq!(r["data"]["status"], "approved", "{r}");
    let state = s.replica.state();
    let (ours, txn) = state["transactions"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let theirs = txn["phonepe_id"].as_str().unwrap();
    let seen = s.replica.requests();
    let status: Vec<&String> = seen
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.ends_with("/status"))
        .collect();
    assert_eq!(
        status,
        [&format!("/v1/payment/MERCH1/{ours}/status")],
        "never PhonePe's id {theirs}"
    );
    assert!(seen[status[0].as_str()].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(r["data"]["backend_id"], ours.as_str());
    s.no_secret_in_log();
}
