//! The operation state machine: intent -> execute -> outcome -> (reconcile).
//!
//! Every money-moving request goes through [`Engine::handle`]: validated against the provider's
//! capabilities, written to the journal as an intent *before* the provider is contacted, run on
//! its own task (so a vanished client cannot cut it short), and its outcome written *before* the
//! answer leaves. Unknown outcomes go to the reconciler (`reconcile.rs`), which asks the
//! provider's status call until the real outcome is known. Only this module decides what the
//! journal holds; the API never talks to a provider.

mod accept;
mod answer;
pub mod evidence;
mod queries;
pub mod reconcile;
pub mod resolve;
mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::device::screen::{NoScreen, Screen, Shown};
use crate::exchange::{Action, Answer, ErrorKind, Metadata, Request};
use crate::journal::{Begin, Entry, Intent, Journal, State};
use crate::provider::{self, Failure, OpKind, Operation, Outcome, Provider};
pub use stats::Stats;

/// How long `get_result` waits for an on-demand status check of an unknown outcome before it
/// answers with what the journal holds.
const GET_RESULT_CHECK: Duration = Duration::from_secs(2);

pub struct Engine {
    journal: Arc<Journal>,
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    default_provider: String,
    reconcile: mpsc::UnboundedSender<String>,
    tasks: TaskTracker,
    running: AtomicUsize,
    started: Instant,
    /// One status check per request_id at a time, whoever asks (get_result or the
    /// reconciler): a status check may itself commit (Paysera confirms a reserved payment).
    checking: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The customer's screen: the amount while a pay or refund runs, then its outcome.
    screen: Arc<dyn Screen>,
    stats: Stats,
    /// Operations whose evidence was witnessed in this process (`evidence.rs`).
    witnessed: Arc<evidence::Witnessed>,
    /// `daemon.manual_check_after_ms`.
    manual_check_after_ms: AtomicU64,
}

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

/// A refusal of the request `id` (accepted with `metadata`).
fn error(id: &str, metadata: &Metadata, t: ErrorKind, reason: &str, msg: String) -> Answer {
    Answer::refused(Some(id.to_owned()), metadata.clone(), t, reason, msg)
}

impl Engine {
    /// Builds the engine. The receiver feeds [`reconcile::run`]; `tasks` tracks every running
    /// operation so shutdown can wait for them.
    pub fn new(
        journal: Arc<Journal>,
        providers: Vec<Arc<dyn Provider>>,
        default_provider: String,
        tasks: TaskTracker,
    ) -> (Arc<Engine>, mpsc::UnboundedReceiver<String>) {
        Engine::with_screen(
            journal,
            providers,
            default_provider,
            tasks,
            Arc::new(NoScreen),
        )
    }

    /// [`Engine::new`], showing each pay and refund on `screen`.
    pub fn with_screen(
        journal: Arc<Journal>,
        providers: Vec<Arc<dyn Provider>>,
        default_provider: String,
        tasks: TaskTracker,
        screen: Arc<dyn Screen>,
    ) -> (Arc<Engine>, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let providers = providers.into_iter().map(|p| (p.name(), p)).collect();
        let engine = Engine {
            journal,
            providers,
            default_provider,
            reconcile: tx,
            tasks,
            running: AtomicUsize::new(0),
            started: Instant::now(),
            checking: Default::default(),
            screen,
            stats: Stats::default(),
            witnessed: Default::default(),
            manual_check_after_ms: AtomicU64::new(evidence::MANUAL_CHECK_AFTER.as_millis() as u64),
        };
        (Arc::new(engine), rx)
    }

    /// How long an operation may stay unknown before it is marked `manual_check`.
    pub fn set_manual_check_after(&self, after: Duration) {
        self.manual_check_after_ms
            .store(after.as_millis() as u64, Ordering::Relaxed);
    }

