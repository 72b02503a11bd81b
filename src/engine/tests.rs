//! Engine paths that need a provider misbehaving on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::*;
use crate::clock::now_rfc3339;
use crate::device::screen::RecordingScreen;
use crate::device::screen::Shown;
use crate::journal::Batching;
use crate::journal::Intent;
use crate::provider::{Approval, Common, OpKind, Outcome};

/// A provider whose behaviour each test scripts.
struct Scripted {
    execute: Box<dyn Fn() -> Option<Outcome> + Send + Sync>,
    status: Mutex<Vec<Outcome>>,
    executed: AtomicUsize,
}

#[async_trait]
impl Provider for Scripted {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "phonepe",
            "INR",
            Duration::from_millis(200),
            &[Duration::from_millis(20)],
        );
        &COMMON
    }
    async fn execute(&self, _op: &Operation) -> Outcome {
        self.executed.fetch_add(1, Ordering::SeqCst);
        match (self.execute)() {
            Some(o) => o,
            None => {
                // Hangs past the timeout.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                unreachable!()
            }
        }
    }
    async fn status(&self, _op: &Operation) -> Outcome {
        let mut s = self.status.lock().unwrap();
        if s.is_empty() {
            Outcome::Unknown(Failure::new("timeout", "no answer"))
        } else {
            s.remove(0)
        }
    }
}

fn approved() -> Outcome {
    Outcome::Approved(Approval {
        status: "approved".into(),
        ..Default::default()
    })
}

struct Setup {
    engine: Arc<Engine>,
    provider: Arc<Scripted>,
    screen: Arc<RecordingScreen>,
    _dir: tempfile::TempDir,
}

fn setup(
    execute: impl Fn() -> Option<Outcome> + Send + Sync + 'static,
    status: Vec<Outcome>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let provider = Arc::new(Scripted {
        execute: Box::new(execute),
        status: Mutex::new(status),
        executed: AtomicUsize::new(0),
    });
    let screen = Arc::new(RecordingScreen::default());
    let (engine, queue) = Engine::with_screen(
        journal,
        vec![provider.clone()],
        "phonepe".into(),
        TaskTracker::new(),
        screen.clone(),
    );
    tokio::spawn(reconcile::run(
        engine.clone(),
        queue,
        tokio_util::sync::CancellationToken::new(),
    ));
    Setup {
        engine,
        provider,
        screen,
        _dir: dir,
    }
}

/// One request through the engine, as the API hands it over; its answer in its serde form.
pub(super) async fn ask(engine: &Arc<Engine>, req: Request) -> Value {
    serde_json::to_value(engine.handle(req).await).unwrap()
}

#[tokio::test]
async fn the_customer_screen_shows_the_amount_then_the_outcome_of_each_sale() {
    let s = setup(
        || Some(Outcome::Failed(Failure::new("declined", "no"))),
        vec![],
    );
    let v = ask(&s.engine, Request::new(Action::Pay).id("d").amount(4251)).await;
    assert_eq!(v["reason"], "declined", "{v}");
    // Reading a result moves no money and shows nothing.
    ask(&s.engine, Request::new(Action::GetResult).id("d")).await;
    let currency = s.provider.default_currency().to_owned();
    assert_eq!(
        s.screen.shown(),
        vec![
            Shown::Amount {
                amount: 4251,
                currency
            },
            Shown::Status("declined".into()),
        ]
    );
}

