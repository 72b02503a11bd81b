//! Turning a provider's outcome into the answer that is stored and sent: an approved money
//! movement as a typed [`Transaction`], a shift summary as the provider gave it, a failure or
//! an unknown outcome as a refusal of the right kind.

use serde_json::{json, Value};

use crate::clock::now_rfc3339;
use crate::exchange::{Answer, ErrorKind, PrimaryRef, Transaction};
use crate::journal::{Entry, State};
use crate::provider::{Approval, Operation, Outcome};

/// How an unknown outcome is answered: `unknown_result_error` where a status check (and so
/// get_result) can settle it later, else `default_error` (the LIFE POS contract gives
/// `unknown_result_error` only where get_result can answer; see `Provider::status_can_settle`).
/// Either way the operation stays unknown in the journal, for the reconciler or an operator.
pub fn unknown_type(askable: bool) -> ErrorKind {
    if askable {
        ErrorKind::UnknownResultError
    } else {
        ErrorKind::DefaultError
    }
}

/// The data of an approved `op`: its own fields, what the backend reported, then the
/// provider's extras (in the provider's order, skipping keys already present).
fn transaction(op: &Operation, a: Approval) -> Transaction {
    let mut t = Transaction {
        request_id: op.request_id.clone(),
        operation: op.kind.as_str().to_owned(),
        provider: op.provider.clone(),
        status: a.status,
        // `amount` is what the POS asked for; what the backend says it charged, when it
        // reports a total of its own (a tip, cashback, a surcharge), is `charged_amount`.
        amount: op.amount,
        charged_amount: a.charged_amount,
        currency: op.currency.clone(),
        provider_reference: a.provider_reference,
        rrn: a.rrn,
        approval_code: a.approval_code,
        card: a.card.map(|c| json!(c)),
        primary: op.primary.as_ref().map(|p| PrimaryRef {
            request_id: p.request_id.clone(),
            provider_reference: p.provider_reference.clone(),
        }),
        // An operator's decision (resolve.rs) comes as an extra; it is the engine's own field.
        resolution: a.extra.get("resolution").cloned(),
        backend_id: a.backend_id,
        extra: Default::default(),
        created_at: op.created_at.clone(),
        completed_at: now_rfc3339(),
    };
    t.add_extras(a.extra);
    t
}

/// The journal state and the answer for `outcome`; `askable`: see [`unknown_type`].
pub fn build(op: &Operation, outcome: Outcome, askable: bool) -> (State, Answer) {
    let id = Some(op.request_id.clone());
    let meta = op.metadata.clone();
    match outcome {
        Outcome::Approved(a) => (State::Final, Answer::done(id, meta, transaction(op, a))),
        Outcome::ShiftClosed(mut summary) => {
            if let Value::Object(m) = &mut summary {
                m.insert("request_id".into(), json!(op.request_id));
                m.insert("created_at".into(), json!(op.created_at));
                m.insert("completed_at".into(), json!(now_rfc3339()));
            }
            (State::Final, Answer::done(id, meta, summary))
        }
        Outcome::Failed(f) => (
            State::Final,
            Answer::refused(id, meta, ErrorKind::DefaultError, &f.reason, f.message),
        ),
        // The engine weighs a "not found" against the evidence before it gets here
        // (`Engine::weigh`); should one get through, it is not taken as "nothing charged".
        Outcome::Unknown(f) | Outcome::NotFound(f) if !askable => {
            let f = not_askable(op, f);
            (
                State::Unknown,
                Answer::refused(id, meta, unknown_type(false), &f.reason, f.message),
            )
        }
        Outcome::Unknown(f) | Outcome::NotFound(f) => (
            State::Unknown,
            Answer::refused(id, meta, unknown_type(true), &f.reason, f.message),
        ),
    }
}

/// An unknown outcome no status check can settle: a person must (`manual_check`).
pub fn not_askable(op: &Operation, f: crate::provider::Failure) -> crate::provider::Failure {
    if f.reason == super::evidence::MANUAL_CHECK {
        return f;
    }
    crate::provider::Failure::new(
        super::evidence::MANUAL_CHECK,
        format!(
            "The outcome of this {} is not known ({}), and {} cannot be asked about it later: \
             check it by hand (backend id {}) before doing it again, then settle it with \
             `posbridge resolve {}`.",
            op.kind.as_str(),
            f.reason,
            op.provider,
            op.backend_id,
            op.request_id
        ),
    )
}

/// An entry as `results` lists it.
pub fn listing(e: &Entry) -> Value {
    let state = match e.state {
        State::InFlight => "in_flight",
        State::Unknown => "unknown",
        State::Final => "final",
    };
    let response = e
        .response
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or(Value::Null);
    json!({
        "request_id": e.request_id,
        "action": e.action,
        "provider": e.provider,
        "state": state,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "response": response,
    })
}
