//! What the engine counts for the metrics page: outcomes by provider, action and outcome,
//! operations that went unknown, how long the backends took, and how many the reconciler is
//! watching. Counting only: the numbers never decide anything.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metrics::{CounterVec, HistogramVec, CALL_BOUNDS};
use crate::provider::Outcome;

#[derive(Debug)]
pub struct Stats {
    /// Final outcomes recorded, labels (provider, action, outcome): `approved`, `declined`,
    /// `failed`, `closed` (a shift), `resolved_charged`, `resolved_not_charged`.
    pub finished: CounterVec,
    /// Operations whose outcome became unknown, labels (provider, action). Each is counted
    /// again in `finished` once its real outcome is found.
    pub unknown: CounterVec,
    /// How long each call to a backend took, from the call to its outcome (a timeout at the
    /// provider's limit), labels (provider, action): the backend's share of a sale's time.
    pub backend: HistogramVec,
    reconciling: AtomicUsize,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            finished: CounterVec::default(),
            unknown: CounterVec::default(),
            backend: HistogramVec::new(CALL_BOUNDS),
            reconciling: AtomicUsize::default(),
        }
    }
}

impl Stats {
    /// Counts an outcome (its [`label`]) just stored for an operation of `provider`/`action`.
    pub(super) fn recorded(&self, provider: &str, action: &str, label: &str) {
        match label {
            "unknown" => self.unknown.inc(&[provider, action]),
            other => self.finished.inc(&[provider, action, other]),
        }
    }

    /// Operations the reconciler is watching (queued or being checked).
    pub fn reconciling(&self) -> usize {
        self.reconciling.load(Ordering::Relaxed)
    }

    pub(super) fn set_reconciling(&self, n: usize) {
        self.reconciling.store(n, Ordering::Relaxed);
    }
}

/// The outcome's label on the metrics page.
pub(super) fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Approved(a) if a.extra.contains_key("resolution") => "resolved_charged",
        Outcome::Approved(_) => "approved",
        Outcome::ShiftClosed(_) => "closed",
        Outcome::Failed(f) if f.reason == "declined" => "declined",
        Outcome::Failed(f) if f.reason == "resolved_not_charged" => "resolved_not_charged",
        Outcome::Failed(_) => "failed",
        Outcome::Unknown(_) | Outcome::NotFound(_) => "unknown",
    }
}
