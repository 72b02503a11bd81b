//! The Paysera provider end to end: the real daemon over its socket, `base_url` pointed at the
//! Paysera replica (`posbridge replica paysera`, written from the Paysera POS document), which
//! checks every MAC and counts the money-moving calls per transaction. Covers approve, decline
//! (amount ..52), expiry (..51, the customer never pays), the spot closed after every finished
//! sale, the spot code (place_info or `spot_code`), an integer `spot_id`, cancel, refund (not
//! supported), a wrong key. Faults and kill -9: provider_paysera_recovery.rs.

mod common;

#[path = "provider_paysera/abort.rs"]
mod abort;

use std::time::{Duration, Instant};

use common::paysera::{approved, failed, rig, rig_with, Setup, KEY};
use serde_json::{json, Value};

#[test]
fn pay_is_confirmed_after_the_customer_reserves_and_the_spot_is_closed() {
    let rig = rig(3000, &[]);
    let v = rig.pay("ps-ok", 1299);
    approved(&v);
    let order = rig.order("ps-ok");
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(
        v["data"]["provider_reference"], order["transaction_key"],
        "{v}"
    );
    assert_eq!(v["data"]["qr_payload"], "PAYSERA*1001:spot-7", "{v}");
    assert_eq!(v["data"]["currency"], "EUR", "{v}");
    // The order of `data` is part of the answer (tests/golden.rs covers the sim only).
    assert_eq!(
        common::keys_of(&v["data"]),
        common::approved_keys("currency provider_reference paysera_order_id qr_payload"),
        "{v}"
    );
    let t = rig.transaction("ps-ok");
    assert_eq!(t["payments"][0]["price"], 1299, "{t}");
    // The operation's own backend id is the transaction's merchant reference.
    let reference = t["payments"][0]["parameters"]["order_id"].as_str().unwrap();
    assert!(reference.starts_with('P') && reference.len() == 29, "{t}");
    assert_eq!(rig.calls("ps-ok"), (1, 1));
    rig.assert_spot_clean();
    assert!(rig.d.log().contains("PAYSERA*1001:spot-7"));
    // Replayed byte for byte.
    let again = rig
        .d
        .request(json!({"action": "get_result", "request_id": "ps-ok"}));
    assert_eq!(again, v);
    rig.finish();
}

