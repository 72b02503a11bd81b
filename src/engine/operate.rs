//! One money-moving operation, from its intent to its stored outcome: the intent durable
//! before the provider is contacted, the provider run on a task of its own (a vanished client
//! cannot cut it short) under the provider's time limit, progress notes made durable as they
//! come, progress events (stages, never journaled) passed on to the POS that asked until the
//! provider is done, and the outcome weighed against the evidence and stored before the answer leaves.
//! Nothing here answers for a request that is not an operation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{answer, error, stats, Engine};
use crate::device::screen::Shown;
use tokio::sync::mpsc;

use crate::exchange::{Answer, ErrorKind, Event, Request, Stages};
use crate::journal::{Begin, Entry, Intent, State};
use crate::provider::{self, Failure, OpKind, Operation, Outcome, Provider};

/// Counts one running operation for as long as it lives.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Running(counter)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Engine {
    /// A money-moving request: accepted, its intent journaled, carried out once; its answer.
    pub(super) async fn operate(
        self: &Arc<Self>,
        req: Request,
        events: Option<mpsc::Sender<Event>>,
    ) -> Answer {
        let (mut op, provider) = match self.accept(req) {
            Ok(accepted) => accepted,
            Err(refused) => return refused,
        };
        let intent = Intent {
            request_id: op.request_id.clone(),
            action: op.kind.as_str().into(),
            provider: op.provider.clone(),
            operation: serde_json::to_string(&op).expect("an operation always serializes"),
            created_at: op.created_at.clone(),
        };
        match self.journal.begin(intent).await {
            Ok(Begin::Started) => {}
            Ok(Begin::Duplicate) => {
                return error(
                    &op.request_id,
                    &op.metadata,
                    ErrorKind::DuplicateRequestError,
                    "duplicate_request",
                    format!(
                        "request_id {} was already used; ask get_result for its answer.",
                        op.request_id
                    ),
                );
            }
            Err(e) => {
                log::error!(request_id = op.request_id.as_str(); "journal write failed: {e}");
                return error(
                    &op.request_id,
                    &op.metadata,
                    ErrorKind::DefaultError,
                    "journal_unavailable",
                    format!(
                        "The operation was not started: the result journal could not be \
                         written ({e}). Nothing was charged."
                    ),
                );
            }
        }
        // At info, though it costs a write per sale (issue 20): `journalctl REQUEST_ID=...`
        // shows when a sale began (a sale that waits for its customer has only this line for
        // minutes), and the VM's parts wait for it before they cut or reload mid-sale.
        log::info!(request_id = op.request_id.as_str(), provider = op.provider.as_str(),
            action = op.kind.as_str(); "{} {} started", op.kind.as_str(), op.request_id);
        if let Some(events) = events {
            op.stages = Stages::to(&op.request_id, events);
        }
        // Its own task: the operation finishes and is recorded even if this connection goes.
        let engine = self.clone();
        let task_op = op.clone();
        let task = self
            .tasks
            .spawn(async move { engine.execute(task_op, provider).await });
        match task.await {
            Ok(answer) => answer,
            Err(join) => {
                log::error!(request_id = op.request_id.as_str(); "operation task failed: {join}");
                op.stages.close();
                let failure = Failure::new(
                    "internal_error",
                    "The operation was interrupted inside posbridge; its outcome is being checked.",
                );
                self.settle(&op, Outcome::Unknown(failure)).await
            }
        }
    }

    /// Runs `op` on `provider`, the one it was accepted with (a reload meanwhile changes
    /// nothing for it).
    async fn execute(&self, mut op: Operation, provider: Arc<dyn Provider>) -> Answer {
        let _running = Running::new(&self.running);
        op.progress.attach(self.note_sink(&op));
        let limit = provider.timeout();
        let shown = matches!(op.kind, OpKind::Pay | OpKind::Refund);
        if let (true, Some(amount)) = (shown, op.amount) {
            self.screen.show(Shown::Amount {
                amount,
                currency: op.currency.clone(),
            });
        }
        let called = std::time::Instant::now();
        let outcome = match tokio::time::timeout(limit, provider.execute(&op)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Unknown(Failure::new(
                "timeout",
                format!(
                    "{} did not answer within {} s; the outcome is being checked. \
                     Ask again with get_result.",
                    op.provider,
                    limit.as_secs_f32()
                ),
            )),
        };
        self.stats
            .backend
            .observe(&[&op.provider, op.kind.as_str()], called.elapsed());
        // The provider is done: whatever it left behind can tell no stage after the outcome.
        op.stages.close();
        let outcome = self.weigh(&op, outcome);
        if shown {
            self.screen.show(Shown::Status(customer_word(&outcome)));
        }
        self.settle(&op, outcome).await
    }

    /// Where `op`'s provider records progress notes while it runs (or while a status check
    /// of it runs): each note is merged into the journaled operation and made durable before
    /// the provider goes on, so recovery after a crash reads it back (`Operation::progress`).
    /// The evidence note keeps its first witness; it is also remembered in memory, so a "not
    /// found" is not believed even when the journal could not take the note.
    pub(super) fn note_sink(&self, op: &Operation) -> provider::NoteSink {
        let journal = self.journal.clone();
        let witnessed = self.witnessed.clone();
        let stored = Arc::new(tokio::sync::Mutex::new(op.clone()));
        Arc::new(move |key, value| {
            let (journal, stored) = (journal.clone(), stored.clone());
            let witnessed = witnessed.clone();
            Box::pin(async move {
                let mut op = stored.lock().await;
                if key == provider::progress::EVIDENCE {
                    witnessed.add(&op.request_id);
                    if op.progress.evidence().is_some() {
                        return Ok(());
                    }
                }
                op.progress.insert(key, value);
                let json = serde_json::to_string(&*op).map_err(|e| e.to_string())?;
                match journal.amend(&op.request_id, json).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the operation is no longer in the journal as open".into()),
                    Err(e) => Err(e.to_string()),
                }
            })
        })
    }

    /// Records `outcome` and returns the answer the journal holds for `op` afterwards.
    pub(super) async fn settle(&self, op: &Operation, outcome: Outcome) -> Answer {
        let outcome = self.weigh(op, outcome);
        let label = stats::label(&outcome);
        let (state, answer) = answer::build(op, outcome, self.askable(op));
        let ids = (
            op.request_id.as_str(),
            op.provider.as_str(),
            op.kind.as_str(),
        );
        match self.journal.settle(&op.request_id, state, &answer).await {
            Ok(true) => {
                if state == State::Final {
                    self.forget_evidence(ids.0);
                }
                self.stats.recorded(ids.1, ids.2, label);
                log::info!(request_id = ids.0, provider = ids.1, action = ids.2;
                    "{} {}: {}", ids.2, ids.0, answer.summary());
                if state == State::Unknown {
                    let _ = self.reconcile.send(op.request_id.clone());
                }
                answer
            }
            // Someone else (reconciliation) stored the final answer first: that one stands.
            Ok(false) => match self.journal.get(&op.request_id) {
                Ok(Some(Entry {
                    response: Some(stored),
                    ..
                })) => stored,
                _ => answer,
            },
            Err(e) => {
                log::error!(request_id = ids.0, provider = ids.1, action = ids.2;
                    "could not record the outcome: {e}");
                let _ = self.reconcile.send(op.request_id.clone());
                error(
                    &op.request_id,
                    &op.metadata,
                    ErrorKind::UnknownResultError,
                    "journal_unavailable",
                    format!(
                        "The outcome could not be recorded ({e}); it will be checked with the \
                         provider. Ask again with get_result."
                    ),
                )
            }
        }
    }
}

/// The outcome in one word for the customer's screen.
fn customer_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Approved(a) => a.status.clone(),
        Outcome::ShiftClosed(_) => "shift_closed".into(),
        Outcome::Failed(f) => f.reason.clone(),
        Outcome::Unknown(_) | Outcome::NotFound(_) => "checking".into(),
    }
}
