//! Fuzzes PhonePe's answer parser (`provider::phonepe::answer`) the way the provider reads an
//! answer: `parse_answer`, then what it means for an init/backToSource (`classify_sent`) and
//! for a status check of a pay and of a refund (`classify_status`), and the card in it.
//! Invariants: no panic; no text built from the answer (cashier message, unclear reason) holds
//! a run of 12+ digits; a card's masked PAN shows at most 10 digits; the message is printable
//! and bounded.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use posbridge::provider::http::snippet;
use posbridge::provider::phonepe::answer::{self, Sent, Status};
use posbridge::provider::{OpKind, Operation};

fn operation(kind: OpKind) -> Operation {
    serde_json::from_value(serde_json::json!({
        "request_id": "till1-0001",
        "kind": kind,
        "provider": "phonepe",
        "amount": 100,
        "currency": "INR",
        "created_at": "2026-01-01T00:00:00Z",
        "backend_id": "P0123456789abcdef0123456789ab",
    }))
    .expect("a valid operation")
}

fuzz_target!(|data: &[u8]| {
    // What the provider says about a body it cannot read.
    common::assert_no_pan("scrubbed snippet", &answer::scrub(&snippet(data)));
    let Some(a) = answer::parse_answer(data) else {
        return;
    };
    common::assert_no_pan("answer message", &a.message);
    assert!(a.message.chars().count() <= 200);
    assert!(!a.message.chars().any(char::is_control));
    if let Some(card) = answer::card(&a.data) {
        common::assert_masked("card", &card.masked_pan);
    }
    for kind in [OpKind::Pay, OpKind::Refund, OpKind::Cancel] {
        if let Sent::Refused(f) = answer::classify_sent(kind, &a) {
            common::assert_no_pan("init refusal", &f.message);
        }
    }
    for kind in [OpKind::Pay, OpKind::Refund] {
        match answer::classify_status(&operation(kind), "P0123456789abcdef0123456789ab", &a) {
            Status::Success(approval) => {
                if let Some(card) = &approval.card {
                    common::assert_masked("approval card", &card.masked_pan);
                }
            }
            Status::Failed(f) => common::assert_no_pan("status failure", &f.message),
            Status::Unclear(why) => common::assert_no_pan("unclear status", &why),
            Status::Pending | Status::NotFound => {}
        }
    }
});