#[test]
fn a_rejected_reservation_is_declined_never_confirmed_and_the_spot_closed() {
    let rig = rig(3000, &[]);
    let v = rig.pay("ps-52", 1252);
    failed(&v, "declined");
    assert_eq!(rig.calls("ps-52"), (1, 0));
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn a_customer_who_never_pays_is_revoked_expired_and_the_spot_closed() {
    let rig = rig(1500, &[]);
    let started = Instant::now();
    let v = rig.pay("ps-51", 1251);
    failed(&v, "expired");
    assert!(started.elapsed() >= Duration::from_millis(1400), "{v}");
    assert_eq!(rig.order("ps-51")["status"], "closed");
    assert_eq!(rig.transaction("ps-51")["status"], "revoked");
    assert_eq!(rig.calls("ps-51"), (1, 0));
    rig.assert_spot_clean();
    // The next customer starts on an empty spot and pays only their own order.
    approved(&rig.pay("ps-next", 400));
    assert_eq!(rig.calls("ps-next"), (1, 1));
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn the_spot_code_is_built_from_place_info_location_id() {
    let rig = rig_with(Setup {
        replica_options: &[("location_id", "3")],
        ..Default::default()
    });
    let v = rig.pay("ps-loc", 500);
    approved(&v);
    assert_eq!(v["data"]["qr_payload"], "PAYSERA*3:spot-7", "{v}");
    rig.finish();
}

#[test]
fn a_spot_without_location_id_uses_spot_code_from_the_config() {
    let rig = rig_with(Setup {
        replica_options: &[("place_location", "none")],
        extra: "spot_code = \"PAYSERA*3:TABLE1\"",
        ..Default::default()
    });
    let v = rig.pay("ps-code", 500);
    approved(&v);
    assert_eq!(v["data"]["qr_payload"], "PAYSERA*3:TABLE1", "{v}");
    rig.finish();

    // Without it the sale is refused before anything exists at Paysera, naming the key.
    let rig = rig_with(Setup {
        replica_options: &[("place_location", "none")],
        ..Default::default()
    });
    let v = rig.pay("ps-nocode", 500);
    failed(&v, "provider_error");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("providers.paysera.spot_code"),
        "{v}"
    );
    assert!(rig.transactions("ps-nocode").is_empty());
    rig.finish();
}

#[test]
fn an_integer_spot_id_is_accepted() {
    let rig = rig_with(Setup {
        spot_id: "7",
        ..Default::default()
    });
    approved(&rig.pay("ps-int", 700));
    rig.assert_spot_clean();
    rig.finish();
}

#[test]
fn cancel_of_a_paid_sale_is_refused_and_of_an_unknown_transaction_is_invalid() {
    let rig = rig(3000, &[]);
    let paid = rig.pay("ps-paid", 900);
    approved(&paid);
    let c = rig
        .d
        .request(json!({"action": "cancel", "request_id": "ps-paid-c",
        "amount": 900, "primary_transaction": paid["data"]}));
    failed(&c, "already_completed");
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    assert_eq!(rig.order("ps-paid")["status"], "confirmed");
    let primary = json!({"provider": "paysera", "amount": 900, "provider_reference": "nope"});
    let c = rig
        .d
        .request(json!({"action": "cancel", "request_id": "ps-bad-c",
        "amount": 900, "primary_transaction": primary}));
    failed(&c, "invalid_request");
    rig.finish();
}

#[test]
fn refund_is_not_supported_and_nothing_is_sent() {
    let rig = rig(3000, &[]);
    let paid = rig.pay("ps-r", 700);
    approved(&paid);
    let before = rig.r.requests();
    let v = rig
        .d
        .request(json!({"action": "refund", "request_id": "ps-r-1",
        "amount": 100, "primary_transaction": paid["data"]}));
    failed(&v, "not_supported");
    assert_eq!(rig.r.requests(), before);
    rig.finish();
}

#[test]
fn a_wrong_key_is_unauthorized_and_creates_nothing() {
    let rig = rig_with(Setup {
        daemon_key: "not-the-key",
        ..Default::default()
    });
    let v = rig.pay("ps-key", 1000);
    failed(&v, "unauthorized");
    assert!(v["message"].as_str().unwrap().contains("mac_key"), "{v}");
    let state = rig.r.state();
    assert_eq!(state["orders"], json!({}));
    assert_eq!(state["transactions"], json!({}));
    assert!(!rig.d.log().contains("not-the-key"));
    assert!(!rig.d.log().contains(KEY));
}

#[test]
fn the_replica_refuses_unsigned_requests_like_paysera() {
    let rig = rig(3000, &[]);
    let resp = unsigned_get(&format!("{}/rest/v1/spot/7", rig.r.url));
    assert_eq!(resp.0, 401);
    assert_eq!(resp.1["error"], "unauthorized", "{}", resp.1);
    rig.finish();
}

/// A plain unsigned GET: (status, JSON body).
fn unsigned_get(url: &str) -> (u16, Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json().await.unwrap())
        })
}

#[test]
fn progress_events_tell_qr_shown_customer_approved_authorising_before_the_answer() {
    let rig = rig(3000, &[]);
    let mut c = rig.d.client();
    let (events, v) = c.request_with_events(
        &json!({"action": "pay", "request_id": "ps-ev", "amount": 1299, "progress": true}),
    );
    approved(&v);
    assert_eq!(
        common::stages(&events),
        ["qr_shown", "customer_approved", "authorising"],
        "{events:?}"
    );
    // Nothing after the answer: the next line answers the next request.
    let next = c.request(&json!({"action": "get_result", "request_id": "ps-ev"}));
    assert_eq!(next, v);
    assert_eq!(rig.calls("ps-ev"), (1, 1));
    // A declined reservation: the QR was shown, the customer never approved.
    let (events, v) = c.request_with_events(
        &json!({"action": "pay", "request_id": "ps-ev52", "amount": 1252, "progress": true}),
    );
    failed(&v, "declined");
    assert_eq!(common::stages(&events), ["qr_shown"], "{events:?}");
    rig.finish();
}
