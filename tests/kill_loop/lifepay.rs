//! The card-reader route under the kill loop: `posbridge emulate card-reader` on a pty, paired
//! with the daemon (`lifepay_daemon`). The reader writes a charge to its state file before it
//! answers, so a daemon killed mid-sale leaves the reader knowing it; ..51 is declined, ..93
//! takes 3 s (the "mid-call" kills, about a third of them; the rest land anywhere). A charge is
//! a stored result with outcome `approved` (operation `sale` or `refund`). It is matched to its
//! request by the request's metadata where the reader keeps it (link protocol v2), else by the
//! id the reader was sent: the request_id, or the operation's backend id where the route sends
//! that (through the journal). The POS waits for an interrupted sale's outcome before the next
//! one, as it must at a reader that takes one operation at a time.

use std::time::Duration;

use crate::common::emulator::Emulator;
use crate::common::kill_loop::{Charge, Kind, Rig, Rng};
use crate::common::{lifepay_account, lifepay_daemon, Daemon};

pub struct Lifepay {
    d: Daemon,
    reader: Emulator,
    _dir: tempfile::TempDir,
}

pub fn start() -> Lifepay {
    let dir = tempfile::tempdir().unwrap();
    // The reader knows the shop's account: a sale the daemon signs wrongly is refused.
    let account = lifepay_account(dir.path(), "kill-loop-pass");
    let reader = Emulator::start(
        "card-reader",
        dir.path(),
        "reader",
        &["--serial", "KL1", "--account", &account],
    );
    let d = lifepay_daemon(dir.path(), "kill-loop-pass");
    let out = d.cli(&["pair", &reader.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    Lifepay {
        d,
        reader,
        _dir: dir,
    }
}

impl Rig for Lifepay {
    fn name(&self) -> &'static str {
        "lifepay"
    }

    fn daemon(&mut self) -> &mut Daemon {
        &mut self.d
    }

    fn prefix(&self) -> &'static str {
        "lp_"
    }

    fn sale_amount(&self, rng: &mut Rng) -> u64 {
        let tail = if rng.chance(15) { 51 } else { 10 };
        rng.range(1, 80) * 100 + tail
    }

    fn refunds(&self) -> bool {
        true
    }

    fn one_at_a_time(&self) -> bool {
        true
    }

    fn slow_next(&mut self, kind: Kind, rng: &mut Rng) -> Option<(Option<u64>, Duration)> {
        // The reader's slow amount takes 3 s: used for a third of these, so the loop stays short.
        (kind == Kind::Sale && rng.chance(35)).then(|| {
            (
                Some(rng.range(1, 80) * 100 + 93),
                Duration::from_millis(3000),
            )
        })
    }

    fn clear_faults(&mut self) {}

    fn charges(&self) -> Vec<Charge> {
        let state = self.reader.state_json();
        let mut out = Vec::new();
        for r in state["results"].as_array().into_iter().flatten() {
            if r["outcome"] != "approved" {
                continue;
            }
            let kind = match r["operation"].as_str() {
                Some("sale") => Kind::Sale,
                Some("refund") => Kind::Refund,
                _ => continue,
            };
            out.push(Charge {
                id: r["request_id"].as_str().unwrap_or_default().to_owned(),
                // A reader that is sent the request's metadata keeps it (link protocol v2).
                request: r["details"]["metadata"]["kill_loop"]
                    .as_str()
                    .map(str::to_owned),
                kind,
            });
        }
        out
    }

    fn settle_limit(&self) -> Duration {
        Duration::from_secs(30)
    }
}
