//! Every answer's shape on the wire, in one file: how an [`Answer`] becomes the one line that
//! answers a request, v1 or the LIFE POS Checkout contract's ([`Shape`]), including the
//! refusals made before a request could be read (too long, unauthorized, busy), and the
//! event lines that may come before an answer (one form for both shapes:
//! `{"event":"progress","request_id","stage","message"}` for an operation's stage,
//! `{"event":"found","request_id","device"}` for a device a scan heard).
//!
//! v1 is the answer's serde form (the exchange's: `code`, `request_id`, `metadata`, then
//! `data`, or `error_type`, `reason`, `message`). The contract's (seed document 003) is
//! `code`, `request_id` (echoed; for a request refused before it could be read, as sent,
//! valid or not; generated when there is none), `metadata`, `action` as sent, then `data` as
//! a JSON *string*, or `error_type`, `message` and `log` (`reason: X`: the contract has no
//! `reason` field). The journal keeps the typed answer, so a get_result asked the contract's
//! way gets the contract's shape of whatever is stored. Pure: no I/O, decides nothing.

use serde::Serialize;

use super::protocol::{shape_of_start, Shape, MAX_LINE};
use crate::exchange::{Answer, Body, ErrorKind, Event, Metadata, Sighting, Stage};

/// The line (without its newline) that carries `answer` in `shape`.
pub fn render(answer: &Answer, shape: &Shape) -> String {
    match shape {
        Shape::V1 => serde_json::to_string(answer).expect("an answer always serializes"),
        Shape::LifePos { action, sent_id } => lifepos(answer, action, sent_id.as_deref()),
    }
}

/// A progress event line. Field order is the wire order.
#[derive(Serialize)]
struct EventLine<'a> {
    event: &'static str,
    request_id: &'a str,
    stage: Stage,
    message: &'a str,
}

/// A found event line. Field order is the wire order.
#[derive(Serialize)]
struct FoundLine<'a> {
    event: &'static str,
    request_id: Option<&'a str>,
    device: &'a Sighting,
}

/// The line (without its newline) that carries an event, whatever the shape of the request's
/// answer: it never has a `code`, so no client takes it for the answer.
pub fn event(event: &Event) -> String {
    let line = match event {
        Event::Progress(p) => serde_json::to_string(&EventLine {
            event: "progress",
            request_id: &p.request_id,
            stage: p.stage,
            message: &p.message,
        }),
        Event::Found(f) => serde_json::to_string(&FoundLine {
            event: "found",
            request_id: f.request_id.as_deref(),
            device: &f.device,
        }),
    };
    line.expect("an event always serializes")
}

/// One answer in the contract's shape. Field order is the wire order.
#[derive(Serialize)]
struct Contract<'a> {
    code: i32,
    request_id: String,
    metadata: &'a Metadata,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<ErrorKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
}

fn lifepos(answer: &Answer, action: &str, sent: Option<&str>) -> String {
    let request_id = answer
        .request_id
        .clone()
        .or_else(|| sent.map(str::to_owned))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut contract = Contract {
        code: answer.code(),
        request_id,
        metadata: &answer.metadata,
        action,
        data: None,
        error_type: None,
        message: None,
        log: None,
    };
    match &answer.body {
        Body::Done(data) => {
            contract.data =
                Some(serde_json::to_string(data).expect("answer data always serializes"));
        }
        Body::Refused(r) => {
            contract.error_type = Some(r.kind);
            contract.message = Some(&r.message);
            contract.log = Some(format!("reason: {}", r.reason));
        }
    }
    serde_json::to_string(&contract).expect("a contract answer always serializes")
}

/// A refusal made before a request could be read, in the shape the request asked for (read
/// from `start`, what arrived of it: maybe only its beginning, maybe nothing).
fn refuse_unread(start: &[u8], reason: &str, message: String) -> String {
    let answer = Answer::refused(
        None,
        Metadata::new(),
        ErrorKind::DefaultError,
        reason,
        message,
    );
    render(&answer, &shape_of_start(start))
}

/// The answer to a line longer than [`MAX_LINE`] (`start`: its first bytes); the connection
/// then closes.
pub fn too_long(start: &[u8]) -> String {
    refuse_unread(
        start,
        "invalid_request",
        format!("the request line is longer than {MAX_LINE} bytes; this connection will be closed"),
    )
}

