//! The PhonePe rules that decide money, pure: which id a status call names (one rule for the
//! request and the reconciler), how a POS order id is mapped to the document's characters,
//! INR only, and when "not found" may be believed.

use serde_json::json;

use super::wire::*;
use super::*;
use crate::provider::{OpKind, Operation, Primary};

fn op(kind: OpKind, backend_id: &str, params: serde_json::Value) -> Operation {
    Operation {
        request_id: "till3-0042".into(),
        kind,
        provider: "phonepe".into(),
        amount: Some(500),
        currency: "INR".into(),
        metadata: Default::default(),
        params: params.as_object().cloned().unwrap_or_default(),
        primary: None,
        created_at: crate::clock::now_rfc3339(),
        backend_id: backend_id.into(),
        progress: Default::default(),
        stages: Default::default(),
    }
}

fn primary(request_id: &str, backend_id: Option<&str>) -> Option<Primary> {
    Some(Primary {
        request_id: Some(request_id.into()),
        provider: "phonepe".into(),
        provider_reference: None,
        amount: 500,
        currency: None,
        backend_id: backend_id.map(str::to_owned),
        pay_notes: Default::default(),
    })
}

const PAY_ID: &str = "P00112233445566778899aabbccdd";

#[test]
fn the_status_call_names_the_operations_own_id_or_the_cancelled_pays() {
    // A pay and a refund: their own backend id, the one the init/backToSource carried.
    assert_eq!(
        status_id("T1", &op(OpKind::Pay, PAY_ID, json!({}))).unwrap(),
        PAY_ID
    );
    let refund = op(OpKind::Refund, "R00112233445566778899aabbccdd", json!({}));
    assert_eq!(status_id("T1", &refund).unwrap(), refund.backend_id);
    // Journaled by an older version (no backend id): the id it was sent with.
    let old = op(OpKind::Pay, "", json!({}));
    assert_eq!(
        status_id("T1", &old).unwrap(),
        legacy_transaction_id("T1", "till3-0042")
    );
    // A cancel asks about the pay it cancels: by the id the pay's answer carried, never one
    // derived from the pay's request_id.
    let mut cancel = op(OpKind::Cancel, "C00112233445566778899aabbccdd", json!({}));
    assert!(status_id("T1", &cancel).is_err());
    cancel.primary = primary("sale-1", Some(PAY_ID));
    assert_eq!(status_id("T1", &cancel).unwrap(), PAY_ID);
    cancel.primary = primary("sale-1", None);
    let refused = status_id("T1", &cancel).unwrap_err();
    assert!(
        refused.contains("primary_transaction.backend_id") && refused.contains("sale-1"),
        "{refused}"
    );
    cancel.primary = primary("sale-1", Some("P-1"));
    assert!(status_id("T1", &cancel).unwrap_err().contains("backend_id"));
    // Every id we send fits the document's rule.
    for id in [
        PAY_ID.to_owned(),
        legacy_transaction_id("T1", "x"),
        crate::provider::new_backend_id(OpKind::Refund),
    ] {
        assert!(valid_transaction_id(&id), "{id}");
    }
    assert!(!valid_transaction_id("a-b") && !valid_transaction_id(&"a".repeat(40)));
}

#[test]
fn pos_order_ids_are_mapped_to_letters_digits_and_underscore() {
    assert_eq!(map_order_id("till3-0042"), "till3_0042");
    assert_eq!(map_order_id("a.b:c d/é"), "a_b_c_d__");
    assert_eq!(map_order_id(&"x".repeat(64)).len(), 37);
    let mut pay = op(OpKind::Pay, PAY_ID, json!({"order_id": "INV 2024/07-1"}));
    assert_eq!(order_id(&pay).unwrap(), "INV_2024_07_1");
    pay.params.clear();
    assert_eq!(order_id(&pay).unwrap(), "till3_0042");
    for id in ["till3-0042", "a.b:c", "ok_1"] {
        assert!(map_order_id(id).bytes().all(id_char), "{id}");
    }
}

