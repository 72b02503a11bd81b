//! Unit and property tests for request parsing.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use serde_json::Value;

fn parse(v: Value) -> Result<Request, Rejection> {
    parse_request(v.to_string().as_bytes())
}

fn rejected_field(v: Value) -> &'static str {
    parse(v)
        .expect_err("must be rejected")
        .field
        .expect("names a field")
}

#[test]
fn pay_with_every_field() {
    let r = parse(json!({
        "action": "pay", "request_id": "pos-1:a.b_c", "amount": 100, "currency": "INR",
        "provider": "sim", "metadata": {"till": "3"}, "params": {"delay_ms": 5}
    }))
    .unwrap();
    assert_eq!(r.action, Action::Pay);
    assert_eq!(r.request_id.as_deref(), Some("pos-1:a.b_c"));
    assert_eq!(r.amount, Some(100));
    assert_eq!(r.metadata.get("till").map(String::as_str), Some("3"));
    assert_eq!(r.params["delay_ms"], json!(5));
}

#[test]
fn progress_is_a_boolean_taken_only_by_operations_and_scan() {
    let pay = |p: Value| parse(json!({"action": "pay", "amount": 1, "progress": p}));
    assert!(pay(json!(true)).unwrap().progress);
    assert!(!pay(json!(false)).unwrap().progress);
    assert!(!pay(Value::Null).unwrap().progress);
    for bad in [json!("true"), json!(1), json!({})] {
        assert_eq!(
            rejected_field(json!({"action": "pay", "amount": 1, "progress": bad})),
            "progress"
        );
    }
    let lifepos = "ru.lifepay.checkout.payment_terminal.transaction.refund";
    let r = parse(json!({"action": lifepos, "amount": 1, "progress": true,
        "primary_transaction": {"provider": "sim", "amount": 1}}))
    .unwrap();
    assert!(r.progress);
    // Taken, and nothing to tell: get_result and status never have events.
    let asked = parse(json!({"action": "get_result", "request_id": "a", "progress": true}));
    assert!(!asked.unwrap().progress);
    assert!(
        !parse(json!({"action": "status", "progress": true}))
            .unwrap()
            .progress
    );
    // A scan tells the devices it hears.
    assert!(
        parse(json!({"action": "scan", "progress": true}))
            .unwrap()
            .progress
    );
}

#[test]
fn lifepay_aliases_map_to_actions() {
    for (alias, action) in [
        (
            "ru.lifepay.checkout.payment_terminal.transaction.pay",
            Action::Pay,
        ),
        (
            "ru.lifepay.checkout.payment_terminal.transaction.refund",
            Action::Refund,
        ),
        (
            "ru.lifepay.checkout.payment_terminal.transaction.cancel",
            Action::Cancel,
        ),
        (
            "ru.lifepay.checkout.payment_terminal.transaction.get_result",
            Action::GetResult,
        ),
        (
            "ru.lifepay.checkout.payment_terminal.close_shift",
            Action::CloseShift,
        ),
    ] {
        assert_eq!(action_of(alias), Some(action), "{alias}");
        assert_eq!(
            parse(
                json!({"action": alias, "request_id": "a", "amount": 1, "primary_transaction": {}})
            )
            .unwrap()
            .action,
            action
        );
    }
    assert_eq!(
        action_of("ru.lifepay.checkout.payment_terminal.status"),
        None
    );
    assert_eq!(Action::parse("PAY"), None);
}

#[test]
fn amount_errors_name_the_field_and_reason() {
    for bad in [json!("100"), json!(-5), json!(0), json!(1.5), json!(true)] {
        let err = parse(json!({"action": "pay", "amount": bad})).unwrap_err();
        assert_eq!(err.field, Some("amount"), "{bad}");
        assert!(err.message.starts_with("amount: "), "{}", err.message);
    }
    for (line, expect) in [
        (
            r#"{"action":"pay","amount":18446744073709551616}"#,
            "amount: must be at most",
        ),
        (
            r#"{"action":"pay","amount":1e3}"#,
            "amount: must be written as a plain integer",
        ),
        (
            r#"{"action":"pay","amount":-1e30}"#,
            "amount: must be greater than 0",
        ),
        (
            r#"{"action":"pay","amount":2.5}"#,
            "amount: must be a whole number",
        ),
    ] {
        let err = parse_request(line.as_bytes()).unwrap_err();
        assert!(err.message.starts_with(expect), "{line}: {}", err.message);
    }
    let err = parse(json!({"action": "pay", "amount": "100"})).unwrap_err();
    assert!(err.message.contains("not a string"), "{}", err.message);
    assert_eq!(rejected_field(json!({"action": "pay"})), "amount");
}

#[test]
fn request_id_rules() {
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "request_id": ""})),
        "request_id"
    );
    let long = "a".repeat(65);
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "request_id": long})),
        "request_id"
    );
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "request_id": "a b"})),
        "request_id"
    );
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "request_id": 7})),
        "request_id"
    );
    assert_eq!(
        rejected_field(json!({"action": "get_result"})),
        "request_id"
    );
    assert!(parse(json!({"action": "pay", "amount": 1, "request_id": "a".repeat(64)})).is_ok());
}

