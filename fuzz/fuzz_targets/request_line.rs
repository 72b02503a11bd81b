//! Fuzzes the socket's request line parser (`api::protocol::parse`), the first thing
//! every byte a POS sends meets. Invariants: no panic; an accepted request obeys the contract
//! (request_id syntax, amount in range) and, written back as JSON, parses again, to the same
//! request when it holds no non-integer number;
//! a refused one yields exactly one well-formed response line, code 1, `invalid_request`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use posbridge::api::protocol::{
    LIFEPOS_FIELDS, MAX_AMOUNT, Parsed, Request, Shape, parse, valid_request_id,
};
use posbridge::api::render::render;
use posbridge::exchange::Answer;
use serde_json::{Map, Value, json};

/// The request as a POS would write it: every field the parser kept, nothing else.
fn to_json(r: &Request, shape: &Shape) -> Value {
    let mut o = Map::new();
    // The LIFE POS name as sent, when the request used one (it decides the answer's shape).
    let action = match shape {
        Shape::LifePos { action, .. } => action.clone(),
        Shape::V1 => r.action.as_str().to_owned(),
    };
    o.insert("action".into(), json!(action));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("request_id", r.request_id.as_ref().map(|v| json!(v)));
    put("metadata", Some(json!(r.metadata)));
    put("amount", r.amount.map(|v| json!(v)));
    put("currency", r.currency.as_ref().map(|v| json!(v)));
    put("provider", r.provider.as_ref().map(|v| json!(v)));
    put(
        "primary_transaction",
        r.primary_transaction.clone().map(Value::Object),
    );
    // The LIFE POS per-request fields are kept in params but sent at the top level.
    let mut params = r.params.clone();
    for (field, _) in LIFEPOS_FIELDS {
        put(field, params.remove(*field));
    }
    put("params", Some(Value::Object(params)));
    if let Some(res) = &r.resolution {
        put(
            "decision",
            Some(json!(if res.charged { "charged" } else { "not_charged" })),
        );
        put("note", Some(json!(res.note)));
    }
    put("limit", r.limit.map(|v| json!(v)));
    put("address", r.address.as_ref().map(|v| json!(v)));
    put("role", r.role.as_ref().map(|v| json!(v)));
    put("baud", r.baud.map(|v| json!(v)));
    put("id", r.id.as_ref().map(|v| json!(v)));
    put("seconds", r.seconds.map(|v| json!(v)));
    put("progress", r.progress.then_some(json!(true)));
    put("bond", r.bond.map(|m| json!(m.as_str())));
    put(
        "allow_unauthenticated",
        r.allow_unauthenticated.then_some(json!(true)),
    );
    Value::Object(o)
}

fuzz_target!(|data: &[u8]| {
    let Parsed { request, shape } = parse(data);
    match request {
        Ok(request) => {
            if let Some(id) = &request.request_id {
                assert!(valid_request_id(id), "accepted request_id {id:?}");
            }
            if let Some(amount) = request.amount {
                assert!(
                    (1..=MAX_AMOUNT).contains(&amount),
                    "accepted amount {amount}"
                );
            }
            let line = to_json(&request, &shape).to_string();
            assert!(!line.contains('\n'));
            let again = parse(line.as_bytes());
            assert_eq!(again.shape, shape, "re-serialised request answers in another shape");
            let again = again.request.unwrap_or_else(|r| {
                panic!("re-serialised request refused: {} ({line})", r.message)
            });
            // serde_json's default float parsing may move a non-integer number by one ulp on
            // the way back; such a request is only required to parse again.
            if !common::has_float(&to_json(&request, &shape)) {
                assert_eq!(again, request, "re-serialised request differs: {line}");
            }
        }
        Err(rejection) => {
            assert!(!rejection.message.is_empty());
            if let Some(id) = &rejection.request_id {
                assert!(valid_request_id(id), "echoed request_id {id:?}");
            }
            let line = render(&rejection.into_answer(), &Shape::V1);
            assert!(!line.contains('\n'), "a response must be one line: {line}");
            let back: Answer = serde_json::from_str(&line).expect("the response is JSON");
            assert_eq!(back.code(), 1);
            assert_eq!(back.reason(), Some("invalid_request"));
        }
    }
});
