//! Following a PhonePe operation: the one money-moving call (init, backToSource), the status
//! checks after it, and what each answer shows. Every answer that shows the transaction exists
//! at PhonePe (init or backToSource accepted, DUPLICATE_TRANSACTION_ID, a status answer that
//! carries it, PENDING included; not a bare INTERNAL_SERVER_ERROR) is witnessed
//! (`Progress::witness`, journaled) before it is acted on. After evidence, "not found" ends
//! nothing: the checks go on until the bound, and if PhonePe still cannot find it the answer is
//! [`Outcome::NotFound`], which the engine turns into an unknown outcome (`contradiction`),
//! never "nothing was charged". Without evidence "not found" ends the request only once it can
//! no longer come alive ([`PhonePe::not_found_is_final`]). It never sends a money-moving call
//! twice, and decides nothing about the journal beyond asking for the evidence note.

use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use super::answer::{self, Sent, Status};
use super::{wire, Check, PhonePe};
use crate::provider::http::HttpError;
use crate::provider::{Failure, OpKind, Operation, Outcome, Stage};

impl PhonePe {
    /// Journals that `what` showed `op`'s transaction exists, before it is acted on. A note the
    /// journal could not take is logged: the engine also remembers it in memory, and what
    /// follows (status checks of a journaled id) never needs the note to be found again.
    pub(super) async fn witness(&self, op: &Operation, what: &str) {
        if let Err(e) = op.progress.witness(what).await {
            log::warn!(request_id = op.request_id.as_str(), provider = "phonepe";
                "{} {}: could not journal the evidence ({what}): {e}",
                op.kind.as_str(), op.request_id);
        }
    }

    /// One status check of `transaction_id` on behalf of `op`. An answer that carries the
    /// transaction (final or PENDING) is witnessed before it is returned.
    pub(super) async fn check(&self, op: &Operation, transaction_id: &str) -> Check {
        let path = wire::status_path(&self.ids.merchant_id, transaction_id);
        let reply = match self.call_path(Method::GET, &path).await {
            Ok(r) => r,
            Err(e) => return Check::Unclear(answer::scrub(&e.to_string())),
        };
        let Some(answer) = answer::parse_answer(&reply.body) else {
            return Check::Unclear(format!(
                "PhonePe status answer was not understood (HTTP {}): {}",
                reply.status,
                answer::scrub(&crate::provider::http::snippet(&reply.body))
            ));
        };
        let status = answer::classify_status(op, transaction_id, &answer);
        let carried = carries(&answer, &status);
        if carried {
            let what = format!("status answered {}", answer::scrub(&answer.code));
            self.witness(op, &what).await;
        }
        match status {
            Status::Success(a) => Check::Final(Outcome::Approved(a)),
            Status::Failed(f) => Check::Final(Outcome::Failed(f)),
            Status::Pending => Check::Pending(carried),
            Status::NotFound => Check::NotFound,
            Status::Unclear(why) => match crate::clock::skew_from_date(reply.date.as_deref()) {
                Some(skew) if skew.abs() > crate::clock::SKEW_LIMIT_S => Check::Unclear(format!(
                    "{why} ({})",
                    crate::clock::describe_skew(skew, "PhonePe's")
                )),
                _ => Check::Unclear(why),
            },
        }
    }

