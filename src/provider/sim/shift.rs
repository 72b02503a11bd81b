//! The sim backend's shift close: the totals of the approved pays, refunds and cancels since
//! the last close, kept with the call (a status check after a crash returns the same summary),
//! and the ledger cut to the last [`KEEP_SHIFTS`] shifts. It moves no money.

use rusqlite::params;
use serde_json::json;

use super::{backend_id, reference, Sim, KEEP_SHIFTS};
use crate::clock::now_rfc3339;
use crate::provider::{Failure, Operation};

impl Sim {
    pub(super) fn close_shift(&self, op: &Operation) -> Result<serde_json::Value, Failure> {
        self.ledger(|c| {
            let shift: i64 = c.query_row(
                "SELECT coalesce(max(shift), 0) + 1 FROM calls WHERE action = 'close_shift'",
                [],
                |r| r.get(0),
            )?;
            let mut totals = serde_json::Map::new();
            for action in ["pay", "refund", "cancel"] {
                let (count, total): (i64, i64) = c.query_row(
                    "SELECT count(*), coalesce(sum(amount), 0) FROM calls
                     WHERE action = ?1 AND outcome = 'approved' AND seq > coalesce(
                        (SELECT max(seq) FROM calls WHERE action = 'close_shift'), 0)",
                    params![action],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                totals.insert(action.into(), json!({"count": count, "total": total}));
            }
            let net = totals["pay"]["total"].as_i64().unwrap_or(0)
                - totals["refund"]["total"].as_i64().unwrap_or(0)
                - totals["cancel"]["total"].as_i64().unwrap_or(0);
            let summary = json!({
                "operation": "close_shift",
                "provider": "sim",
                "status": "closed",
                "shift_number": shift,
                "currency": op.currency,
                "pay": totals["pay"],
                "refund": totals["refund"],
                "cancel": totals["cancel"],
                "net": net,
            });
            // Kept with the call, so a status check after a crash returns the same summary.
            c.execute(
                "INSERT INTO calls (request_id, action, amount, currency, outcome, reference,
                                    shift, detail, received_at, backend_id)
                 VALUES (?1, 'close_shift', 0, ?2, 'approved', ?3, ?4, ?5, ?6, ?7)",
                params![
                    op.request_id,
                    op.currency,
                    reference(op),
                    shift,
                    summary.to_string(),
                    now_rfc3339(),
                    backend_id(op)
                ],
            )?;
            c.execute(
                "DELETE FROM calls WHERE seq <= (SELECT seq FROM calls WHERE action = 'close_shift'
                                                 ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                params![KEEP_SHIFTS],
            )?;
            Ok(summary)
        })
    }
}
