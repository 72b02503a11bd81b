//! The operation state machine: intent -> execute -> outcome -> (reconcile).
//!
//! Every money-moving request goes through [`Engine::handle`]: validated against the provider's
//! capabilities (`accept.rs`), written to the journal as an intent *before* the provider is
//! contacted, run on its own task (so a vanished client cannot cut it short), and its outcome
//! written *before* the answer leaves (`operate.rs`). Unknown outcomes go to the reconciler
//! (`reconcile.rs`), which asks the provider's status call (`check.rs`) until the real outcome
//! is known. Only this module decides what the journal holds.
//!
//! It takes the exchange's typed [`Request`] and gives back its typed [`Answer`] (the data
//! built in `answer.rs`); it never reads or writes a request or answer line and never imports
//! the API, which renders the answer in the shape asked for.

mod accept;
mod answer;
mod check;
pub mod evidence;
mod operate;
mod providers;
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

use crate::device::screen::{NoScreen, Screen};
use crate::exchange::{Action, Answer, ErrorKind, Event, Metadata, Request};
use crate::journal::{Entry, Journal, State};
use crate::provider::{Failure, Operation, Provider};
pub use providers::Providers;
pub use stats::Stats;

/// How long `get_result` waits for an on-demand status check of an unknown outcome before it
/// answers with what the journal holds.
const GET_RESULT_CHECK: Duration = Duration::from_secs(2);

pub struct Engine {
    journal: Arc<Journal>,
    /// The providers and the default one, swapped whole on reload (`providers.rs`).
    providers: providers::Current,
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
    /// Operations whose contradiction was warned about in this process (`evidence.rs`).
    contradicted: evidence::Witnessed,
    /// `daemon.manual_check_after_ms`.
    manual_check_after_ms: AtomicU64,
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
        let engine = Engine {
            journal,
            providers: providers::Current::new(Providers::new(providers, default_provider)),
            reconcile: tx,
            tasks,
            running: AtomicUsize::new(0),
            started: Instant::now(),
            checking: Default::default(),
            screen,
            stats: Stats::default(),
            witnessed: Default::default(),
            contradicted: Default::default(),
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
        let mut names: Vec<&'static str> = self.providers().all().map(|p| p.name()).collect();
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
        self.handle_telling(req, None).await
    }

    /// [`Engine::handle`], telling an operation's stages to `events` while it runs (the API
    /// passes it only when the request asked for progress). Nothing is sent on `events` once
    /// the operation's provider is done, so every event comes before the answer.
    pub async fn handle_telling(
        self: &Arc<Self>,
        req: Request,
        events: Option<mpsc::Sender<Event>>,
    ) -> Answer {
        match req.action {
            Action::GetResult => {
                let id = req.request_id.unwrap_or_default();
                self.get_result(&id, &req.metadata).await
            }
            Action::Status => self.status(req.request_id, req.metadata),
            Action::Results => self.results(req.request_id, req.metadata, req.limit.unwrap_or(20)),
            Action::Pay | Action::Refund | Action::Cancel | Action::CloseShift => {
                self.operate(req, events).await
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

    /// Whether get_result can ever settle `op` once its outcome is unknown.
    fn askable(&self, op: &Operation) -> bool {
        self.provider(&op.provider)
            .is_none_or(|p| p.status_can_settle(op.kind))
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
mod stages_tests;
#[cfg(test)]
mod tests;
