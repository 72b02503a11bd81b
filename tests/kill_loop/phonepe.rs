//! PhonePe under the kill loop: the PhonePe replica (its customer pays 150 ms after the init,
//! a refund settles 150 ms after it is asked, and it acts on an init 40 ms after receiving it
//! even if the caller has hung up) and a daemon pointed at it. Sales send a 2 s handover
//! window, so a "not found" is believed 2 x 1 s + 2 s + 100 ms after the intent (the
//! provider's rule, unchanged). A charge is a PAYMENT the replica holds as SUCCESS, a refund a
//! REFUND as SUCCESS; the record names the request through `orderId` / `merchantOrderId`.
//! [`start_blind`] is the same rig with a status API that loses each sale for a while after
//! finding it once (issue 16's "status blind" phase).

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kill_loop::{disarm, Charge, Kind, Rig, Rng};
use crate::common::replica::Replica;
use crate::common::Daemon;

const SALT: &str = "pp-kill-loop-salt-7c1e04";

pub struct PhonePe {
    d: Daemon,
    replica: Replica,
    _dir: tempfile::TempDir,
    settle: Duration,
}

pub fn start() -> PhonePe {
    start_with(&[], 3000, Duration::from_secs(30))
}

/// The "status blind" phase (issue 16): the replica's status API finds each sale once (so the
/// client has seen it), then does not find it for the next 45 checks (about 4.5 s at 100 ms,
/// past the 4.1 s after which a "not found" without evidence would be believed), then finds it
/// again. The customer pays 300 ms after the init, so the one check that finds a sale finds it
/// pending: every charged sale meets the blindness (at 150 ms most were already paid at that
/// check and never did, and a provider that kept no evidence lost only about 2 of them). The operation bound is 6 s (5.7 s of checks), so a sale followed to its end meets the
/// blindness past its window within the request. 0 of them may be answered "not charged".
/// The settle limit leaves room for the contradiction backoff (up to 6.4 s between checks).
pub fn start_blind() -> PhonePe {
    start_with(
        &[
            ("status_blind", "45"),
            ("status_blind_after", "1"),
            ("pay_after_ms", "300"),
        ],
        6000,
        Duration::from_secs(90),
    )
}

fn start_with(extra: &[(&str, &str)], timeout_ms: u64, settle: Duration) -> PhonePe {
    let dir = tempfile::tempdir().unwrap();
    let mut options = vec![
        ("pay_after_ms", "150"),
        ("refund_after_ms", "150"),
        ("init_delay_ms", "40"),
    ];
    options.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
    options.extend_from_slice(extra);
    let replica = Replica::start(dir.path(), "phonepe", SALT, &options);
    let salt = dir.path().join("salt_key");
    std::fs::write(&salt, format!("{SALT}\n")).unwrap();
    let config = format!(
        "default_provider = \"phonepe\"\n[providers.phonepe]\nbase_url = \"{}\"\n\
         merchant_id = \"MERCH1\"\nstore_id = \"STORE1\"\nterminal_id = \"TERM1\"\n\
         salt_key_file = \"{}\"\nsalt_index = 1\nprovider_id = \"PROV1\"\ntimeout_ms = {timeout_ms}\n\
         request_timeout_ms = 1000\nstatus_poll_ms = [100]\n",
        replica.url,
        salt.display()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    PhonePe {
        d,
        replica,
        _dir: dir,
        settle,
    }
}

impl Rig for PhonePe {
    fn name(&self) -> &'static str {
        "phonepe"
    }

    fn daemon(&mut self) -> &mut Daemon {
        &mut self.d
    }

    fn prefix(&self) -> &'static str {
        "pp_"
    }

    fn sale_amount(&self, rng: &mut Rng) -> u64 {
        // ..51: the card is declined; ..77 (left pending until expiry) is not used.
        let tail = if rng.chance(15) { 51 } else { 10 };
        rng.range(1, 80) * 100 + tail
    }

    fn params(&self) -> Value {
        json!({"handover_seconds": 2})
    }

    fn refunds(&self) -> bool {
        true
    }

    fn slow_next(&mut self, kind: Kind, rng: &mut Rng) -> Option<(Option<u64>, Duration)> {
        let path = match kind {
            Kind::Sale => "/v1/payment/init",
            Kind::Refund => "/v3/credit/backToSource",
        };
        let ms = rng.range(200, 500);
        self.replica
            .arm(json!({"path": path, "kind": "slow", "delay_ms": ms}));
        Some((None, Duration::from_millis(ms)))
    }

    fn clear_faults(&mut self) {
        disarm(&self.replica.url);
    }

    fn charges(&self) -> Vec<Charge> {
        let state = self.replica.state();
        let mut out = Vec::new();
        for (id, t) in state["transactions"].as_object().into_iter().flatten() {
            if t["status"] != "SUCCESS" {
                continue;
            }
            let (kind, named) = match t["kind"].as_str() {
                Some("PAYMENT") => (Kind::Sale, &t["payload"]["orderId"]),
                _ => (Kind::Refund, &t["payload"]["merchantOrderId"]),
            };
            out.push(Charge {
                id: id.clone(),
                request: named.as_str().map(str::to_owned),
                kind,
            });
        }
        out
    }

    fn settle_limit(&self) -> Duration {
        // The last sale's "not found" is believable 4.1 s after its intent; room for restarts
        // (and, in the status-blind phase, for the contradiction backoff).
        self.settle
    }
}
