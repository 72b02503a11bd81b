//! Request shapes of the Paysera provider: the legacy key, the transaction body, the signed
//! `Authorization` header (against Paysera's public vectors), the document's spot and order
//! shapes, and the error mapping.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::client::{ApiError, Client, Order, Spot};
use super::flow::transaction_body;
use super::*;
use crate::provider::sign;
use crate::secret::Secret;

const KEY: &str = "IrdTc8uQodU7PRpLzzLTW6wqZAO6tAMU";
const NONCE: &str = "nQnNaSNyubfPErjRO55yaaEYo9YZfKHN";

fn client(base: &str) -> Client {
    Client::new(base, "wkVd93h2uS", Secret::new(KEY), Duration::from_secs(1)).unwrap()
}

/// The `mac="..."` of a header.
fn mac_of(header: &str) -> &str {
    header
        .split("mac=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
}

#[test]
fn legacy_key_is_stable_short_and_plain() {
    let k = legacy_key("till-4:sale/0001");
    assert_eq!(k, legacy_key("till-4:sale/0001"));
    assert_ne!(k, legacy_key("till-4:sale/0002"));
    assert_eq!(k.len(), 35);
    assert!(k.starts_with("pb-"));
}

#[test]
fn the_transaction_carries_amount_currency_and_the_backend_id() {
    let op = Operation {
        request_id: "r-1".into(),
        kind: OpKind::Pay,
        provider: "paysera".into(),
        amount: Some(1299),
        currency: "EUR".into(),
        metadata: Default::default(),
        params: Default::default(),
        primary: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        backend_id: "P0123456789abcdef0123456789ab".into(),
        progress: Default::default(),
        stages: Default::default(),
    };
    assert_eq!(
        transaction_body(&op),
        json!({"payments": [{"description": "Sale r-1", "price": 1299, "currency": "EUR",
            "parameters": {"order_id": "P0123456789abcdef0123456789ab"}}]})
    );
}

#[test]
fn header_matches_the_public_vectors() {
    let c = client("https://wallet.paysera.com");
    let h = c.authorization(
        &Method::GET,
        "/rest/v1/payment/10145",
        None,
        1343811600,
        NONCE,
    );
    assert_eq!(mac_of(&h), "/qxTA8FOgT0Dd0MHh9k/sUQ3Q38ckx8+S0PBxpIuttY=");
    assert!(
        h.starts_with(r#"MAC id="wkVd93h2uS", ts="1343811600", nonce=""#),
        "{h}"
    );
    assert!(!h.contains("ext="), "no body, no ext: {h}");
    let h = c.authorization(
        &Method::GET,
        "/rest/v1/spots?status=waiting",
        None,
        1343811600,
        NONCE,
    );
    assert_eq!(mac_of(&h), "irSg0m2b8N87EIhAENNkP+2O3E2x0KkddoTMSOEmHt8=");
    assert!(!h.contains(KEY));
}

#[test]
fn a_base_path_is_part_of_the_signed_uri() {
    let c = client("https://wallet.paysera.com/wallet/");
    let h = c.authorization(
        &Method::GET,
        "/rest/v1/payment/10145",
        None,
        1343818800,
        NONCE,
    );
    assert_eq!(mac_of(&h), "d1OlqI77u2P1IVYIv2ppL3hnrBhyaQ+gDqYMxCH+0e0=");
}

#[test]
fn http_signs_port_80_or_the_explicit_port_and_hashes_bodies() {
    let body = br#"{"a":1}"#;
    for (base, port) in [("http://127.0.0.1", 80), ("http://127.0.0.1:8080", 8080)] {
        let h = client(base).authorization(&Method::POST, "/rest/v1/x", Some(body), 5, "n");
        let ext = sign::paysera_body_hash_ext(body);
        let want = sign::paysera_mac(
            KEY,
            &sign::PayseraMacParts {
                ts: 5,
                nonce: "n",
                method: "POST",
                uri: "/rest/v1/x",
                host: "127.0.0.1",
                port,
                ext: &ext,
            },
        );
        assert_eq!(mac_of(&h), want, "{base}");
        assert!(h.ends_with(&format!(r#", ext="{ext}""#)), "{h}");
    }
}

#[test]
fn the_documents_spot_and_order_examples_parse() {
    // The document's example answers, verbatim (its spot has no location_id in place_info).
    let spot: serde_json::Value = serde_json::from_str(r#"{ "id": 1, "status": "open", "identifier": "table1", "place_info": { "title": "Cool caffe", "description": "Coffee and cakes for everyone, even you!", "address": "address" }, "orders": [ { "id": 52, "transaction_key": "Pu5CPePCkm3TJPlkctcshzkIlxeLU3WR", "status": "pending" }, { "id": 53, "transaction_key": "2jStyeyh7zGQa9Q0dD6TOsEM04JPrWMO", "status": "pending" } ] }"#).unwrap();
    let s = Spot::parse(&spot).unwrap();
    assert_eq!(
        (s.identifier.as_str(), s.location_id.as_deref()),
        ("table1", None)
    );
    assert_eq!(s.orders.len(), 2);
    let o = s.order_for("2jStyeyh7zGQa9Q0dD6TOsEM04JPrWMO").unwrap();
    assert_eq!((o.id.as_str(), o.status.as_str()), ("53", "pending"));
    let order: serde_json::Value = serde_json::from_str(
        r#"{ "id": 52, "transaction_key": "Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR", "status": "pending" }"#,
    )
    .unwrap();
    let o = Order::parse(&order).unwrap();
    assert_eq!(
        (o.id.as_str(), o.transaction_key.as_str()),
        ("52", "Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR")
    );
    // The location id lives in place_info; one at the spot's top level is not it.
    let with_location = json!({"id": 7, "identifier": "T", "location_id": 9,
        "place_info": {"location_id": 3}});
    assert_eq!(
        Spot::parse(&with_location).unwrap().location_id.as_deref(),
        Some("3")
    );
    let top_only = json!({"id": 7, "identifier": "T", "location_id": 9, "place_info": {}});
    assert_eq!(Spot::parse(&top_only).unwrap().location_id, None);
    // A transaction_key nested under `transaction` is not the document's shape.
    assert!(Order::parse(&json!({"id": 1, "status": "pending",
        "transaction": {"transaction_key": "tk"}}))
    .is_none());
}

#[test]
fn refusals_map_to_stable_reasons() {
    let r = |error: &str| ApiError::Refused {
        status: 400,
        error: error.into(),
        description: "d".into(),
        skew: Some(2),
    };
    assert_eq!(refused(&r("unauthorized")).reason, "unauthorized");
    // Our clock a day behind Paysera's: the stale MAC ts, not the key, is named.
    let stale = ApiError::Refused {
        status: 401,
        error: "unauthorized".into(),
        description: "d".into(),
        skew: Some(-86_400),
    };
    let f = refused(&stale);
    assert_eq!(f.reason, "clock_skew");
    assert!(
        f.message.contains("86400 s behind Paysera's"),
        "{}",
        f.message
    );
    // A refusal that is not about credentials is not put down to the clock.
    let other = ApiError::Refused {
        status: 400,
        error: "invalid_parameters".into(),
        description: "d".into(),
        skew: Some(-86_400),
    };
    assert_eq!(other.clock_skew(), None);
    assert_eq!(refused(&r("forbidden")).reason, "unauthorized");
    assert_eq!(refused(&r("invalid_parameters")).reason, "invalid_request");
    assert_eq!(refused(&r("not_found")).reason, "invalid_request");
    assert!(r("internal_server_error").maybe_acted());
    assert!(!r("invalid_state").maybe_acted());
}

#[test]
fn refund_is_not_in_the_capability_table() {
    let caps = crate::provider::known("paysera").unwrap();
    assert!(caps.supports(OpKind::Pay) && caps.supports(OpKind::Cancel));
    assert!(!caps.supports(OpKind::Refund));
}

#[test]
fn one_status_check_per_sale_at_a_time() {
    let cfg = crate::config::PayseraConfig {
        base_url: "http://127.0.0.1:9".into(),
        client_id: "c".into(),
        mac_key: Some(Secret::new("k")),
        mac_key_file: None,
        spot_id: "7".into(),
        spot_code: None,
        currency: "EUR".into(),
        timeout_ms: Some(2000),
        status_poll_ms: None,
    };
    let p = Paysera::new(&cfg).unwrap();
    assert_eq!(p.timeout(), Duration::from_millis(2000 + 6 * 1000));
    let spot = Spot::parse(&json!({"id": 7, "identifier": "T1"})).unwrap();
    let e = p.code_of(&spot).unwrap_err();
    assert!(e.message.contains("providers.paysera.spot_code"), "{e:?}");
    let spot = Spot::parse(&json!({"id": 7, "identifier": "T1",
        "place_info": {"location_id": 3}}))
    .unwrap();
    assert_eq!(p.code_of(&spot).unwrap(), "PAYSERA*3:T1");
    let first = p.begin_check("pb-a").expect("free");
    assert!(p.begin_check("pb-a").is_none(), "a second check must wait");
    assert!(
        p.begin_check("pb-b").is_some(),
        "other sales are independent"
    );
    drop(first);
    assert!(p.begin_check("pb-a").is_some());
}
