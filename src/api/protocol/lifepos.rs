//! The LIFE POS Checkout payment-terminal contract (seed document 003) at the socket, as
//! requests write it: its action names (`ru.lifepay.checkout.payment_terminal....`) and the
//! per-request fields it adds for the Lifepay QPOS reader. A request named the contract's way
//! is answered in the contract's shape (`Shape::LifePos`, written by `api::render`).

use serde_json::{Map, Value};

use super::request::{kind_of, Fields};
use super::{Action, Rejection};

/// The prefix of the LIFE POS Checkout action names.
pub const LIFEPAY_PREFIX: &str = "ru.lifepay.checkout.payment_terminal.";

/// The action a LIFE POS Checkout action name (the full name) stands for.
pub fn action_of(name: &str) -> Option<Action> {
    Some(match name.strip_prefix(LIFEPAY_PREFIX)? {
        "transaction.pay" => Action::Pay,
        "transaction.refund" => Action::Refund,
        "transaction.cancel" => Action::Cancel,
        "transaction.get_result" => Action::GetResult,
        "close_shift" => Action::CloseShift,
        _ => return None,
    })
}

/// The contract's per-request fields for the Lifepay QPOS reader, and the actions that take
/// each (document: "Дополнительные параметры запроса для терминала Lifepay QPOS").
pub const LIFEPOS_FIELDS: &[(&str, &[Action])] = &[
    (
        "login",
        &[
            Action::Pay,
            Action::Refund,
            Action::Cancel,
            Action::GetResult,
        ],
    ),
    (
        "password",
        &[
            Action::Pay,
            Action::Refund,
            Action::Cancel,
            Action::GetResult,
        ],
    ),
    (
        "sign_on_screen",
        &[Action::Pay, Action::Refund, Action::Cancel],
    ),
    ("email", &[Action::Pay]),
    ("phone", &[Action::Pay]),
    ("recipient_inn", &[Action::Pay]),
];

/// Checks the contract's per-request fields of `action` and puts them in `params` under
/// their own names (the provider reads them there; the engine keeps `password` out of the
/// journal). Each is a string; a field the action does not take is refused by name.
pub(super) fn request_fields(
    f: &Fields<'_>,
    action: Action,
    params: &mut Map<String, Value>,
) -> Result<(), Rejection> {
    for (name, actions) in LIFEPOS_FIELDS {
        if params.contains_key(*name) {
            return Err(f.reject(
                "params",
                format!(
                    "{name} is a request field of its own: send it next to action, not in params"
                ),
            ));
        }
        let Some(value) = f.get(name) else { continue };
        let Value::String(text) = value else {
            return Err(f.reject(
                field(name),
                format!("must be a string, not {}", kind_of(value)),
            ));
        };
        if !actions.contains(&action) {
            let takers: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            return Err(f.reject(
                field(name),
                format!(
                    "is not a field of {}; only {} take it",
                    action.as_str(),
                    takers.join(", ")
                ),
            ));
        }
        if let Err(why) = check(name, text) {
            return Err(f.reject(field(name), why.into()));
        }
        params.insert((*name).to_owned(), value.clone());
    }
    if params.contains_key("login") != params.contains_key("password") {
        let missing = if params.contains_key("login") {
            "password"
        } else {
            "login"
        };
        return Err(f.reject(
            field(missing),
            "login and password come together (or neither: the configured ones are used)".into(),
        ));
    }
    Ok(())
}

/// The `&'static str` a rejection names.
fn field(name: &str) -> &'static str {
    LIFEPOS_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n == name)
        .unwrap_or("params")
}

