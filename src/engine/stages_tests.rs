//! Progress events through the engine: a provider's stages reach the queue the request came
//! with; a full queue nobody reads never holds the operation up; a stage told after the
//! provider is done (by something it left running) never arrives; stages are not journaled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::*;
use crate::exchange::{Stage, Stages};
use crate::journal::Batching;
use crate::provider::{Approval, Common, Outcome};

/// Tells 100 stages, keeps the operation's stages for later, approves.
#[derive(Default)]
struct Chatty {
    left_behind: Mutex<Option<Stages>>,
}

#[async_trait]
impl Provider for Chatty {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "sim",
            "INR",
            Duration::from_secs(5),
            &[Duration::from_millis(20)],
        );
        &COMMON
    }
    async fn execute(&self, op: &Operation) -> Outcome {
        for n in 0..100 {
            let stage = if n % 2 == 0 {
                Stage::Sent
            } else {
                Stage::Authorising
            };
            op.stages.tell(stage, format!("stage {n}"));
        }
        *self.left_behind.lock().unwrap() = Some(op.stages.clone());
        Outcome::Approved(Approval {
            status: "approved".into(),
            ..Default::default()
        })
    }
    async fn status(&self, _op: &Operation) -> Outcome {
        Outcome::Unknown(Failure::new("timeout", "still unknown"))
    }
}

#[tokio::test]
async fn a_queue_nobody_reads_never_holds_the_operation_up_and_nothing_comes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let provider = Arc::new(Chatty::default());
    let (engine, _queue) = Engine::new(
        journal.clone(),
        vec![provider.clone()],
        "sim".into(),
        TaskTracker::new(),
    );
    let (tx, mut rx) = mpsc::channel(2);
    let req = Request::new(Action::Pay).id("st1").amount(5);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        engine.handle_telling(req, Some(tx)),
    )
    .await
    .expect("a full queue must not hold the operation up");
    assert_eq!(answer.code(), 0, "{answer:?}");
    // The first two fitted; the other 98 were dropped, not waited for.
    let told: Vec<Stage> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| e.stage())
        .collect();
    assert_eq!(told, [Stage::Sent, Stage::Authorising]);
    // What the provider left behind can tell nothing after the outcome.
    let left = provider.left_behind.lock().unwrap().take().unwrap();
    left.tell(Stage::CustomerApproved, "too late");
    assert!(rx.try_recv().is_err(), "an event after the answer");
    assert!(!left.listening());
    // Not journaled: the stored operation has no trace of them.
    let stored = journal.get("st1").unwrap().unwrap().operation;
    assert!(!stored.contains("stage"), "{stored}");
}
