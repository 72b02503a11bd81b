//! The replica against the Paysera POS document: it accepts every form the document shows
//! (both order bodies, integer ids, the spot by id and by code, spots by status) and answers in
//! its shapes (location id under place_info, transaction_key at the order's top level), and it
//! refuses what the document refuses (bad MAC, wrong types, missing fields, wrong states).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::provider::sign;
use crate::replica::{serve, Options};
use crate::secret::Secret;

struct Running {
    base: String,
    port: u16,
    http: reqwest::Client,
}

async fn start(options: &[(&str, &str)]) -> Running {
    let opts = Options {
        backend: "paysera".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        state: None,
        secret: Some(Secret::new("k")),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    let router = super::router(&opts).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener, router));
    Running {
        base: format!("http://127.0.0.1:{port}"),
        port,
        http: reqwest::Client::new(),
    }
}

impl Running {
    async fn call_with(
        &self,
        key: &str,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let ts = crate::clock::unix_secs();
        let nonce = sign::nonce();
        let ext = body
            .map(|b| sign::paysera_body_hash_ext(b.as_bytes()))
            .unwrap_or_default();
        let parts = sign::PayseraMacParts {
            ts,
            nonce: &nonce,
            method: method.as_str(),
            uri,
            host: "127.0.0.1",
            port: self.port,
            ext: &ext,
        };
        let mac = sign::paysera_mac(key, &parts);
        let auth = sign::paysera_authorization_header("cid", ts, &nonce, &mac, &ext);
        let mut req = self
            .http
            .request(method, format!("{}{uri}", self.base))
            .header("Authorization", auth);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json;charset=utf-8")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> (u16, Value) {
        self.call_with("k", method, uri, body).await
    }
}

const PAYMENT: &str = r#"{"payments": [{"description": "d", "price": 1299, "currency": "EUR",
    "parameters": {"order_id": "P1"}}]}"#;

#[tokio::test]
async fn both_order_bodies_of_the_document_are_accepted_and_answered_in_its_shapes() {
    let r = start(&[("reserve_after_ms", "60000")]).await;
    let (st, spot) = r.call(Method::GET, "/rest/v1/spot/7", None).await;
    assert_eq!(st, 200, "{spot}");
    assert_eq!(spot["id"], 7);
    assert_eq!(spot["place_info"]["location_id"], 1001, "{spot}");
    assert!(spot.get("location_id").is_none(), "{spot}");
    let (_, by_code) = r
        .call(
            Method::GET,
            "/rest/v1/spot?code=PAYSERA*1001%3Aspot-7",
            None,
        )
        .await;
    assert_eq!(by_code["id"], 7, "{by_code}");

    // Transaction first, then the order by its key.
    let (st, t) = r
        .call(Method::POST, "/rest/v1/transaction", Some(PAYMENT))
        .await;
    assert_eq!((st, t["status"].as_str()), (200, Some("new")), "{t}");
    let key = t["transaction_key"].as_str().unwrap().to_owned();
    let body = format!("{{\n    \"transaction_key\": \"{key}\"\n}}");
    let (st, o) = r
        .call(Method::POST, "/rest/v1/spot/7/order", Some(&body))
        .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(
        o,
        json!({"id": o["id"], "transaction_key": key, "status": "pending"})
    );
    assert!(o["id"].is_u64(), "{o}");
    // The same key cannot be put on a second order.
    let (st, e) = r
        .call(Method::POST, "/rest/v1/spot/7/order", Some(&body))
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (409, Some("invalid_state")),
        "{e}"
    );

    // The inline transaction form.
    let inline = format!("{{\"transaction\": {PAYMENT}}}");
    let (st, o2) = r
        .call(Method::POST, "/rest/v1/spot/7/order", Some(&inline))
        .await;
    assert_eq!(st, 200, "{o2}");
    assert!(o2["transaction_key"].is_string(), "{o2}");

    let (_, spot) = r.call(Method::GET, "/rest/v1/spot/7", None).await;
    assert_eq!(spot["status"], "open");
    assert_eq!(spot["orders"].as_array().unwrap().len(), 2, "{spot}");
    let (_, open) = r
        .call(Method::GET, "/rest/v1/spots?status=open&limit=3", None)
        .await;
    assert_eq!(open["_metadata"]["total"], 1, "{open}");

    // Closing closes the pending orders and empties the spot.
    let (st, closed) = r.call(Method::PUT, "/rest/v1/spot/7/close", None).await;
    assert_eq!(
        (st, closed["status"].as_str()),
        (200, Some("closed")),
        "{closed}"
    );
    assert_eq!(closed["orders"], json!([]));
    let (_, o) = r
        .call(Method::GET, &format!("/rest/v1/order/{}", o["id"]), None)
        .await;
    assert_eq!(o["status"], "closed", "{o}");
}

