//! Turning a provider's outcome into the answer that is stored and sent (the `data` shape).

use serde_json::{json, Map, Value};

use crate::api::protocol::{ErrorType, Response};
use crate::clock::now_rfc3339;
use crate::journal::{Entry, State};
use crate::provider::{Operation, Outcome};

/// How an unknown outcome is answered: `unknown_result_error` where a status check (and so
/// get_result) can settle it later, else `default_error` (the LIFE POS contract gives
/// `unknown_result_error` only where get_result can answer; see `Provider::status_can_settle`).
/// Either way the operation stays unknown in the journal, for the reconciler or an operator.
pub fn unknown_type(askable: bool) -> ErrorType {
    if askable {
        ErrorType::UnknownResultError
    } else {
        ErrorType::DefaultError
    }
}

/// The journal state and the response for `outcome`; `askable`: see [`unknown_type`].
pub fn build(op: &Operation, outcome: Outcome, askable: bool) -> (State, Response) {
    let id = Some(op.request_id.clone());
    let meta = op.metadata.clone();
    match outcome {
        Outcome::Approved(a) => {
            let mut data = Map::new();
            data.insert("request_id".into(), json!(op.request_id));
            data.insert("operation".into(), json!(op.kind.as_str()));
            data.insert("provider".into(), json!(op.provider));
            data.insert("status".into(), json!(a.status));
            // `amount` is what the POS asked for; what the backend says it charged, when it
            // reports a total of its own (a tip, cashback, a surcharge), is `charged_amount`.
            data.insert("amount".into(), json!(op.amount));
            if let Some(charged) = a.charged_amount {
                data.insert("charged_amount".into(), json!(charged));
            }
            let extra = a.extra;
            data.insert("currency".into(), json!(op.currency));
            let optional = [
                ("provider_reference", a.provider_reference.map(Value::from)),
                ("rrn", a.rrn.map(Value::from)),
                ("approval_code", a.approval_code.map(Value::from)),
                ("card", a.card.map(|c| json!(c))),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    data.insert(key.into(), v);
                }
            }
            if let Some(p) = &op.primary {
                data.insert(
                    "primary".into(),
                    json!({"request_id": p.request_id, "provider_reference": p.provider_reference}),
                );
            }
            // `backend_id` comes first among the extras, after only an operator's `resolution`
            // (resolve.rs): where it stood when it was one of them.
            let resolution = extra
                .get("resolution")
                .map(|r| ("resolution".into(), r.clone()));
            let backend_id = a.backend_id.map(|b| ("backend_id".to_owned(), json!(b)));
            for (k, v) in resolution.into_iter().chain(backend_id).chain(extra) {
                data.entry(k).or_insert(v);
            }
            data.insert("created_at".into(), json!(op.created_at));
            data.insert("completed_at".into(), json!(now_rfc3339()));
            (State::Final, Response::ok(id, meta, Value::Object(data)))
        }
        Outcome::ShiftClosed(mut summary) => {
            if let Value::Object(m) = &mut summary {
                m.insert("request_id".into(), json!(op.request_id));
                m.insert("created_at".into(), json!(op.created_at));
                m.insert("completed_at".into(), json!(now_rfc3339()));
            }
            (State::Final, Response::ok(id, meta, summary))
        }
        Outcome::Failed(f) => (
            State::Final,
            Response::error(id, meta, ErrorType::DefaultError, &f.reason, f.message),
        ),
        // The engine weighs a "not found" against the evidence before it gets here
        // (`Engine::weigh`); should one get through, it is not taken as "nothing charged".
        Outcome::Unknown(f) | Outcome::NotFound(f) if !askable => {
            let f = not_askable(op, f);
            (
                State::Unknown,
                Response::error(id, meta, unknown_type(false), &f.reason, f.message),
            )
        }
        Outcome::Unknown(f) | Outcome::NotFound(f) => (
            State::Unknown,
            Response::error(id, meta, unknown_type(true), &f.reason, f.message),
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

/// One line for the log: the status or the reason, never card data.
pub fn summary(r: &Response) -> String {
    match (&r.data, &r.reason) {
        (Some(d), _) => d["status"].as_str().unwrap_or("done").to_owned(),
        (None, Some(reason)) => format!(
            "{} ({reason})",
            r.error_type.map_or("error", ErrorType::as_str)
        ),
        _ => "answered".into(),
    }
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
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
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