#[test]
fn refund_needs_primary_as_object_or_json_string() {
    assert_eq!(
        rejected_field(json!({"action": "refund", "amount": 1})),
        "primary_transaction"
    );
    assert_eq!(
        rejected_field(json!({"action": "cancel", "amount": 1, "primary_transaction": "[1]"})),
        "primary_transaction"
    );
    let r = parse(json!({"action": "refund", "amount": 1,
        "primary_transaction": "{\"provider\":\"sim\",\"amount\":5}"}))
    .unwrap();
    assert_eq!(r.primary_transaction.unwrap()["amount"], json!(5));
}

#[test]
fn other_fields_are_checked() {
    assert_eq!(rejected_field(json!({"action": "fly"})), "action");
    assert_eq!(rejected_field(json!({"amount": 1})), "action");
    assert_eq!(rejected_field(json!({"action": 3})), "action");
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "currency": "inr"})),
        "currency"
    );
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "metadata": {"a": 1}})),
        "metadata"
    );
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "metadata": []})),
        "metadata"
    );
    assert_eq!(
        rejected_field(json!({"action": "pay", "amount": 1, "params": "x"})),
        "params"
    );
    assert_eq!(
        rejected_field(json!({"action": "results", "limit": 0})),
        "limit"
    );
}

#[test]
fn rejection_echoes_request_id_and_metadata() {
    let err =
        parse(json!({"action": "pay", "request_id": "r1", "metadata": {"k": "v"}, "amount": "x"}))
            .unwrap_err();
    let answer = err.into_answer();
    assert_eq!(answer.request_id.as_deref(), Some("r1"));
    assert_eq!(answer.metadata.get("k").map(String::as_str), Some("v"));
    assert_eq!(
        answer.kind(),
        Some(crate::exchange::ErrorKind::DefaultError)
    );
    assert_eq!(answer.reason(), Some("invalid_request"));
}

#[test]
fn non_objects_and_garbage_are_refused() {
    for line in [
        &b"[]"[..],
        b"42",
        b"\"pay\"",
        b"null",
        b"{",
        b"\xff\xfe",
        b"",
    ] {
        let err = parse_request(line).unwrap_err();
        assert!(err.field.is_none());
        assert!(!err.message.is_empty());
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z_.]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("pay"),
            Just("refund"),
            Just("get_result"),
            Just("status")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("action".to_owned()),
                    Just("amount".to_owned()),
                    Just("request_id".to_owned()),
                    Just("metadata".to_owned()),
                    Just("primary_transaction".to_owned()),
                    Just("params".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Any JSON value, any byte string: parsing never panics, and a rejection always
    /// becomes one well-formed invalid_request response line.
    #[test]
    fn any_json_line_gets_exactly_one_answer(v in arb_json()) {
        let line = v.to_string();
        match parse_request(line.as_bytes()) {
            Ok(r) => prop_assert!(r.amount.is_none_or(|a| a > 0)),
            Err(rej) => {
                let out = crate::api::render::render(&rej.into_answer(), &Shape::V1);
                prop_assert!(!out.contains('\n'));
                let back: crate::exchange::Answer = serde_json::from_str(&out).unwrap();
                prop_assert_eq!(back.reason(), Some("invalid_request"));
            }
        }
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request(&bytes);
    }
}

#[test]
fn device_actions_check_their_fields() {
    let r = parse(json!({"action": "pair", "address": "serial:/dev/ttyACM0",
                         "role": "card-reader", "baud": 9600}))
    .unwrap();
    assert_eq!(r.action, Action::Pair);
    assert_eq!(r.address.as_deref(), Some("serial:/dev/ttyACM0"));
    assert_eq!(r.role.as_deref(), Some("card-reader"));
    assert_eq!(r.baud, Some(9600));
    assert!(Action::Pair.needs_admin() && Action::Unpair.needs_admin());
    assert!(
        Action::Resolve.needs_admin(),
        "an operator's word settles money: admin only"
    );
    assert!(!Action::Devices.needs_admin());
    assert_eq!(
        rejected_field(json!({"action": "pair", "role": "card-reader"})),
        "address"
    );
    assert_eq!(
        rejected_field(json!({"action": "pair", "address": "serial:/x"})),
        "role"
    );
    assert_eq!(
        rejected_field(json!({"action": "pair", "address": "serial:/x", "role": "printer"})),
        "role"
    );
    assert_eq!(
        rejected_field(
            json!({"action": "pair", "address": "serial:/x", "role": "card-reader",
                              "baud": 0})
        ),
        "baud"
    );
    assert_eq!(rejected_field(json!({"action": "unpair"})), "id");
    assert_eq!(
        parse(json!({"action": "devices"})).unwrap().action,
        Action::Devices
    );
    assert_eq!(
        parse(json!({"action": "unpair", "id": "card-reader-1"}))
            .unwrap()
            .id
            .as_deref(),
        Some("card-reader-1")
    );
}
