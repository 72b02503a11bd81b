//! The in-process `sim` provider: a pretend payment backend with test amounts (DESIGN.md §3).
//!
//! It keeps its own ledger, like a real backend would, in `sim-backend.sqlite` in the state
//! directory: one row per money-moving call it received. That ledger is what `status` answers
//! from, so reconciliation after a crash is real (the backend either got the call or it did
//! not), and tests can count calls to prove nothing ran twice. The ledger is the backend's, not
//! the daemon's: it uses `synchronous=OFF` (it survives a killed process, not a power cut).
//!
//! Test amounts (pay only): `..51` declined; `..91` the backend "times out" but the charge went
//! through; anything else approved. `params.delay_ms` makes the backend take that long: a pay
//! waits that long for its customer (the ledger row says when it completes, `due_ms`), and a
//! cancel naming it by request_id while it waits aborts it (`abort.rs`): nothing is charged
//! and the waiting pay answers `cancelled` at once; after that the cancel is too late
//! (`already_completed`). The sim lives in the daemon: a pay whose wait no task of this
//! process runs any more (posbridge was killed mid-wait) counts as completed, charged. A refund
//! or cancel with the pay's data (its `provider_reference`) reverses a completed pay as before.
//! Its progress stages are what it does: `sent` once its ledger has the call, then, with a
//! delay, `authorising` while it takes it.

mod abort;
mod shift;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::common::{self, Common};
use super::{Approval, Card, Failure, OpKind, Operation, Outcome, Provider, Stage};
use crate::clock::now_rfc3339;
use crate::config::SimConfig;
use crate::journal::memory::{bound_cache, cache_used};

pub const LEDGER_FILE: &str = "sim-backend.sqlite";

/// Closed shifts whose calls the ledger keeps; older calls are dropped at each close_shift, so
/// the ledger stays bounded like the journal (a refund of a pay from before them is refused as
/// unknown to the backend, as a real acquirer's books would after their retention).
pub const KEEP_SHIFTS: i64 = 60;

/// The ledger's page cache, KiB: its file grows for KEEP_SHIFTS shifts, and SQLite's caches
/// are one pool (`journal::memory`): at the default it took all of it (8 MiB, 60,000 sales).
pub const LEDGER_CACHE_KIB: u32 = 256;

/// Longest `params.delay_ms` accepted.
pub const MAX_DELAY_MS: u64 = 600_000;

/// The name in the API and the config (`[providers.sim]`).
pub const NAME: &str = "sim";

pub struct Sim {
    ledger: Mutex<Connection>,
    reversals: Mutex<()>,
    /// Pays waiting for their customer, by backend key: an abort wakes the one it cancelled.
    waiting: super::wake::Wakers,
    common: Common,
}

const LEDGER_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL,
    action       TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reference    TEXT NOT NULL,
    primary_ref  TEXT,
    shift        INTEGER NOT NULL DEFAULT 0,
    detail       TEXT,
    received_at  TEXT NOT NULL,
    backend_id   TEXT,
    due_ms       INTEGER
);
CREATE INDEX IF NOT EXISTS calls_request ON calls(request_id);
CREATE INDEX IF NOT EXISTS calls_reference ON calls(reference);
";

/// One row of the sim backend's ledger.
struct Call {
    action: String,
    amount: i64,
    outcome: String,
    reference: String,
}

impl Sim {
    pub fn open(state_dir: &Path, cfg: &SimConfig) -> rusqlite::Result<Sim> {
        let conn = Connection::open(state_dir.join(LEDGER_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        bound_cache(&conn, LEDGER_CACHE_KIB)?;
        conn.execute_batch(LEDGER_SCHEMA)?;
        // Ledgers made before per-operation backend ids have no backend_id column.
        let has_backend_id: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('calls') WHERE name = 'backend_id'",
            [],
            |r| r.get(0),
        )?;
        if !has_backend_id {
            conn.execute_batch("ALTER TABLE calls ADD COLUMN backend_id TEXT")?;
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS calls_backend ON calls(backend_id)")?;
        // Ledgers made before a pay could wait for its customer (and be aborted) have no due_ms.
        let has_due: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('calls') WHERE name = 'due_ms'",
            [],
            |r| r.get(0),
        )?;
        if !has_due {
            conn.execute_batch("ALTER TABLE calls ADD COLUMN due_ms INTEGER")?;
        }
        Ok(Sim {
            ledger: Mutex::new(conn),
            reversals: Mutex::new(()),
            waiting: Default::default(),
            common: Common::new(
                NAME,
                cfg.currency.clone(),
                Duration::from_millis(cfg.timeout_ms),
                common::millis(&cfg.status_poll_ms),
            ),
        })
    }

    fn ledger<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, Failure> {
        let conn = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|e| {
            Failure::new(
                "provider_unavailable",
                format!("The sim backend failed: {e}"),
            )
        })
    }