fn check(name: &str, v: &str) -> Result<(), &'static str> {
    // Every one of them travels to the reader as a str8 (at most 255 bytes).
    if v.is_empty() || v.len() > 255 {
        return Err("must be 1 to 255 bytes long");
    }
    if name != "password" && v.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    match name {
        "sign_on_screen" if !matches!(v, "0" | "1") => Err("must be \"1\" (yes) or \"0\" (no)"),
        "email" => match v.split_once('@') {
            Some((user, host)) if !user.is_empty() && host.contains('.') && !v.contains(' ') => {
                Ok(())
            }
            _ => Err("is not an e-mail address (name@example.ru)"),
        },
        "phone" => {
            let digits = v.chars().filter(char::is_ascii_digit).count();
            let allowed = v.chars().enumerate().all(|(i, c)| {
                c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')') || (i == 0 && c == '+')
            });
            if allowed && (5..=15).contains(&digits) {
                Ok(())
            } else {
                Err("is not a phone number (digits, optionally a leading +, e.g. +79001234567)")
            }
        }
        "recipient_inn"
            if !(matches!(v.len(), 10 | 12) && v.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Err("must be an INN: 10 digits (organisation) or 12 digits (individual)")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::protocol::{parse_request, Shape};

    const PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";

    fn parse(v: Value) -> Result<crate::api::protocol::Request, Rejection> {
        parse_request(v.to_string().as_bytes())
    }

    fn shape(v: Value) -> Shape {
        crate::api::protocol::parse(v.to_string().as_bytes()).shape
    }

    #[test]
    fn the_contract_fields_land_in_params_for_the_actions_that_take_them() {
        let request = json!({"action": PAY, "amount": 1, "login": "l", "password": "p",
            "email": "a@b.ru", "phone": "+7 900 123-45-67", "sign_on_screen": "1",
            "recipient_inn": "500100732259"});
        let r = parse(request.clone()).unwrap();
        assert_eq!(
            shape(request),
            Shape::LifePos {
                action: PAY.into(),
                sent_id: None
            }
        );
        for key in [
            "login",
            "password",
            "email",
            "phone",
            "sign_on_screen",
            "recipient_inn",
        ] {
            assert!(r.params[key].is_string(), "{key}");
        }
        assert!(
            !format!("{r:?}").contains("\"p\""),
            "Debug hides the password"
        );
        let r = parse(
            json!({"action": "get_result", "request_id": "x", "login": "l",
            "password": "p"}),
        )
        .unwrap();
        assert_eq!(r.params["login"], "l");
        assert_eq!(shape(json!({"action": "pay", "amount": 1})), Shape::V1);
    }

    #[test]
    fn a_field_an_action_does_not_take_or_a_bad_value_is_refused_by_name() {
        for (request, field, says) in [
            (
                json!({"action": "refund", "amount": 1, "primary_transaction": {},
                "email": "a@b.ru"}),
                "email",
                "only pay take it",
            ),
            (
                json!({"action": "get_result", "request_id": "x", "sign_on_screen": "1"}),
                "sign_on_screen",
                "not a field of get_result",
            ),
            (
                json!({"action": "close_shift", "login": "l", "password": "p"}),
                "login",
                "",
            ),
            (
                json!({"action": "pay", "amount": 1, "sign_on_screen": "yes"}),
                "sign_on_screen",
                "\"1\"",
            ),
            (
                json!({"action": "pay", "amount": 1, "sign_on_screen": 1}),
                "sign_on_screen",
                "must be a string",
            ),
            (
                json!({"action": "pay", "amount": 1, "email": "nobody"}),
                "email",
                "e-mail",
            ),
            (
                json!({"action": "pay", "amount": 1, "phone": "call me"}),
                "phone",
                "phone",
            ),
            (
                json!({"action": "pay", "amount": 1, "recipient_inn": "12345"}),
                "recipient_inn",
                "10 digits",
            ),
            (
                json!({"action": "pay", "amount": 1, "login": "l"}),
                "password",
                "together",
            ),
            (
                json!({"action": "pay", "amount": 1, "params": {"password": "p"}}),
                "params",
                "next to action",
            ),
            (
                json!({"action": "pay", "amount": 1, "login": "", "password": "p"}),
                "login",
                "1 to 255",
            ),
        ] {
            let err = parse(request.clone()).expect_err("refused");
            assert_eq!(err.field, Some(field), "{request}: {}", err.message);
            assert!(err.message.contains(says), "{request}: {}", err.message);
        }
    }
}