/// The one answer a peer outside `api.allowed_groups` gets before it is disconnected
/// (`first`: what arrived of its first request, maybe nothing).
pub fn unauthorized(uid: u32, first: &[u8]) -> String {
    refuse_unread(
        first,
        "unauthorized",
        format!("user {uid} may not use posbridge: add it to a group listed in api.allowed_groups"),
    )
}

/// The answer to a connection beyond `api.max_connections`; it then closes (`first`: what
/// arrived of its first request, maybe nothing).
pub fn busy(limit: usize, first: &[u8]) -> String {
    refuse_unread(
        first,
        "busy",
        format!("posbridge is serving its limit of {limit} connections; try again shortly"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";

    fn contract(sent_id: Option<&str>) -> Shape {
        Shape::LifePos {
            action: PAY.into(),
            sent_id: sent_id.map(str::to_owned),
        }
    }

    #[test]
    fn a_success_in_the_contract_shape_has_data_as_a_string() {
        let mut meta = Metadata::new();
        meta.insert("k".into(), "v".into());
        let answer = Answer::done(
            Some("r1".into()),
            meta,
            json!({"status": "approved", "amount": 5}),
        );
        assert_eq!(
            render(&answer, &contract(Some("ignored"))),
            r#"{"code":0,"request_id":"r1","metadata":{"k":"v"},"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","data":"{\"status\":\"approved\",\"amount\":5}"}"#
        );
        assert_eq!(
            render(&answer, &Shape::V1),
            r#"{"code":0,"request_id":"r1","metadata":{"k":"v"},"data":{"status":"approved","amount":5}}"#
        );
    }

    #[test]
    fn an_error_in_the_contract_shape_keeps_type_and_message_and_moves_the_reason_to_log() {
        let answer = Answer::refused(
            None,
            Metadata::new(),
            ErrorKind::UnknownResultError,
            "timeout",
            "ask again",
        );
        let c: Value = serde_json::from_str(&render(&answer, &contract(None))).unwrap();
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "code",
                "request_id",
                "metadata",
                "action",
                "error_type",
                "message",
                "log"
            ]
        );
        assert_eq!(c["code"], 2);
        assert_eq!(c["error_type"], "unknown_result_error");
        assert_eq!(c["message"], "ask again");
        assert_eq!(c["log"], "reason: timeout");
        assert!(
            uuid::Uuid::parse_str(c["request_id"].as_str().unwrap()).is_ok(),
            "{c}"
        );
        // A request refused before it was read: its id as sent, valid or not.
        let c: Value = serde_json::from_str(&render(&answer, &contract(Some("bad id!")))).unwrap();
        assert_eq!(c["request_id"], "bad id!");
    }

    #[test]
    fn an_event_line_has_its_fields_in_order_and_no_code() {
        let e = Event::Progress(crate::exchange::Progress {
            request_id: "r1".into(),
            stage: Stage::CardRead,
            message: "card read".into(),
        });
        assert_eq!(
            event(&e),
            r#"{"event":"progress","request_id":"r1","stage":"card_read","message":"card read"}"#
        );
        let device = Sighting {
            address: "C0:FF:EE:00:00:01".into(),
            name: None,
            rssi: Some(-48),
            bonded: true,
            paired: false,
        };
        let found = |request_id: Option<&str>| {
            event(&Event::Found(crate::exchange::Found {
                request_id: request_id.map(str::to_owned),
                device: device.clone(),
            }))
        };
        assert_eq!(
            found(Some("s1")),
            r#"{"event":"found","request_id":"s1","device":{"address":"C0:FF:EE:00:00:01","name":null,"rssi":-48,"bonded":true,"paired":false}}"#
        );
        assert!(found(None).starts_with(r#"{"event":"found","request_id":null,"device":"#));
    }

    #[test]
    fn a_refusal_before_reading_takes_the_shape_the_start_of_the_line_asks_for() {
        let v1: Value =
            serde_json::from_str(&busy(3, br#"{"action":"pay","request_id":"r"#)).unwrap();
        assert_eq!(v1["reason"], "busy");
        assert_eq!(v1["request_id"], Value::Null);
        let start = format!(r#"{{"request_id":"r 1","action":"{PAY}","amount":"#);
        let c: Value = serde_json::from_str(&unauthorized(7, start.as_bytes())).unwrap();
        assert_eq!(
            (c["action"].as_str(), c["request_id"].as_str()),
            (Some(PAY), Some("r 1"))
        );
        assert_eq!(c["log"], "reason: unauthorized");
    }
}
