//! The serde form of an [`Answer`] is today's v1 answer object, byte for byte.

use serde_json::json;

use super::*;
use crate::exchange::{JournalStatus, ProviderStatus};

/// What posbridge 05f1b36 (before these types) answered to get_result.
const OLD_ANSWERS: &str = include_str!("../../../tests/fixtures/journals/v0.1.0-05f1b36.answers");
/// The 56 answers recorded before these types (stamps and references masked).
const GOLDEN: &str = include_str!("../../../tests/golden/answers.txt");

/// The v1 answer lines of both (the LIFE POS ones are the API's to render; a golden line
/// whose masks left it no JSON, such as `"uptime_s":<n>`, is skipped).
fn v1_lines() -> Vec<&'static str> {
    OLD_ANSWERS
        .lines()
        .chain(GOLDEN.lines())
        .filter_map(|l| l.strip_prefix("< "))
        .filter(|l| !l.contains(r#""action":"#))
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .collect()
}

#[test]
fn every_v1_answer_an_earlier_version_gave_reads_and_writes_back_the_same_bytes() {
    let lines = v1_lines();
    assert!(lines.len() >= 30, "{lines:?}");
    let mut typed = 0;
    for line in lines {
        let answer: Answer = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&answer).unwrap(), line);
        if let Some(Data::Transaction(t)) = answer.data() {
            assert_eq!(t.request_id, answer.request_id.clone().unwrap());
            typed += 1;
        }
    }
    // The approved pays and the refund are typed; the shift summary stays open.
    assert!(typed >= 8, "{typed} typed");
}

#[test]
fn a_transaction_built_in_types_writes_the_v1_data_in_its_order() {
    let mut t = Transaction {
        request_id: "r1".into(),
        operation: "refund".into(),
        provider: "sim".into(),
        status: "refunded".into(),
        amount: Some(300),
        charged_amount: Some(310),
        currency: "INR".into(),
        provider_reference: Some("SIM-1".into()),
        rrn: None,
        approval_code: Some("0042".into()),
        card: Some(json!({"masked_pan": "411111******1111", "scheme": "VISA"})),
        primary: Some(PrimaryRef {
            request_id: Some("p1".into()),
            provider_reference: None,
        }),
        resolution: None,
        backend_id: Some("R0042".into()),
        extra: Map::new(),
        created_at: "2026-01-01T00:00:00Z".into(),
        completed_at: "2026-01-01T00:00:01Z".into(),
    };
    // Keys already present are skipped; one the transaction lacks (rrn) is the provider's.
    let extra = json!({"zeta": 1, "status": "no", "rrn": "R", "amount": 1, "alpha": [2]});
    t.add_extras(extra.as_object().unwrap().clone());
    let mut meta = Metadata::new();
    meta.insert("till".into(), "7".into());
    let answer = Answer::done(Some("r1".into()), meta, t);
    let line = serde_json::to_string(&answer).unwrap();
    assert_eq!(
        line,
        r#"{"code":0,"request_id":"r1","metadata":{"till":"7"},"data":{"request_id":"r1","operation":"refund","provider":"sim","status":"refunded","amount":300,"charged_amount":310,"currency":"INR","provider_reference":"SIM-1","approval_code":"0042","card":{"masked_pan":"411111******1111","scheme":"VISA"},"primary":{"request_id":"p1","provider_reference":null},"backend_id":"R0042","zeta":1,"rrn":"R","alpha":[2],"created_at":"2026-01-01T00:00:00Z","completed_at":"2026-01-01T00:00:01Z"}}"#
    );
    // Read back, the same bytes again (rrn then reads as the field: the data stays open).
    let again: Answer = serde_json::from_str(&line).unwrap();
    assert_eq!(serde_json::to_string(&again).unwrap(), line);
}

#[test]
fn a_refusal_writes_code_type_reason_and_message_and_no_log() {
    for (kind, code) in [
        (ErrorKind::DefaultError, 1),
        (ErrorKind::UnknownResultError, 2),
        (ErrorKind::DuplicateRequestError, 3),
        (ErrorKind::ResultNotFoundError, 4),
    ] {
        let a = Answer::refused(None, Metadata::new(), kind, "why", "say \"so\"");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!(
                r#"{{"code":{code},"request_id":null,"metadata":{{}},"error_type":"{}","reason":"why","message":"say \"so\""}}"#,
                kind.as_str()
            )
        );
        let back: Answer = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(a.summary(), format!("{} (why)", kind.as_str()));
    }
}

#[test]
fn the_status_in_types_writes_the_v1_status_data_in_its_order() {
    let health = json!({"writable": true, "last_error": null, "stopped": null, "free_bytes": 7});
    let status = Status {
        version: "0.1.0".into(),
        uptime_s: 3,
        default_provider: "sim".into(),
        providers: vec![ProviderStatus {
            name: "sim".into(),
            currency: "INR".into(),
            operations: vec!["pay".into(), "close_shift".into()],
        }],
        running: 0,
        journal: JournalStatus {
            path: "/s/journal.sqlite".into(),
            capacity: 500,
            entries: 9,
            in_flight: 0,
            unknown: 1,
            manual_check: 1,
            health: health.as_object().unwrap().clone(),
        },
        manual_check: vec!["u1".into()],
    };
    let answer = Answer::done(Some("g".into()), Metadata::new(), status);
    // As tests/golden/answers.txt recorded it before these types (uptime and free bytes
    // unmasked here).
    assert_eq!(
        serde_json::to_string(&answer).unwrap(),
        r#"{"code":0,"request_id":"g","metadata":{},"data":{"version":"0.1.0","uptime_s":3,"default_provider":"sim","providers":[{"name":"sim","currency":"INR","operations":["pay","close_shift"]}],"running":0,"journal":{"path":"/s/journal.sqlite","capacity":500,"entries":9,"in_flight":0,"unknown":1,"manual_check":1,"writable":true,"last_error":null,"stopped":null,"free_bytes":7},"manual_check":["u1"]}}"#
    );
}