#[tokio::test]
async fn a_panicking_provider_leaves_an_unknown_outcome_not_a_lost_one() {
    let s = setup(|| panic!("provider bug"), vec![approved()]);
    let first = ask(&s.engine, Request::new(Action::Pay).id("p").amount(5)).await;
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    assert_eq!(first["reason"], "internal_error");
    // Reconciliation asks status (approved) and never executes again.
    let later = ask(&s.engine, Request::new(Action::GetResult).id("p")).await;
    assert_eq!(later["data"]["status"], "approved", "{later}");
    assert_eq!(s.provider.executed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hanging_provider_times_out_into_unknown_and_is_reconciled_in_the_background() {
    let s = setup(
        || None,
        vec![Outcome::Unknown(Failure::new("timeout", "x")), approved()],
    );
    let first = ask(&s.engine, Request::new(Action::Pay).id("h").amount(5)).await;
    assert_eq!(
        (first["error_type"].as_str(), first["reason"].as_str()),
        (Some("unknown_result_error"), Some("timeout")),
        "{first}"
    );
    let mut last = Value::Null;
    for _ in 0..100 {
        let e = s.engine.journal().get("h").unwrap().unwrap();
        if e.state == State::Final {
            last = serde_json::to_value(e.response.unwrap()).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        last["data"]["status"], "approved",
        "reconciler did not settle it"
    );
    assert_eq!(s.provider.executed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn still_unknown_status_keeps_the_stored_unknown_answer() {
    let s = setup(
        || Some(Outcome::Unknown(Failure::new("timeout", "later"))),
        vec![],
    );
    ask(&s.engine, Request::new(Action::Pay).id("u").amount(5)).await;
    let again = ask(&s.engine, Request::new(Action::GetResult).id("u")).await;
    assert_eq!(again["error_type"], "unknown_result_error");
    assert_eq!(again["reason"], "timeout");
}

#[tokio::test]
async fn unsupported_operations_are_refused_before_anything_is_written() {
    let s = setup(|| Some(approved()), vec![]);
    let r = ask(&s.engine, Request::new(Action::CloseShift).id("cs")).await;
    assert_eq!(r["reason"], "not_supported", "{r}");
    assert!(s.engine.journal().get("cs").unwrap().is_none());
    assert_eq!(s.provider.executed.load(Ordering::SeqCst), 0);
    let r = ask(
        &s.engine,
        Request::new(Action::Pay).id("x").amount(1).provider("sim"),
    )
    .await;
    assert_eq!(r["reason"], "provider_unavailable", "{r}");
}

#[tokio::test]
async fn recovery_turns_in_flight_into_unknown_and_reconciles() {
    let s = setup(|| Some(approved()), vec![approved()]);
    let op = Operation {
        request_id: "crashed".into(),
        kind: OpKind::Pay,
        provider: "phonepe".into(),
        amount: Some(9),
        currency: "INR".into(),
        metadata: [("till".to_owned(), "2".to_owned())].into(),
        params: Default::default(),
        primary: None,
        created_at: now_rfc3339(),
        backend_id: String::new(),
        progress: Default::default(),
        stages: Default::default(),
    };
    s.engine
        .journal()
        .begin(Intent {
            request_id: op.request_id.clone(),
            action: "pay".into(),
            provider: "phonepe".into(),
            operation: serde_json::to_string(&op).unwrap(),
            created_at: op.created_at.clone(),
        })
        .await
        .unwrap();
    let (interrupted, queued) = s.engine.recover().await.unwrap();
    assert_eq!((interrupted, queued), (1, 1));
    let e = s.engine.journal().get("crashed").unwrap().unwrap();
    assert!(e.state == State::Unknown || e.state == State::Final);
    let r = ask(&s.engine, Request::new(Action::GetResult).id("crashed")).await;
    assert_eq!(r["data"]["status"], "approved", "{r}");
    assert_eq!(r["metadata"]["till"], "2");
    assert_eq!(
        s.provider.executed.load(Ordering::SeqCst),
        0,
        "recovery must never execute"
    );
}

/// Counts how many status checks run at once.
struct SlowStatus {
    now: AtomicUsize,
    max: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait]
impl Provider for SlowStatus {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "paysera",
            "EUR",
            Duration::from_secs(5),
            &[Duration::from_millis(1)],
        );
        &COMMON
    }
    async fn execute(&self, _op: &Operation) -> Outcome {
        Outcome::Unknown(Failure::new("timeout", "lost"))
    }
    async fn status(&self, _op: &Operation) -> Outcome {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        approved()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_checks_of_one_request_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let provider = Arc::new(SlowStatus {
        now: 0.into(),
        max: 0.into(),
        calls: 0.into(),
    });
    let (engine, queue) = Engine::new(
        journal,
        vec![provider.clone()],
        "paysera".into(),
        TaskTracker::new(),
    );
    tokio::spawn(reconcile::run(
        engine.clone(),
        queue,
        tokio_util::sync::CancellationToken::new(),
    ));
    let first = ask(&engine, Request::new(Action::Pay).id("c").amount(5)).await;
    assert_eq!(first["error_type"], "unknown_result_error");
    // The reconciler starts checking at once; five clients ask at the same moment.
    let asks: Vec<_> = (0..5)
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { ask(&e, Request::new(Action::GetResult).id("c")).await })
        })
        .collect();
    for a in asks {
        assert_eq!(a.await.unwrap()["data"]["status"], "approved");
    }
    assert_eq!(
        provider.max.load(Ordering::SeqCst),
        1,
        "two status checks overlapped"
    );
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        1,
        "later askers reuse the settled answer"
    );
}