#[test]
fn a_currency_other_than_inr_is_refused_naming_currency() {
    let ids = Ids {
        merchant_id: "M1".into(),
        store_id: "S1".into(),
        terminal_id: "T1".into(),
    };
    let mut pay = op(OpKind::Pay, PAY_ID, json!({}));
    pay.currency = "USD".into();
    let err = pay_request(&ids, "EDC", &pay).unwrap_err();
    assert!(err.starts_with("currency:") && err.contains("INR"), "{err}");
    let mut refund = op(OpKind::Refund, "R00112233445566778899aabbccdd", json!({}));
    refund.primary = primary("sale-1", Some(PAY_ID));
    refund.currency = "EUR".into();
    assert!(refund_payload(&ids, &refund)
        .unwrap_err()
        .starts_with("currency:"));
}

fn provider(solution: &str) -> PhonePe {
    let cfg: PhonePeConfig = toml::from_str(&format!(
        "base_url = \"http://127.0.0.1:9\"\nmerchant_id = \"M1\"\nstore_id = \"S1\"\n\
         terminal_id = \"T1\"\nsalt_key = \"k\"\nsalt_index = 1\nsolution_type = \"{solution}\"\n\
         request_timeout_ms = 1000\nstatus_poll_ms = [2000, 500]\n"
    ))
    .unwrap();
    PhonePe::new(&cfg).unwrap()
}

/// `o` as if its init had been sent `secs` ago in this process.
fn sent_ago(p: &PhonePe, o: Operation, secs: u64) -> Operation {
    let at = std::time::Instant::now() - Duration::from_secs(secs);
    p.sent.sending_at(&o.request_id, at);
    o
}

#[test]
fn not_found_is_believed_only_after_the_window_and_a_margin() {
    // EDC, handover 30 s: 2 x 1 s request timeout + 30 s + 2 s first interval = 34 s.
    let p = provider("EDC");
    let pay = op(OpKind::Pay, PAY_ID, json!({"handover_seconds": 30}));
    assert_eq!(p.alive_for(&pay), Duration::from_secs(34));
    assert!(!p.not_found_is_final(&sent_ago(&p, pay.clone(), 5)));
    assert!(!p.not_found_is_final(&sent_ago(&p, pay.clone(), 33)));
    assert!(p.not_found_is_final(&sent_ago(&p, pay.clone(), 35)));
    // The default window is the document's 60 s.
    let plain = op(OpKind::Pay, PAY_ID, json!({}));
    assert_eq!(p.alive_for(&plain), Duration::from_secs(64));
    // DQR: the QR's expiresIn.
    let q = provider("DQR_DEVICE");
    let qr = op(OpKind::Pay, PAY_ID, json!({"expires_in": 180}));
    assert_eq!(q.alive_for(&qr), Duration::from_secs(184));
    // A refund has no window: only the stray-request margin.
    let refund = op(OpKind::Refund, "R00112233445566778899aabbccdd", json!({}));
    assert_eq!(p.alive_for(&refund), Duration::from_secs(4));
    // created_at is not what counts: a sale stamped in 1970 or a day ago (the wall clock
    // stepped since) that was sent just now is not old.
    let mut stepped = sent_ago(&p, pay, 0);
    for stamp in ["1970-01-01T00:00:00Z", "yesterday"] {
        stepped.created_at = stamp.into();
        assert!(!p.not_found_is_final(&stepped), "{stamp}");
    }
    // After a restart (not sent by this process) it counts from this process's start.
    let mut q = provider("EDC");
    q.sent =
        crate::clock::SendTimes::started_at(std::time::Instant::now() - Duration::from_secs(35));
    let restarted = op(OpKind::Pay, PAY_ID, json!({"handover_seconds": 30}));
    assert!(q.not_found_is_final(&restarted));
    q.sent = crate::clock::SendTimes::new();
    assert!(!q.not_found_is_final(&restarted));
}