#[tokio::test]
async fn what_the_document_does_not_allow_is_refused() {
    let r = start(&[]).await;
    let (st, e) = r
        .call_with("wrong", Method::GET, "/rest/v1/spot/7", None)
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    for body in [
        r#"{"transaction_key": 5}"#,
        r#"{"transaction_key": ""}"#,
        r#"{}"#,
        r#"[]"#,
        r#"{"transaction_key": "a", "transaction": {}}"#,
        r#"{"transaction": {"payments": [{"price": "12", "currency": "EUR"}]}}"#,
        r#"{"transaction": {"payments": [{"price": 12, "currency": "eur"}]}}"#,
        r#"{"transaction": {"payments": []}}"#,
        r#"{"order_id": "x", "transaction_key": "a"}"#,
    ] {
        let (st, e) = r
            .call(Method::POST, "/rest/v1/spot/7/order", Some(body))
            .await;
        assert_eq!(st, 400, "{body}: {e}");
        assert_eq!(e["error"], "invalid_parameters", "{body}: {e}");
    }
    let (st, _) = r
        .call(
            Method::POST,
            "/rest/v1/spot/7/order",
            Some(r#"{"transaction_key": "nope"}"#),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = r.call(Method::GET, "/rest/v1/spot/seven", None).await;
    assert_eq!(st, 404);
    let (st, _) = r
        .call(Method::GET, "/rest/v1/orders?spot_id=7&order_id=x", None)
        .await;
    assert_eq!(st, 404, "the document has no order search");
    // Confirm before the customer reserved: invalid_state.
    let (_, t) = r
        .call(Method::POST, "/rest/v1/transaction", Some(PAYMENT))
        .await;
    let key = t["transaction_key"].as_str().unwrap();
    let (st, e) = r
        .call(
            Method::PUT,
            &format!("/rest/v1/transaction/{key}/confirm"),
            None,
        )
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (409, Some("invalid_state")),
        "{e}"
    );
}

#[tokio::test]
async fn the_place_info_may_leave_the_location_out_as_the_documents_example_does() {
    let r = start(&[("place_location", "none")]).await;
    let (_, spot) = r.call(Method::GET, "/rest/v1/spot/7", None).await;
    assert!(spot["place_info"].get("location_id").is_none(), "{spot}");
    assert_eq!(spot["identifier"], "spot-7");
}

/// A transaction put on a new order at spot 7; (key, order id).
async fn sale(r: &Running) -> (String, u64) {
    let (_, t) = r
        .call(Method::POST, "/rest/v1/transaction", Some(PAYMENT))
        .await;
    let key = t["transaction_key"].as_str().unwrap().to_owned();
    let body = format!("{{\"transaction_key\": \"{key}\"}}");
    let (_, o) = r
        .call(Method::POST, "/rest/v1/spot/7/order", Some(&body))
        .await;
    (key, o["id"].as_u64().unwrap())
}

async fn ledger(r: &Running) -> Value {
    reqwest::get(format!("{}/_replica/ledger", r.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_late_customer_reserves_a_closed_orders_transaction_until_it_is_revoked() {
    let r = start(&[("reserve_after_ms", "200"), ("reserve_closed", "yes")]).await;
    let (kept, _) = sale(&r).await;
    let (revoked, _) = sale(&r).await;
    // The merchant closes the spot: both orders close, their transactions are still new.
    r.call(Method::PUT, "/rest/v1/spot/7/close", None).await;
    let (st, gone) = r
        .call(
            Method::DELETE,
            &format!("/rest/v1/transaction/{revoked}"),
            None,
        )
        .await;
    assert_eq!(
        (st, gone["status"].as_str()),
        (200, Some("revoked")),
        "{gone}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, t) = r
        .call(Method::GET, &format!("/rest/v1/transaction/{kept}"), None)
        .await;
    assert_eq!((st, t["status"].as_str()), (200, Some("reserved")), "{t}");
    let l = ledger(&r).await;
    assert_eq!(l["reserved"][0]["key"], kept.as_str(), "{l}");
    assert_eq!(l["reserved"][0]["order_id"], "P1", "{l}");
    assert_eq!(l["revoked"][0]["key"], revoked.as_str(), "{l}");
    assert_eq!(l["revoked"][0]["revokes"], 1, "{l}");
    let (st, _) = r.call(Method::GET, "/rest/v1/transaction/nope", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn a_spread_customer_approves_each_order_at_its_own_moment_and_never_a_closed_one() {
    let r = start(&[("reserve_after_ms", "0"), ("reserve_spread_ms", "400")]).await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        orders.push(sale(&r).await);
    }
    // Without reserve_closed a closed order's transaction is never reserved.
    r.call(Method::PUT, "/rest/v1/spot/7/close", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let l = ledger(&r).await;
    let reserved = l["reserved"].as_array().unwrap().len();
    let new = l["new"].as_array().unwrap().len();
    assert_eq!(reserved + new, 6, "{l}");
    for (key, id) in &orders {
        let (_, o) = r
            .call(Method::GET, &format!("/rest/v1/order/{id}"), None)
            .await;
        let (_, t) = r
            .call(Method::GET, &format!("/rest/v1/transaction/{key}"), None)
            .await;
        match o["status"].as_str() {
            Some("reserved") => assert_eq!(t["status"], "reserved"),
            Some("closed") => assert_eq!(t["status"], "new"),
            other => panic!("order {id} is {other:?}"),
        }
    }
}