    fn manual_check_after(&self) -> Duration {
        Duration::from_millis(self.manual_check_after_ms.load(Ordering::Relaxed))
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The configured providers' names, sorted.
    pub fn provider_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.providers.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Outcome counts and the reconciler's load, for the metrics page.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Start-up recovery, before READY: whatever was in flight when the daemon last stopped has
    /// an unknown outcome now. Marks it so and queues every unknown outcome for reconciliation.
    /// Returns how many operations were recovered and how many are queued in all.
    pub async fn recover(&self) -> Result<(usize, usize), crate::journal::JournalError> {
        let interrupted = self.journal.in_state(State::InFlight)?;
        for entry in &interrupted {
            let (id, metadata) = stored_identity(entry);
            let interrupted = Failure::new(
                "interrupted",
                "The daemon stopped while this operation was running; its outcome is being \
                 checked with the provider. Ask again with get_result.",
            );
            let answer = match serde_json::from_str::<Operation>(&entry.operation) {
                Ok(op) if !self.askable(&op) => {
                    let f = answer::not_askable(&op, interrupted);
                    error(
                        &id,
                        &metadata,
                        ErrorKind::DefaultError,
                        &f.reason,
                        f.message,
                    )
                }
                _ => error(
                    &id,
                    &metadata,
                    ErrorKind::UnknownResultError,
                    &interrupted.reason,
                    interrupted.message,
                ),
            };
            self.journal
                .settle(&entry.request_id, State::Unknown, &answer)
                .await?;
            log::warn!(request_id = entry.request_id.as_str(), provider = entry.provider.as_str(),
                action = entry.action.as_str();
                "operation {} was interrupted by a restart; its outcome will be reconciled",
                entry.request_id);
        }
        let unknown = self.journal.in_state(State::Unknown)?;
        for entry in &unknown {
            let _ = self.reconcile.send(entry.request_id.clone());
        }
        Ok((interrupted.len(), unknown.len()))
    }

    /// Answers one valid request.
    pub async fn handle(self: &Arc<Self>, req: Request) -> Answer {
        match req.action {
            Action::GetResult => {
                let id = req.request_id.unwrap_or_default();
                self.get_result(&id, &req.metadata).await
            }
            Action::Status => self.status(req.request_id, req.metadata),
            Action::Results => self.results(req.request_id, req.metadata, req.limit.unwrap_or(20)),
            Action::Pay | Action::Refund | Action::Cancel | Action::CloseShift => {
                self.operate(req).await
            }
            // The API hands these to the device manager (the engine does not own devices), or,
            // for resolve, to `Engine::resolve` with the peer who asked.
            Action::Devices | Action::Pair | Action::Unpair | Action::Scan | Action::Resolve => {
                Answer::refused(
                    req.request_id,
                    req.metadata,
                    ErrorKind::DefaultError,
                    "not_supported",
                    format!(
                        "{} is answered by the API handler (devices, or an operator's word)",
                        req.action.as_str()
                    ),
                )
            }
        }
    }

    async fn operate(self: &Arc<Self>, req: Request) -> Answer {
        let op = match self.accept(req) {
            Ok(op) => op,
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
        log::info!(request_id = op.request_id.as_str(), provider = op.provider.as_str(),
            action = op.kind.as_str(); "{} {} started", op.kind.as_str(), op.request_id);
        // Its own task: the operation finishes and is recorded even if this connection goes.
        let engine = self.clone();
        let task_op = op.clone();
        let task = self
            .tasks
            .spawn(async move { engine.execute(task_op).await });
        match task.await {
            Ok(answer) => answer,
            Err(join) => {
                log::error!(request_id = op.request_id.as_str(); "operation task failed: {join}");
                let failure = Failure::new(
                    "internal_error",
                    "The operation was interrupted inside posbridge; its outcome is being checked.",
                );
                self.settle(&op, Outcome::Unknown(failure)).await
            }
        }
    }

    async fn execute(&self, mut op: Operation) -> Answer {
        let _running = Running::new(&self.running);
        op.progress.attach(self.note_sink(&op));
        let provider = self.providers[op.provider.as_str()].clone();
        let limit = provider.timeout();
        let shown = matches!(op.kind, OpKind::Pay | OpKind::Refund);
        if let (true, Some(amount)) = (shown, op.amount) {
            self.screen.show(Shown::Amount {
                amount,
                currency: op.currency.clone(),
            });
        }
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
    fn note_sink(&self, op: &Operation) -> provider::NoteSink {
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
    async fn settle(&self, op: &Operation, outcome: Outcome) -> Answer {
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
                    self.witnessed.forget(ids.0);
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

    /// Whether get_result can ever settle `op` once its outcome is unknown.
    fn askable(&self, op: &Operation) -> bool {
        self.providers
            .get(op.provider.as_str())
            .is_none_or(|p| p.status_can_settle(op.kind))
    }

    /// Runs `work` while no other status check (nor an operator's decision) of `id` runs.
    async fn one_at_a_time<T>(&self, id: &str, work: impl std::future::Future<Output = T>) -> T {
        let lock = self
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone();
        let out = {
            let _held = lock.lock().await;
            work.await
        };
        let mut checking = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody else is waiting.
        if Arc::strong_count(&lock) == 2 {
            checking.remove(id);
        }
        out
    }

    /// One status check of an unknown outcome. `Some(answer)` once the outcome is final.
    pub async fn reconcile_once(&self, entry: &Entry) -> Option<Answer> {
        let id = entry.request_id.as_str();
        self.one_at_a_time(id, async {
            // Another check may have settled it while this one waited.
            match self.journal.get(id) {
                Ok(Some(Entry {
                    state: State::Final,
                    response,
                    ..
                })) => response,
                Ok(Some(current)) => self.check_status(&current).await,
                Ok(None) | Err(_) => None,
            }
        })
        .await
    }

    async fn check_status(&self, entry: &Entry) -> Option<Answer> {
        let mut op: Operation = serde_json::from_str(&entry.operation).ok()?;
        // What a status answer shows (a pending transaction) is evidence too.
        op.progress.attach(self.note_sink(&op));
        let Some(provider) = self.providers.get(op.provider.as_str()).cloned() else {
            log::warn!(request_id = op.request_id.as_str(), provider = op.provider.as_str();
                "cannot reconcile: provider {} is not configured", op.provider);
            return None;
        };
        let outcome = tokio::time::timeout(provider.timeout(), provider.status(&op))
            .await
            .unwrap_or_else(|_| {
                Outcome::Unknown(Failure::new("timeout", "status check timed out"))
            });
        match self.weigh(&op, outcome) {
            Outcome::Unknown(f) => {
                log::debug!(request_id = op.request_id.as_str(), provider = op.provider.as_str();
                    "still unknown: {}", f.message);
                self.still_unknown(entry, &op, f).await;
                None
            }
            final_outcome => Some(self.settle(&op, final_outcome).await),
        }
    }

    /// Intervals between status checks for this entry's provider (see also
    /// [`Engine::wait_before`]).
    pub fn schedule(&self, entry: &Entry) -> Vec<Duration> {
        self.providers
            .get(entry.provider.as_str())
            .map(|p| p.status_schedule().to_vec())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec![Duration::from_secs(30)])
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

/// The request_id and metadata an entry was accepted with.
fn stored_identity(entry: &Entry) -> (String, Metadata) {
    let metadata = serde_json::from_str::<Operation>(&entry.operation)
        .map(|op| op.metadata)
        .unwrap_or_default();
    (entry.request_id.clone(), metadata)
}

#[cfg(test)]
mod evidence_tests;
#[cfg(test)]
mod progress_tests;
#[cfg(test)]
mod tests;