    /// Status checks by our own id on the schedule until the outcome is final or `bound`
    /// passes. `evidence`: an answer to the money-moving call already showed the transaction
    /// exists (SUCCESS, DUPLICATE_TRANSACTION_ID); a status answer that carries it counts too.
    async fn follow(&self, op: &Operation, bound: Instant, mut evidence: bool) -> Outcome {
        let id = match wire::status_id(&self.ids.terminal_id, op) {
            Ok(id) => id,
            Err(msg) => return Outcome::Unknown(Failure::new("timeout", msg)),
        };
        evidence |= op.progress.evidence().is_some();
        let mut last = String::from("PhonePe has not answered with a final status yet");
        let mut not_found = false;
        // A cancel of this transaction wakes it: its status then says what the cancel did.
        let waiting = self.following.watch(&id);
        for attempt in 0.. {
            let schedule = &self.common.schedule;
            let wait = schedule[attempt.min(schedule.len() - 1)];
            if Instant::now() + wait > bound {
                break;
            }
            waiting.sleep(wait).await;
            let check = self.check(op, &id).await;
            not_found = matches!(check, Check::NotFound);
            match check {
                Check::Final(o) => return o,
                Check::Pending(carried) => {
                    evidence |= carried;
                    last = "the customer has not finished paying".into();
                    // PENDING of the sale itself (not a bare INTERNAL_SERVER_ERROR): PhonePe
                    // has it and it is not paid yet. A refund's PENDING waits for no customer.
                    if carried && op.kind == OpKind::Pay {
                        op.stages.tell(
                            Stage::WaitingForCustomer,
                            "PhonePe: the payment is pending, waiting for the customer",
                        );
                    }
                }
                // After evidence "not found" is a contradiction: its status API may find it
                // later, so the checks go on.
                Check::NotFound if evidence => {
                    last = "PhonePe acknowledged this transaction, but its status does not \
                            find it"
                        .into()
                }
                Check::NotFound if self.not_found_is_final(op) => return Self::not_processed(),
                Check::NotFound => last = "PhonePe does not know the request yet".into(),
                Check::Unclear(why) => last = why,
            }
        }
        if not_found && evidence && self.not_found_is_final(op) {
            // The engine weighs it against the journaled evidence: unknown, `contradiction`.
            return Self::not_processed();
        }
        Outcome::Unknown(Failure::new(
            "timeout",
            format!(
                "No final answer from PhonePe in time ({last}); the outcome is being checked. \
                 Ask again with get_result."
            ),
        ))
    }

    /// Sends a money-moving call once and follows it until final or `bound`.
    pub(super) async fn send_and_follow(
        &self,
        op: &Operation,
        api_path: &str,
        payload: &Value,
        bound: Instant,
    ) -> Outcome {
        let mut evidence = false;
        self.sent.sending(&op.request_id);
        let call = if api_path == wire::INIT_PATH {
            "init"
        } else {
            "backToSource"
        };
        match self.post_wrapped(api_path, payload).await {
            Err(e @ HttpError::NotSent { .. }) => return e.into_outcome(),
            Err(e) => log::warn!(request_id = op.request_id.as_str(), provider = "phonepe";
                "{} {}: {e}; checking its status", op.kind.as_str(), op.request_id),
            Ok(reply) => match answer::parse_answer(&reply.body) {
                None => log::warn!(request_id = op.request_id.as_str(), provider = "phonepe";
                    "{} {}: answer not understood (HTTP {}); checking its status",
                    op.kind.as_str(), op.request_id, reply.status),
                Some(answer) => {
                    log::info!(request_id = op.request_id.as_str(), provider = "phonepe";
                        "{} {}: PhonePe answered {}", op.kind.as_str(), op.request_id, answer.code);
                    match answer::classify_sent(op.kind, &answer) {
                        Sent::Refused(f) => {
                            return Outcome::Failed(answer::clock_named(f, reply.date.as_deref()))
                        }
                        // Never this request's answer, but PhonePe holds the id: evidence.
                        Sent::Duplicate => {
                            let what = format!(
                                "{call} answered DUPLICATE_TRANSACTION_ID (PhonePe already has \
                                 this transaction id)"
                            );
                            self.witness(op, &what).await;
                            evidence = true;
                        }
                        // Accepted (`success: true`): evidence. A code we do not know with
                        // `success: false` is only followed.
                        Sent::Follow if answer.success => {
                            let what = format!("{call} answered {}", answer::scrub(&answer.code));
                            self.witness(op, &what).await;
                            evidence = true;
                            op.stages.tell(
                                Stage::Sent,
                                match op.kind {
                                    OpKind::Pay => "PhonePe accepted the sale for the terminal",
                                    _ => "PhonePe accepted the refund",
                                },
                            );
                        }
                        Sent::Follow => {}
                    }
                }
            },
        }
        self.follow(op, bound, evidence).await
    }
}

/// Whether a status answer shows the transaction exists: a final status, or PENDING when the
/// answer says so of the transaction (a bare INTERNAL_SERVER_ERROR, read as "not final yet",
/// says nothing of it).
fn carries(a: &answer::Answer, status: &Status) -> bool {
    match status {
        Status::Success(_) | Status::Failed(_) => true,
        Status::Pending => {
            a.code != "INTERNAL_SERVER_ERROR"
                || a.data.get("status").is_some()
                || a.data.get("state").is_some()
        }
        Status::NotFound | Status::Unclear(_) => false,
    }
}
