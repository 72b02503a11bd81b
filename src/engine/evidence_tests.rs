//! The evidence rule: a "not found" after a backend showed the transaction exists never settles
//! an operation as "nothing was charged"; without evidence it does; an operation unknown past
//! the bound becomes `manual_check` and a later positive answer still settles it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use serde_json::Value;

use super::tests::ask;
use super::*;
use crate::journal::Batching;
use crate::provider::{self, Outcome};
use crate::provider::{Approval, Common};

/// What a backend answers, in the order the provider sees it.
#[derive(Clone, Debug)]
enum Said {
    /// Shows the transaction exists (init accepted, pending, a transaction key).
    Exists,
    NotFound,
    Unclear,
    Declined,
    Charged,
}

/// Plays `execute_says` during execute (stopping at the first final verdict), then one
/// answer of `status_says` per status check.
struct Backend {
    execute_says: Vec<Said>,
    status_says: Mutex<Vec<Said>>,
}

async fn verdict(op: &Operation, said: &Said) -> Option<Outcome> {
    match said {
        Said::Exists => {
            op.progress.witness("the backend showed it").await.unwrap();
            None
        }
        Said::NotFound => Some(Outcome::NotFound(Failure::new(
            "not_processed",
            "never received: nothing was charged",
        ))),
        Said::Unclear => None,
        Said::Declined => Some(Outcome::Failed(Failure::new("declined", "declined"))),
        Said::Charged => Some(Outcome::Approved(Approval {
            status: "approved".into(),
            ..Default::default()
        })),
    }
}

#[async_trait]
impl Provider for Backend {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "phonepe",
            "INR",
            Duration::from_secs(5),
            &[Duration::from_millis(10)],
        );
        &COMMON
    }
    async fn execute(&self, op: &Operation) -> Outcome {
        for said in &self.execute_says {
            if let Some(o) = verdict(op, said).await {
                return o;
            }
        }
        Outcome::Unknown(Failure::new("timeout", "no final answer"))
    }
    async fn status(&self, op: &Operation) -> Outcome {
        let next = {
            let mut s = self.status_says.lock().unwrap();
            (!s.is_empty()).then(|| s.remove(0))
        };
        match next {
            Some(said) => verdict(op, &said)
                .await
                .unwrap_or_else(|| Outcome::Unknown(Failure::new("in_progress", "pending"))),
            None => Outcome::Unknown(Failure::new("timeout", "no answer")),
        }
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    journal: Arc<Journal>,
    engine: Arc<Engine>,
}

fn rig(execute_says: Vec<Said>, status_says: Vec<Said>) -> Rig {
    rig_with(Arc::new(Backend {
        execute_says,
        status_says: Mutex::new(status_says),
    }))
}

/// A journal and an engine with `provider` (the default one).
fn rig_with(provider: Arc<dyn Provider>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let journal =
        Arc::new(Journal::open(&dir.path().join("j.sqlite"), 50, Batching::default()).unwrap());
    let name = provider.name().to_owned();
    let (engine, _queue) = Engine::new(journal.clone(), vec![provider], name, TaskTracker::new());
    Rig {
        _dir: dir,
        journal,
        engine,
    }
}

impl Rig {
    async fn pay(&self, id: &str) -> Value {
        ask(&self.engine, Request::new(Action::Pay).id(id).amount(100)).await
    }

    /// Status checks until final or `checks` have run; the answer get_result then gives.
    async fn reconcile(&self, id: &str, checks: usize) -> Value {
        for _ in 0..checks {
            let entry = self.journal.get(id).unwrap().unwrap();
            if entry.state == State::Final {
                break;
            }
            self.engine.reconcile_once(&entry).await;
        }
        let entry = self.journal.get(id).unwrap().unwrap();
        serde_json::to_value(entry.response.unwrap()).unwrap()
    }
}

#[tokio::test]
async fn not_found_without_evidence_is_not_charged() {
    let r = rig(vec![Said::Unclear], vec![Said::NotFound]);
    assert_eq!(r.pay("a").await["error_type"], "unknown_result_error");
    let v = r.reconcile("a", 1).await;
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], "not_processed", "{v}");
}

#[tokio::test]
async fn not_found_after_evidence_stays_unknown_and_a_later_charge_settles_it() {
    let r = rig(
        vec![Said::Exists],
        vec![Said::NotFound, Said::NotFound, Said::Charged],
    );
    assert_eq!(r.pay("b").await["error_type"], "unknown_result_error");
    let stored: Operation =
        serde_json::from_str(&r.journal.get("b").unwrap().unwrap().operation).unwrap();
    assert!(stored.progress.evidence().is_some(), "evidence journaled");
    let v = r.reconcile("b", 2).await;
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    assert_eq!(v["reason"], "contradiction", "{v}");
    assert!(
        !v["message"]
            .as_str()
            .unwrap()
            .contains("nothing was charged"),
        "{v}"
    );
    let v = r.reconcile("b", 1).await;
    assert_eq!(v["code"], 0, "the backend found it later: {v}");
}

#[tokio::test]
async fn evidence_seen_by_a_status_check_counts_after_the_execute() {
    // Execute saw nothing; the reconciler's first check sees it pending; then "not found".
    let r = rig(vec![Said::Unclear], vec![Said::Exists, Said::NotFound]);
    r.pay("c").await;
    let v = r.reconcile("c", 2).await;
    assert_eq!(v["reason"], "contradiction", "{v}");
}

