//! Property: any line a client sends gets exactly one well-formed answer over the real socket,
//! and the daemon (and that connection) keep serving.

mod common;

use common::Daemon;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[ -~]{0,20}".prop_map(Value::String),
        Just(json!({"k": "v"})),
        Just(json!([1, "a"])),
    ]
}

fn arb_request() -> impl Strategy<Value = String> {
    let action = prop_oneof![
        Just(json!("pay")),
        Just(json!("refund")),
        Just(json!("cancel")),
        Just(json!("get_result")),
        Just(json!("close_shift")),
        Just(json!("status")),
        Just(json!(
            "ru.lifepay.checkout.payment_terminal.transaction.pay"
        )),
        arb_field_value(),
    ];
    let object = (
        action,
        prop::option::of(arb_field_value()),
        prop::option::of(prop_oneof![
            (1u64..100_000).prop_map(|a| json!(a)),
            arb_field_value()
        ]),
        prop::option::of(arb_field_value()),
        prop::option::of(arb_field_value()),
    )
        .prop_map(|(action, id, amount, metadata, primary)| {
            let mut m = serde_json::Map::new();
            m.insert("action".into(), action);
            let fields = [
                ("request_id", id),
                ("amount", amount),
                ("metadata", metadata),
                ("primary_transaction", primary),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m).to_string()
        });
    prop_oneof![
        4 => object,
        1 => "[ -~]{1,40}",
        1 => arb_field_value().prop_map(|v| v.to_string()),
    ]
}

#[test]
fn any_line_gets_exactly_one_answer_and_the_connection_keeps_working() {
    let daemon = Daemon::start();
    let client = std::cell::RefCell::new(daemon.client());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    runner
        .run(&arb_request(), |line| {
            // A blank line is not a request and gets no answer; skip those.
            prop_assume!(!line.trim().is_empty());
            let raw = client.borrow_mut().line(&line);
            let answer: Value = serde_json::from_str(&raw).expect("the answer is JSON");
            let code = answer["code"].as_i64().expect("code is always there");
            prop_assert!(answer.get("request_id").is_some(), "{raw}");
            prop_assert!(answer["metadata"].is_object(), "{raw}");
            // A LIFE POS action name gets the contract's shape (document 003): the action
            // echoed, a request_id always, `data` a JSON string, `log` instead of `reason`.
            let contract = answer.get("action").is_some();
            if contract {
                prop_assert!(answer["request_id"].is_string(), "{raw}");
            }
            if code == 0 && contract {
                let data = answer["data"].as_str().unwrap_or_default();
                prop_assert!(serde_json::from_str::<Value>(data).is_ok(), "{raw}");
            } else if code == 0 {
                prop_assert!(answer["data"].is_object(), "{raw}");
            } else {
                let t = answer["error_type"].as_str().unwrap_or_default();
                prop_assert!(
                    [
                        "default_error",
                        "unknown_result_error",
                        "duplicate_request_error",
                        "result_not_found_error"
                    ]
                    .contains(&t),
                    "{raw}"
                );
                let detail = if contract { "log" } else { "reason" };
                prop_assert!(
                    answer[detail].is_string() && answer["message"].is_string(),
                    "{raw}"
                );
            }
            // The same connection still serves.
            let status = client.borrow_mut().request(&json!({"action": "status"}));
            prop_assert_eq!(&status["code"], &json!(0));
            Ok(())
        })
        .unwrap();
    assert_eq!(daemon.request(json!({"action": "status"}))["code"], 0);
}