    /// Checks a refund or cancel against the pay it reverses; `Ok(())` means it may proceed.
    fn check_reversal(&self, op: &Operation, amount: u64) -> Result<(), Failure> {
        let primary = op
            .primary
            .as_ref()
            .ok_or_else(|| Failure::new("invalid_request", "primary_transaction: is required"))?;
        let reference = primary.provider_reference.clone().ok_or_else(|| {
            Failure::new(
                "invalid_request",
                "primary_transaction: has no provider_reference",
            )
        })?;
        let (pay, reversed, cancelled) = self.ledger(|c| {
            let pay = c
                .query_row(
                    "SELECT action, amount, outcome, reference FROM calls
                     WHERE reference = ?1 AND action = 'pay' ORDER BY seq LIMIT 1",
                    params![reference],
                    |r| {
                        Ok(Call {
                            action: r.get(0)?,
                            amount: r.get(1)?,
                            outcome: r.get(2)?,
                            reference: r.get(3)?,
                        })
                    },
                )
                .optional()?;
            let reversed: i64 = c.query_row(
                "SELECT coalesce(sum(amount), 0) FROM calls
                 WHERE primary_ref = ?1 AND outcome = 'approved'",
                params![reference],
                |r| r.get(0),
            )?;
            let cancelled: bool = c.query_row(
                "SELECT count(*) > 0 FROM calls
                 WHERE primary_ref = ?1 AND action = 'cancel' AND outcome = 'approved'",
                params![reference],
                |r| r.get(0),
            )?;
            Ok((pay, reversed, cancelled))
        })?;
        let pay = match pay {
            Some(p) if p.outcome == "approved" => p,
            Some(_) => {
                return Err(Failure::new(
                    "declined",
                    "The original pay was not approved.",
                ))
            }
            None => {
                return Err(Failure::new(
                    "invalid_request",
                    format!("primary_transaction: the sim backend has no pay {reference}"),
                ))
            }
        };
        debug_assert_eq!(pay.action, "pay");
        if cancelled {
            return Err(Failure::new(
                "declined",
                "The original pay was already cancelled.",
            ));
        }
        let left = pay.amount - reversed;
        if op.kind == OpKind::Cancel && (reversed > 0 || amount as i64 != pay.amount) {
            return Err(Failure::new(
                "invalid_request",
                format!(
                    "amount: a cancel reverses the whole pay ({}) and only before any refund",
                    pay.amount
                ),
            ));
        }
        if amount as i64 > left {
            return Err(Failure::new(
                "invalid_request",
                format!(
                    "amount: {amount} is more than the {left} left to refund on {}",
                    pay.reference
                ),
            ));
        }
        Ok(())
    }

    fn record(
        &self,
        op: &Operation,
        outcome: &str,
        due_ms: Option<i64>,
    ) -> Result<String, Failure> {
        let reference = reference(op);
        let primary_ref = op
            .primary
            .as_ref()
            .and_then(|p| p.provider_reference.clone());
        let amount = op.amount.unwrap_or(0) as i64;
        self.ledger(|c| {
            c.prepare_cached(
                "INSERT INTO calls (request_id, action, amount, currency, outcome, reference,
                                    primary_ref, received_at, backend_id, due_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                op.request_id,
                op.kind.as_str(),
                amount,
                op.currency,
                outcome,
                reference,
                primary_ref,
                now_rfc3339(),
                backend_id(op),
                due_ms
            ])
        })?;
        Ok(reference)
    }

    fn approval(&self, op: &Operation, reference: String) -> Approval {
        let h = Sha256::digest(backend_key(op).as_bytes());
        let digits = |range: std::ops::Range<usize>| -> String {
            h[range].iter().map(|b| char::from(b'0' + b % 10)).collect()
        };
        let (pan, scheme) = [
            ("4111111111111111", "VISA"),
            ("5555555555554444", "MASTERCARD"),
            ("6521000000000003", "RUPAY"),
        ][h[0] as usize % 3];
        Approval {
            status: match op.kind {
                OpKind::Pay | OpKind::CloseShift => "approved",
                OpKind::Refund => "refunded",
                OpKind::Cancel => "cancelled",
            }
            .into(),
            provider_reference: Some(reference),
            rrn: Some(digits(1..13)),
            approval_code: Some(digits(13..19)),
            card: Some(Card {
                masked_pan: super::mask_pan(pan),
                scheme: Some(scheme.into()),
            }),
            charged_amount: None,
            backend_id: None,
            extra: Default::default(),
        }
    }
}

/// The id the sim backend is sent for `op` (its "merchant transaction id"): the operation's own
/// backend id, or, for an intent journaled before those existed, its request_id.
fn backend_key(op: &Operation) -> &str {
    if op.backend_id.is_empty() {
        &op.request_id
    } else {
        &op.backend_id
    }
}

/// The backend_id column: NULL for a legacy operation, which is found by request_id instead.
fn backend_id(op: &Operation) -> Option<&str> {
    (!op.backend_id.is_empty()).then_some(op.backend_id.as_str())
}

