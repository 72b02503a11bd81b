//! The Paysera status rule and its answer classifier, exhaustively: every order status a
//! status check can read, with and without a confirm sent, inside and past the sale's window,
//! against every kind of answer to the revoke and to the read that follows it. What must
//! hold (issue 16): "not charged" only after Paysera said the transaction can never be paid;
//! a confirm only within the window and never twice; a reservation past the deadline never
//! confirmed; absence only where an answer said "not found".

use super::super::client::ApiError;
use super::super::release::{conclude, read_after_revoke, Released};
use super::{step, Step};
use crate::provider::{Approval, Failure, Outcome};

fn refused(error: &str) -> ApiError {
    ApiError::Refused {
        status: 409,
        error: error.into(),
        description: "d".into(),
        skew: None,
    }
}

fn garbled() -> ApiError {
    ApiError::Garbled {
        status: 502,
        detail: "<html>".into(),
    }
}

/// A revoke answer: Ok, or an error.
fn revokes() -> Vec<(&'static str, Option<ApiError>)> {
    vec![
        ("ok", None),
        ("invalid_state", Some(refused("invalid_state"))),
        ("not_found", Some(refused("not_found"))),
        ("unauthorized", Some(refused("unauthorized"))),
        ("garbled", Some(garbled())),
    ]
}

fn reads() -> Vec<(&'static str, Result<String, ApiError>)> {
    let mut v: Vec<(&str, Result<String, ApiError>)> = [
        "new",
        "waiting",
        "reserved",
        "confirmed",
        "revoked",
        "rejected",
        "failed",
    ]
    .into_iter()
    .map(|s| (s, Ok(s.to_owned())))
    .collect();
    v.push(("read not_found", Err(refused("not_found"))));
    v.push(("read garbled", Err(garbled())));
    v
}

/// What `release` answers for one revoke answer and one read (the read only when the revoke
/// was refused or unanswered, and not `not_found`).
fn released(revoke: &Option<ApiError>, read: Result<String, ApiError>) -> Released {
    match revoke {
        None => Released::Gone,
        Some(e) if e.is("not_found") => Released::Missing(e.to_string()),
        Some(e) => read_after_revoke(e, read),
    }
}

fn charged() -> Outcome {
    Outcome::Approved(Approval {
        status: "approved".into(),
        ..Default::default()
    })
}

#[test]
fn not_charged_only_after_paysera_said_so_and_no_late_or_second_confirm() {
    let mut cases = 0;
    for status in ["pending", "reserved", "confirmed", "closed", "odd"] {
        for confirm_sent in [false, true] {
            for window_open in [false, true] {
                let s = step(status, confirm_sent, window_open);
                let case = format!("{status} sent={confirm_sent} open={window_open}: {s:?}");
                if s == Step::Confirm {
                    assert!(
                        status == "reserved" && window_open && !confirm_sent,
                        "a confirm only within the window, and never twice: {case}"
                    );
                }
                if status == "reserved" && !window_open {
                    assert!(
                        matches!(s, Step::Release(_)),
                        "a reservation past the deadline is revoked: {case}"
                    );
                }
                if status == "reserved" && window_open && !confirm_sent {
                    assert_eq!(s, Step::Confirm, "{case}");
                }
                if status == "confirmed" {
                    assert_eq!(s, Step::Approve, "{case}");
                }
                if status != "confirmed" {
                    assert_ne!(s, Step::Approve, "{case}");
                }
                let Step::Release(_) = s else {
                    cases += 1;
                    continue;
                };
                for (rname, revoke) in revokes() {
                    for (name, read) in reads() {
                        cases += 1;
                        let read_status = read.as_ref().ok().cloned();
                        let r = released(&revoke, read);
                        let out = conclude(r, Failure::new("expired", "x"), charged);
                        let case = format!("{case} revoke {rname}, read {name}: {out:?}");
                        let gone = revoke.is_none()
                            || rname != "not_found"
                                && matches!(read_status.as_deref(), Some("revoked" | "rejected"));
                        match &out {
                            Outcome::Failed(_) => {
                                assert!(gone, "not charged without proof: {case}")
                            }
                            Outcome::Approved(_) => assert!(
                                rname != "not_found" && read_status.as_deref() == Some("confirmed"),
                                "{case}"
                            ),
                            Outcome::NotFound(_) => assert!(
                                rname == "not_found" || name == "read not_found",
                                "absence only from a not_found: {case}"
                            ),
                            Outcome::Unknown(_) => assert!(!gone, "{case}"),
                            Outcome::ShiftClosed(_) => panic!("{case}"),
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 100, "{cases}");
}
