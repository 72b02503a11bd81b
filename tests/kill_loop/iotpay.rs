//! IOT Pay under the kill loop: the IOT Pay replica (its terminal finishes a sale 150 ms after
//! create_order, on its own task, so a daemon killed meanwhile does not stop it; amount ..93
//! takes 900 ms) and a daemon pointed at it with `timeout_ms = 1500` and
//! `not_found_final_ms = 500` (IOT Pay's 60 s shortened, as the config allows for tests).
//! After a restart the provider takes the create_order wait to have ended as late as it can
//! have (created_at + timeout_ms + 10 s), so a sale IOT Pay never got settles about 12 s after
//! its intent. A charge is an order in status 2 (paid) or 3 (refunded); the order names its
//! request in `extra` (`{"requestId": ...}`). No refunds: a refund whose answer is lost stays
//! unknown for an operator by design (IOT Pay has no refund query), which a kill makes common.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kill_loop::{disarm, Charge, Kind, Rig, Rng};
use crate::common::replica::Replica;
use crate::common::Daemon;

const KEY: &str = "iotpay-kill-loop-key-0b7e";

pub struct IotPay {
    d: Daemon,
    replica: Replica,
    _dir: tempfile::TempDir,
}

pub fn start() -> IotPay {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(
        dir.path(),
        "iotpay",
        KEY,
        &[
            ("terminal_ms", "150"),
            ("slow_ms", "900"),
            ("mch_id", "10000701"),
        ],
    );
    let key_file = dir.path().join("iotpay.key");
    std::fs::write(&key_file, KEY).unwrap();
    let config = format!(
        "default_provider = \"iotpay\"\n[providers.iotpay]\nbase_url = \"{}/v1/\"\n\
         mch_id = \"10000701\"\nkey_file = \"{}\"\njob_no = \"cashier1\"\ncurrency = \"CAD\"\n\
         timeout_ms = 1500\nstatus_poll_ms = [100, 200]\nnot_found_final_ms = 500\n",
        replica.url,
        key_file.display()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    IotPay {
        d,
        replica,
        _dir: dir,
    }
}

impl Rig for IotPay {
    fn name(&self) -> &'static str {
        "iotpay"
    }

    fn daemon(&mut self) -> &mut Daemon {
        &mut self.d
    }

    fn prefix(&self) -> &'static str {
        "io_"
    }

    fn sale_amount(&self, rng: &mut Rng) -> u64 {
        // ..51 declined at the card (status 9), ..52 refused by the terminal before the bank.
        let tail = match rng.range(0, 99) {
            0..=11 => 51,
            12..=16 => 52,
            _ => 10,
        };
        rng.range(1, 80) * 100 + tail
    }

    fn refunds(&self) -> bool {
        false
    }

    fn slow_next(&mut self, _kind: Kind, rng: &mut Rng) -> Option<(Option<u64>, Duration)> {
        if rng.chance(50) {
            // The terminal's slow amount: IOT Pay has the order, the card is still in play.
            return Some((
                Some(rng.range(1, 80) * 100 + 93),
                Duration::from_millis(1050),
            ));
        }
        // The network before IOT Pay: killed during it, the order is never made.
        let ms = rng.range(200, 600);
        self.replica
            .arm(json!({"path": "/v1/create_order", "kind": "slow", "delay_ms": ms}));
        Some((None, Duration::from_millis(ms)))
    }

    fn clear_faults(&mut self) {
        disarm(&self.replica.url);
    }

    fn charges(&self) -> Vec<Charge> {
        let state = self.replica.state();
        let mut out = Vec::new();
        for (no, o) in state["orders"].as_object().into_iter().flatten() {
            if !matches!(o["status"].as_u64(), Some(2 | 3)) {
                continue;
            }
            let named = o["request"]["extra"]
                .as_str()
                .and_then(|e| serde_json::from_str::<Value>(e).ok())
                .and_then(|e| e["requestId"].as_str().map(str::to_owned));
            out.push(Charge {
                id: no.clone(),
                request: named,
                kind: Kind::Sale,
            });
        }
        for (no, list) in state["refunds"].as_object().into_iter().flatten() {
            for _ in list.as_array().into_iter().flatten() {
                out.push(Charge {
                    id: no.clone(),
                    request: None,
                    kind: Kind::Refund,
                });
            }
        }
        out
    }

    fn settle_limit(&self) -> Duration {
        // A sale IOT Pay never got: final about 12 s after its intent (see the module docs).
        Duration::from_secs(40)
    }
}