/// The backend's reference for an operation: stable, so a status check finds what execute
/// recorded.
fn reference(op: &Operation) -> String {
    let h = Sha256::digest(backend_key(op).as_bytes());
    let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("SIM-{hex}")
}

fn declined() -> Failure {
    Failure::new(
        "declined",
        "The card was declined by the issuer (sim: amount ending in 51).",
    )
}

#[async_trait]
impl Provider for Sim {
    fn common(&self) -> &Common {
        &self.common
    }

    fn store_cache_bytes(&self) -> Option<u64> {
        self.ledger(|c| Ok(cache_used(c))).ok()
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        let delay = op
            .params
            .get("delay_ms")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            .min(MAX_DELAY_MS);
        let amount = op.amount.unwrap_or(0);
        if abort::is_abort(op) {
            return self.abort(op).unwrap_or_else(Outcome::Unknown);
        }
        let result =
            async {
                let outcome = match op.kind {
                    OpKind::CloseShift => return self.close_shift(op).map(Outcome::ShiftClosed),
                    OpKind::Pay if amount % 100 == 51 => "declined",
                    OpKind::Pay | OpKind::Refund | OpKind::Cancel => "approved",
                };
                // A pay that waits for its customer can be aborted until it completes.
                let waits = op.kind == OpKind::Pay && delay > 0;
                let woken = waits.then(|| self.waiting.watch(backend_key(op)));
                // Checking what is left to reverse and recording the reversal are one step, or two
                // concurrent refunds could both pass the check.
                let reversing = self.reversals.lock().unwrap_or_else(|p| p.into_inner());
                if matches!(op.kind, OpKind::Refund | OpKind::Cancel) {
                    if let Err(f) = self.check_reversal(op, amount) {
                        return Ok(Outcome::Failed(f));
                    }
                }
                // The backend has the call from here on: whatever happens to us, it completes.
                let due = waits.then(|| abort::now_ms() + delay as i64);
                let reference = self.record(op, outcome, due)?;
                drop(reversing);
                op.stages
                    .tell(Stage::Sent, "the sim backend recorded the call");
                if delay > 0 {
                    op.stages.tell(
                        Stage::Authorising,
                        format!("the sim backend takes {delay} ms to answer"),
                    );
                }
                if let Some(woken) = woken {
                    if self.wait_for_customer(op, woken, delay).await? {
                        return Ok(Outcome::Failed(abort::aborted_pay()));
                    }
                } else if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                Ok(match outcome {
                "declined" => Outcome::Failed(declined()),
                _ if op.kind == OpKind::Pay && amount % 100 == 91 => Outcome::Unknown(Failure::new(
                    "timeout",
                    "The payment backend did not answer in time (sim: amount ending in 91). \
                     The outcome is being checked; ask again with get_result.",
                )),
                _ => Outcome::Approved(self.approval(op, reference)),
            })
            };
        result.await.unwrap_or_else(Outcome::Unknown)
    }

    async fn status(&self, op: &Operation) -> Outcome {
        let found = self.ledger(|c| {
            // Asked by the id the backend was sent, never by the POS's request_id (which may
            // have been used before, for another sale).
            c.query_row(
                "SELECT outcome, reference, detail, coalesce(due_ms, 0) FROM calls
                 WHERE (?1 IS NOT NULL AND backend_id = ?1)
                    OR (?1 IS NULL AND backend_id IS NULL AND request_id = ?2)
                 ORDER BY seq LIMIT 1",
                params![backend_id(op), op.request_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
        });
        match found {
            Err(f) => Outcome::Unknown(f),
            Ok(None) => Outcome::NotFound(Failure::new(
                "not_processed",
                "The payment backend never received this request: nothing was charged. \
                 Start a new sale with a new request_id.",
            )),
            Ok(Some((outcome, _, _, _))) if outcome == "declined" => Outcome::Failed(declined()),
            Ok(Some((outcome, _, _, _))) if outcome == abort::ABORTED => {
                Outcome::Failed(abort::aborted_pay())
            }
            // Still waiting for its customer in this process: neither charged nor ended yet.
            // A pay nobody waits for any more (posbridge restarted mid-wait) has completed.
            Ok(Some((_, _, _, due)))
                if due > abort::now_ms() && self.waiting.is_waiting(backend_key(op)) =>
            {
                Outcome::Unknown(Failure::new(
                    "in_progress",
                    "The sale is still waiting for the customer at the sim backend.",
                ))
            }
            Ok(Some((_, _, detail, _))) if op.kind == OpKind::CloseShift => {
                match detail.and_then(|d| serde_json::from_str(&d).ok()) {
                    Some(summary) => Outcome::ShiftClosed(summary),
                    None => Outcome::Unknown(Failure::new(
                        "provider_unavailable",
                        "The sim backend has no summary for this shift.",
                    )),
                }
            }
            Ok(Some((_, reference, _, _))) if abort::is_abort(op) => {
                Outcome::Approved(self.abort_approval(op, reference))
            }
            Ok(Some((_, reference, _, _))) => Outcome::Approved(self.approval(op, reference)),
        }
    }
}
