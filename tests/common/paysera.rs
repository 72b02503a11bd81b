//! The Paysera rig: the real daemon with `base_url` at the Paysera replica, and what the
//! replica's state says about one sale (its transaction, order, the money-moving calls) and
//! about the spot (closed, no pending order).

use std::time::Duration;

use serde_json::{json, Value};

use super::replica::Replica;
use super::Daemon;

pub const KEY: &str = "ps-test-mac-key-9f3b1c77";

pub struct Rig {
    pub d: Daemon,
    pub r: Replica,
    pub _dir: tempfile::TempDir,
}

/// How a rig is set up; `Default` is the plain one.
pub struct Setup<'a> {
    pub daemon_key: &'a str,
    pub window_ms: u64,
    pub replica_options: &'a [(&'a str, &'a str)],
    /// The `spot_id = ...` value as written in TOML.
    pub spot_id: &'a str,
    /// Extra lines for `[providers.paysera]`, and lines before it.
    pub extra: &'a str,
    pub top: &'a str,
    /// Extra environment for the daemon.
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            daemon_key: KEY,
            window_ms: 3000,
            replica_options: &[],
            spot_id: "\"7\"",
            extra: "",
            top: "",
            env: &[],
        }
    }
}

pub fn rig_with(s: Setup<'_>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut options = vec![("client_id", "till-test")];
    options.extend_from_slice(s.replica_options);
    let r = Replica::start(dir.path(), "paysera", KEY, &options);
    let key_file = dir.path().join("mac_key");
    std::fs::write(&key_file, format!("{}\n", s.daemon_key)).unwrap();
    let config = format!(
        r#"default_provider = "paysera"
{}
[providers.paysera]
base_url = "{}"
client_id = "till-test"
mac_key_file = "{}"
spot_id = {}
currency = "EUR"
timeout_ms = {}
status_poll_ms = [100]
{}
"#,
        s.top,
        r.url,
        key_file.display(),
        s.spot_id,
        s.window_ms,
        s.extra
    );
    let d = Daemon::start_with(Some(&config), s.env);
    Rig { d, r, _dir: dir }
}

pub fn rig(window_ms: u64, opts: &[(&str, &str)]) -> Rig {
    rig_with(Setup {
        window_ms,
        replica_options: opts,
        ..Default::default()
    })
}

impl Rig {
    pub fn pay(&self, id: &str, amount: u64) -> Value {
        self.d
            .request(json!({"action": "pay", "request_id": id, "amount": amount}))
    }

    /// Every transaction the replica holds for sale `id` (its description names the sale).
    pub fn transactions(&self, id: &str) -> Vec<Value> {
        let state = self.r.state();
        let want = format!("Sale {id}");
        state["transactions"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter(|t| t["payments"][0]["description"] == want.as_str())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one transaction of sale `id`.
    pub fn transaction(&self, id: &str) -> Value {
        let list = self.transactions(id);
        assert_eq!(list.len(), 1, "one transaction for {id}: {list:?}");
        list[0].clone()
    }

    /// Money-moving calls the replica saw for sale `id`: (orders created, confirms).
    pub fn calls(&self, id: &str) -> (u64, u64) {
        self.transactions(id).iter().fold((0, 0), |(c, f), t| {
            (
                c + t["order_creates"].as_u64().unwrap_or(0),
                f + t["confirms"].as_u64().unwrap_or(0),
            )
        })
    }

    /// The replica's order for sale `id`.
    pub fn order(&self, id: &str) -> Value {
        let key = self.transaction(id)["key"].clone();
        let state = self.r.state();
        let found: Vec<&Value> = state["orders"]
            .as_object()
            .unwrap()
            .values()
            .filter(|o| o["transaction_key"] == key)
            .collect();
        assert_eq!(found.len(), 1, "one order for {id}: {state}");
        found[0].clone()
    }

    /// The spot is closed and no order anywhere is left pending.
    pub fn assert_spot_clean(&self) {
        let state = self.r.state();
        assert_eq!(state["spots"]["7"]["status"], "closed", "{state}");
        let pending: Vec<&Value> = state["orders"]
            .as_object()
            .unwrap()
            .values()
            .filter(|o| o["status"] == "pending")
            .collect();
        assert!(pending.is_empty(), "orders left pending: {state}");
    }

    /// get_result until the outcome is no longer unknown.
    pub fn settled(&self, id: &str) -> Value {
        self.d.await_result(id, Duration::from_secs(20), |v| {
            v["error_type"] != "unknown_result_error"
        })
    }

    /// Every test ends here: the MAC key never reached the log.
    pub fn finish(self) {
        let log = self.d.log();
        assert!(!log.contains(KEY), "the MAC key is in the daemon log");
        assert!(
            !log.contains("mac=\""),
            "an Authorization header is in the log"
        );
    }
}

pub fn approved(v: &Value) {
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(v["data"]["provider"], "paysera", "{v}");
}

pub fn failed(v: &Value, reason: &str) {
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}
