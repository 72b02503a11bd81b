//! Paysera under the kill loop: the Paysera replica (its customer reserves an order 150 ms
//! after it is made; ..52 the reservation is rejected) and the daemon of the Paysera rig
//! (tests/common/paysera.rs, spot 7, a 3 s window). A charge is a transaction the replica holds
//! as `confirmed` (a reservation not confirmed is not a charge); it names its sale in the
//! payment's description (`Sale <request_id>`) and its operation in `parameters.order_id`.
//! No refunds: Paysera documents none for a confirmed transaction.
//!
//! [`start_late`] is the phase of issue 16 item 3: a customer who approves at a random moment
//! 100-3100 ms after the order is made (`reserve_spread_ms`), so often after the sale's 2 s
//! deadline, and who approves a transaction whose order was closed (`reserve_closed`), while
//! the daemon is killed and restarted. [`Paysera::left_reserved`] then reads the replica's
//! ledger once the customer's last moment has passed: every reservation must have been
//! confirmed (a charge, counted by the loop) or revoked.

use std::time::Duration;

use serde_json::{json, Value};

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

/// The customer's moments in [`start_late`]: `reserve_after_ms` + 0..=`reserve_spread_ms`.
const LATE_AFTER_MS: u64 = 100;
const LATE_SPREAD_MS: u64 = 3000;

pub fn start_late() -> Paysera {
    let after = LATE_AFTER_MS.to_string();
    let spread = LATE_SPREAD_MS.to_string();
    Paysera(rig_with(Setup {
        window_ms: 2000,
        replica_options: &[
            ("reserve_after_ms", &after),
            ("reserve_spread_ms", &spread),
            ("reserve_closed", "yes"),
        ],
        // An outcome that stays unknown is flagged for a person within the loop's settling.
        top: "[daemon]\nmanual_check_after_ms = 20000",
        ..Default::default()
    }))
}

impl Paysera {
    /// Transactions the replica holds as reserved once every order's customer has had their
    /// moment (money a customer would see held for nothing).
    pub fn left_reserved(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(LATE_AFTER_MS + LATE_SPREAD_MS + 500));
        let ledger = self.0.r.get("/_replica/ledger");
        ledger["reserved"].as_array().cloned().unwrap_or_default()
    }
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
        // The window (3 s, or 2 s in the late phase), then the reconciler's revoke; 30 s leaves
        // room for a loaded machine.
        Duration::from_secs(30)
    }
}
