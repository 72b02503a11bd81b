//! The PhonePe replica's "status blind" behaviour: a status API that does not find a payment
//! it acknowledged. Init answers SUCCESS and the customer pays as usual, but the status call
//! answers the not-found code (`not_found_code`, TRANSACTION_NOT_FOUND by default) for that
//! merchantTransactionId, until it has been asked `N` times or until a test switches the
//! blindness off; then it finds the transaction as it is. This is what a client meets when
//! PhonePe's status path is keyed by another id, or during a backend incident: the document
//! (seeds/001) says nothing against it, and an acknowledged id is the client's only evidence.
//!
//! `--option status_blind=`: `off` (the default), `N` (a number: each acknowledged payment is
//! not found by N status checks, counted per id in the state file, so they survive restarts
//! of the replica and of the daemon), or `on` (blind for every payment until
//! `POST /_replica/status_blind {"blind": false}`; `{"blind": true}` turns it on again; the
//! switch lives in memory and restarts as the option says). With `status_blind_after=F` (0)
//! the N hidden checks are checks F+1 to F+N: the status API finds the payment F times (the
//! client has seen it), then loses it, then finds it again. Refunds are never hidden. It
//! decides only whether a status answer hides a transaction; it never changes one.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::ledger::{Kind, Ledger};
use super::{Options, Shared};

/// What `status_blind` asks for.
pub struct Blind {
    /// Each payment is hidden from this many status checks (0: none)...
    checks: u64,
    /// ... after this many that find it.
    after: u64,
    /// Every payment is hidden while this is on.
    switch: AtomicBool,
}

impl Blind {
    pub fn from_options(opts: &Options) -> anyhow::Result<Blind> {
        let v = opts
            .options
            .get("status_blind")
            .map(String::as_str)
            .unwrap_or("off");
        let (checks, on) = match v {
            "off" => (0, false),
            "on" => (0, true),
            n => match n.parse::<u64>() {
                Ok(n) => (n, false),
                Err(_) => anyhow::bail!("--option status_blind={v}: off, on or a number of checks"),
            },
        };
        let after = match opts.options.get("status_blind_after") {
            None => 0,
            Some(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("--option status_blind_after={v}: a number of checks")
            })?,
        };
        Ok(Blind {
            checks,
            after,
            switch: AtomicBool::new(on),
        })
    }

    /// Whether this status check of `id` is answered "not found" although the ledger has it;
    /// counts the check.
    pub fn hides(&self, l: &mut Ledger, id: &str) -> bool {
        if l.transactions
            .get(id)
            .is_none_or(|t| t.kind != Kind::Payment)
        {
            return false;
        }
        if self.switch.load(Ordering::SeqCst) {
            return true;
        }
        if self.checks == 0 {
            return false;
        }
        let seen = l.status_checks.entry(id.to_owned()).or_default();
        *seen += 1;
        *seen > self.after && *seen <= self.after + self.checks
    }
}

/// `POST /_replica/status_blind {"blind": bool}`: switches the blindness on or off.
pub async fn switch(State(r): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    match body.get("blind").and_then(Value::as_bool) {
        Some(on) => {
            r.blind.switch.store(on, Ordering::SeqCst);
            log::info!("replica: status blind {}", if on { "on" } else { "off" });
            StatusCode::NO_CONTENT
        }
        None => StatusCode::BAD_REQUEST,
    }
}