mod resolve {
    use super::*;
    use crate::engine::resolve::Decision;

    /// A pay whose outcome stays unknown (the provider never answers, status never knows).
    async fn unknown_pay(s: &Setup, id: &str) {
        let v = ask(&s.engine, Request::new(Action::Pay).id(id).amount(700)).await;
        assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    }

    async fn resolve(s: &Setup, id: &str, d: Decision, note: &str) -> Value {
        let answer = s
            .engine
            .resolve(id, &Metadata::new(), d, note, "uid 0 (root)")
            .await;
        serde_json::to_value(answer).unwrap()
    }

    #[tokio::test]
    async fn an_operator_settles_an_unknown_pay_as_charged_and_get_result_answers_it() {
        let s = setup(|| None, vec![]);
        unknown_pay(&s, "u1").await;
        let v = resolve(&s, "u1", Decision::Charged, "paid, seen in the portal").await;
        assert_eq!(v["code"], 0, "{v}");
        assert_eq!(v["data"]["status"], "approved");
        assert_eq!(v["data"]["resolution"]["decision"], "charged");
        assert_eq!(v["data"]["resolution"]["by"], "uid 0 (root)");
        assert_eq!(v["data"]["resolution"]["note"], "paid, seen in the portal");
        assert!(v["data"]["resolution"]["at"].is_string());
        let again = ask(&s.engine, Request::new(Action::GetResult).id("u1")).await;
        assert_eq!(again, v);
        assert_eq!(
            s.engine.journal().get("u1").unwrap().unwrap().state,
            State::Final
        );
        // Final now: a second decision is refused and changes nothing.
        let v2 = resolve(&s, "u1", Decision::NotCharged, "changed my mind").await;
        assert_eq!(v2["reason"], "already_final", "{v2}");
        let after = ask(&s.engine, Request::new(Action::GetResult).id("u1")).await;
        assert_eq!(after, v);
    }

    #[tokio::test]
    async fn an_operator_settles_an_unknown_pay_as_not_charged() {
        let s = setup(|| None, vec![]);
        unknown_pay(&s, "u2").await;
        let v = resolve(
            &s,
            "u2",
            Decision::NotCharged,
            "reader replaced; card 4111111111111111",
        )
        .await;
        assert!(
            !v.to_string().contains("4111111111111111"),
            "a card number in the note is kept masked: {v}"
        );
        assert_eq!(v["error_type"], "default_error", "{v}");
        assert_eq!(v["reason"], "resolved_not_charged");
        assert!(v["message"].as_str().unwrap().contains("reader replaced"));
        let again = ask(&s.engine, Request::new(Action::GetResult).id("u2")).await;
        assert_eq!(again, v);
    }

    #[tokio::test]
    async fn a_final_a_missing_or_a_running_operation_cannot_be_settled_by_hand() {
        let s = setup(|| Some(approved()), vec![]);
        ask(&s.engine, Request::new(Action::Pay).id("f").amount(7)).await;
        let v = resolve(&s, "f", Decision::NotCharged, "x").await;
        assert_eq!(v["reason"], "already_final", "{v}");
        let v = resolve(&s, "nope", Decision::Charged, "x").await;
        assert_eq!(v["error_type"], "result_not_found_error", "{v}");
        let v = resolve(&s, "f", Decision::Charged, "   ").await;
        assert_eq!(v["reason"], "invalid_request", "{v}");

        // An intent with no outcome yet: in flight.
        s.engine
            .journal()
            .begin(Intent {
                request_id: "r".into(),
                action: "pay".into(),
                provider: "phonepe".into(),
                operation: "{}".into(),
                created_at: now_rfc3339(),
            })
            .await
            .unwrap();
        let v = resolve(&s, "r", Decision::NotCharged, "x").await;
        assert_eq!(v["reason"], "in_progress", "{v}");
        assert_eq!(
            s.engine.journal().get("r").unwrap().unwrap().state,
            State::InFlight
        );
    }
}
