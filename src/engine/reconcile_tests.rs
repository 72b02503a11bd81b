//! The reconciler over a simulated day (issue 19 item 6): an outcome that stays unknown for
//! 24 h is asked about on its provider's schedule, the last interval repeating, and a
//! contradicted one with backoff up to an hour; never in a busy loop. Tokio's paused clock
//! runs the day in moments: the count of status calls is the count of the reconciler's
//! wake-ups, bounded from above (no busy loop) and from below (it never gives up).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::tests::ask;
use super::super::Engine;
use crate::exchange::{Action, Request};
use crate::journal::{Batching, Journal, State};
use crate::provider::{Common, Failure, Operation, Outcome, Provider};

const SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A backend that never knows: every status check answers "no final answer" or, after it
/// showed the transaction exists, "not found" (a contradiction).
struct NeverKnows {
    contradicts: bool,
    checks: AtomicUsize,
}

#[async_trait]
impl Provider for NeverKnows {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed("phonepe", "INR", Duration::from_secs(5), SCHEDULE);
        &COMMON
    }
    async fn execute(&self, op: &Operation) -> Outcome {
        if self.contradicts {
            op.progress.witness("init accepted").await.unwrap();
        }
        Outcome::Unknown(Failure::new("timeout", "no final answer"))
    }
    async fn status(&self, _op: &Operation) -> Outcome {
        self.checks.fetch_add(1, Ordering::SeqCst);
        if self.contradicts {
            Outcome::NotFound(Failure::new("not_processed", "no record of it"))
        } else {
            Outcome::Unknown(Failure::new("timeout", "no final answer"))
        }
    }
}

/// Status calls made for one unknown sale over a simulated day, and its stored reason then.
async fn one_day(contradicts: bool) -> (usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let backend = Arc::new(NeverKnows {
        contradicts,
        checks: AtomicUsize::new(0),
    });
    let (engine, queue) = Engine::new(
        journal.clone(),
        vec![backend.clone() as Arc<dyn Provider>],
        "phonepe".into(),
        TaskTracker::new(),
    );
    let answer = ask(&engine, Request::new(Action::Pay).id("long").amount(100)).await;
    assert_eq!(answer["error_type"], "unknown_result_error", "{answer}");
    let stop = CancellationToken::new();
    let reconciler = tokio::spawn(super::run(engine.clone(), queue, stop.clone()));
    // Minute by minute: while a journal write is on its thread the paused clock may jump to
    // the next timer, and this keeps that jump under a minute. Each minute also gives the
    // journal's thread 2 ms of real time, so a check's write ends before the clock moves on
    // (without it a loaded machine lost hours of checks: 11 to 28 in 24 h over 12 runs).
    let mut elapsed = Duration::ZERO;
    while elapsed < DAY {
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::thread::sleep(Duration::from_millis(2));
        tokio::task::yield_now().await;
        elapsed += Duration::from_secs(60);
    }
    stop.cancel();
    reconciler.await.unwrap();
    let entry = journal.get("long").unwrap().unwrap();
    assert_eq!(entry.state, State::Unknown, "still unknown after a day");
    let reason = super::super::evidence::stored_reason(&entry).unwrap_or_default();
    (backend.checks.load(Ordering::SeqCst), reason)
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_asked_about_once_a_minute_for_a_day() {
    let (checks, reason) = one_day(false).await;
    // 5 s, 30 s, then every 60 s: 1,441 in 24 h.
    let every_minute = (DAY.as_secs() / 60) as usize;
    println!("unknown for 24 h: {checks} status checks (the schedule allows {every_minute} + 2)");
    assert_eq!(reason, "timeout");
    assert!(
        checks <= every_minute + 2,
        "{checks} checks: faster than the schedule"
    );
    assert!(
        checks >= every_minute - 60,
        "{checks} checks: the reconciler stopped asking"
    );
}

#[tokio::test(start_paused = true)]
async fn a_contradicted_outcome_backs_off_to_hourly_checks_for_a_day() {
    let (checks, reason) = one_day(true).await;
    // 5 s, then 60 s doubling to an hour (60, 120, ..., 1920, 3600), then hourly: 30 in 24 h.
    println!("contradicted for 24 h: {checks} status checks (backoff allows about 30)");
    assert_eq!(reason, "contradiction");
    assert!(
        checks <= 32,
        "{checks} checks: the backoff to an hour is not kept"
    );
    assert!(checks >= 24, "{checks} checks: fewer than one an hour");
}
