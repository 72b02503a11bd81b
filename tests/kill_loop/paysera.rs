//! Paysera under the kill loop: the Paysera replica (its customer reserves an order 150 ms
//! after it is made; ..52 the reservation is rejected) and the daemon of the Paysera rig
//! (tests/common/paysera.rs, spot 7, a 3 s window). A charge is a transaction the replica holds
//! as `confirmed` (a reservation not confirmed is not a charge); it names its sale in the
//! payment's description (`Sale <request_id>`) and its operation in `parameters.order_id`.
//! No refunds: Paysera documents none for a confirmed transaction.

use std::time::Duration;

use serde_json::json;

use crate::common::kill_loop::{disarm, Charge, Kind, Rig, Rng};
use crate::common::paysera::{rig_with, Rig as PayseraRig, Setup};
use crate::common::Daemon;

pub struct Paysera(PayseraRig);

pub fn start() -> Paysera {
    Paysera(rig_with(Setup {
        window_ms: 3000,
        replica_options: &[("reserve_after_ms", "150")],
        ..Default::default()
    }))
}

impl Rig for Paysera {
    fn name(&self) -> &'static str {
        "paysera"
    }

    fn daemon(&mut self) -> &mut Daemon {
        &mut self.0.d
    }

    fn prefix(&self) -> &'static str {
        "ps_"
    }

    fn sale_amount(&self, rng: &mut Rng) -> u64 {
        // ..52: the reservation is rejected (declined). ..51 (never paid: a 3 s wait) is not used.
        let tail = if rng.chance(12) { 52 } else { 10 };
        rng.range(1, 80) * 100 + tail
    }

    fn refunds(&self) -> bool {
        false
    }

    fn slow_next(&mut self, _kind: Kind, rng: &mut Rng) -> Option<(Option<u64>, Duration)> {
        let ms = rng.range(250, 500);
        // The transaction create, the order create, or the confirm (the commit point, which
        // comes after the 150 ms reservation and a poll).
        let (path, before) = match rng.range(0, 2) {
            0 => ("/rest/v1/transaction", 0),
            1 => ("/rest/v1/spot/7/order", 60),
            _ => ("/rest/v1/transaction/", 300),
        };
        self.0
            .r
            .arm(json!({"path": path, "kind": "slow", "delay_ms": ms}));
        Some((None, Duration::from_millis(ms + before)))
    }

    fn clear_faults(&mut self) {
        disarm(&self.0.r.url);
    }

    fn charges(&self) -> Vec<Charge> {
        let state = self.0.r.state();
        let mut out = Vec::new();
        for t in state["transactions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, t)| t)
        {
            if t["status"] != "confirmed" {
                continue;
            }
            let payment = &t["payments"][0];
            out.push(Charge {
                id: payment["parameters"]["order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                request: payment["description"]
                    .as_str()
                    .and_then(|d| d.strip_prefix("Sale "))
                    .map(str::to_owned),
                kind: Kind::Sale,
            });
        }
        out
    }

    fn settle_limit(&self) -> Duration {
        Duration::from_secs(30)
    }
}