#[tokio::test]
async fn not_found_inside_execute_after_evidence_is_unknown() {
    let r = rig(vec![Said::Exists, Said::NotFound], vec![]);
    let v = r.pay("d").await;
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    assert_eq!(v["reason"], "contradiction", "{v}");
}

#[tokio::test]
async fn a_contradiction_older_than_the_bound_becomes_a_manual_check_and_stays_open() {
    let r = rig(vec![Said::Exists], vec![Said::NotFound, Said::Charged]);
    r.engine.set_manual_check_after(Duration::ZERO);
    r.pay("e").await;
    let v = r.reconcile("e", 1).await;
    assert_eq!(v["reason"], "manual_check", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("posbridge resolve e"),
        "{v}"
    );
    assert_eq!(r.engine.manual_checks(), vec!["e".to_owned()]);
    let status: Value = serde_json::to_value(r.engine.status(None, Default::default())).unwrap();
    assert_eq!(status["data"]["manual_check"], serde_json::json!(["e"]));
    assert_eq!(status["data"]["journal"]["manual_check"], 1);
    let entry = r.journal.get("e").unwrap().unwrap();
    assert!(
        r.engine.wait_before(&entry, 6) > r.engine.wait_before(&entry, 0),
        "a manual check backs off"
    );
    let v = r.reconcile("e", 1).await;
    assert_eq!(v["code"], 0, "{v}");
    assert!(r.engine.manual_checks().is_empty());
}

fn said() -> impl Strategy<Value = Said> {
    prop_oneof![
        Just(Said::Exists),
        Just(Said::NotFound),
        Just(Said::Unclear),
        Just(Said::Declined),
        Just(Said::Charged),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// For any sequence of answers that contains evidence, the outcome is never "nothing
    /// charged" unless a positive terminal answer (declined) is in it.
    #[test]
    fn evidence_is_never_undone_by_not_found(
        execute in proptest::collection::vec(said(), 0..4),
        status in proptest::collection::vec(said(), 0..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = rig(execute.clone(), status.clone());
            r.pay("p").await;
            let v = r.reconcile("p", status.len()).await;
            // The rule, as a model: answers in order; evidence is kept; "not found" ends the
            // operation only without evidence; execute stops at its first verdict.
            let mut evidence = false;
            let mut model = "unknown";
            'walk: for (phase, answers) in [(0, &execute), (1, &status)] {
                for s in answers.iter() {
                    match s {
                        Said::Exists => evidence = true,
                        Said::Unclear => {}
                        Said::NotFound if evidence => if phase == 0 { continue 'walk },
                        Said::NotFound => { model = "not_processed"; break 'walk }
                        Said::Declined => { model = "declined"; break 'walk }
                        Said::Charged => { model = "approved"; break 'walk }
                    }
                }
            }
            let got = if v["code"] == 0 {
                "approved"
            } else if v["error_type"] == "unknown_result_error" {
                "unknown"
            } else {
                v["reason"].as_str().unwrap_or("?")
            };
            prop_assert_eq!(got, model, "{:?} {:?}: {}", execute, status, v);
            if evidence && model != "declined" {
                prop_assert_ne!(&v["reason"], "not_processed");
            }
            Ok(())
        })?;
    }
}

/// A provider that can never be asked about an operation (an IOT Pay refund, a reader's
/// shift close).
struct Unaskable;

#[async_trait]
impl Provider for Unaskable {
    fn common(&self) -> &Common {
        static COMMON: Common = Common::fixed(
            "iotpay",
            "USD",
            Duration::from_secs(5),
            &[Duration::from_millis(10)],
        );
        &COMMON
    }
    fn status_can_settle(&self, _kind: provider::OpKind) -> bool {
        false
    }
    async fn execute(&self, _op: &Operation) -> Outcome {
        Outcome::Unknown(Failure::new("timeout", "the answer was lost"))
    }
    async fn status(&self, _op: &Operation) -> Outcome {
        Outcome::Unknown(Failure::new("timeout", "cannot be asked"))
    }
}

#[tokio::test]
async fn an_outcome_get_result_can_never_settle_is_a_default_error_kept_open_for_a_person() {
    let Rig {
        journal, engine, ..
    } = &rig_with(Arc::new(Unaskable));
    let v = ask(engine, Request::new(Action::Pay).id("u1").amount(5)).await;
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], "manual_check", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("posbridge resolve u1"),
        "{v}"
    );
    assert_eq!(journal.get("u1").unwrap().unwrap().state, State::Unknown);
    // get_result answers the same, and the operation stays open.
    let again = ask(engine, Request::new(Action::GetResult).id("u1")).await;
    assert_eq!(again, v);
    // Interrupted by a restart: the same shape, not unknown_result_error.
    let intent = crate::journal::Intent {
        request_id: "u2".into(),
        action: "pay".into(),
        provider: "iotpay".into(),
        operation: serde_json::json!({"request_id": "u2", "kind": "pay", "provider": "iotpay",
            "amount": 5, "currency": "USD", "created_at": "2026-01-01T00:00:00Z",
            "backend_id": "P0"})
        .to_string(),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    journal.begin(intent).await.unwrap();
    engine.recover().await.unwrap();
    let stored: Value =
        serde_json::to_value(journal.get("u2").unwrap().unwrap().response.unwrap()).unwrap();
    assert_eq!(stored["error_type"], "default_error", "{stored}");
    assert_eq!(stored["reason"], "manual_check", "{stored}");
}
