//! A loopback replica of Paysera's Wallet API for spots and orders (providers.md, "Paysera"):
//! every `/rest/v1/` request must carry a valid MAC (`auth.rs`); errors are Paysera's JSON
//! `{error, error_description}`. State (orders, their transactions, and the money-moving calls
//! counted per payment `order_id`) lives in a [`Store`], so it outlives restarts. It is test
//! equipment: it must never stand in for Paysera outside tests and demos.
//!
//! Routes: `GET /rest/v1/spot/{id}` (every spot exists, at `location_id`, identifier
//! `spot-{id}`), `POST /rest/v1/spot/{id}/order` (inline transaction only), `GET|DELETE
//! /rest/v1/order/{id}`, `GET /rest/v1/orders?spot_id=&order_id=` (the search posbridge relies
//! on, answering `{"orders": [...]}`), `PUT /rest/v1/transaction/{key}/confirm`,
//! `DELETE /rest/v1/transaction/{key}` (revoke), and `GET /_replica/state`.
//!
//! The customer is simulated lazily from the clock (so it survives restarts): a pending order
//! is reserved `reserve_after_ms` (default 300) after it was created, except amounts ending in
//! `51` (the customer never pays: it stays pending until revoked) and `52` (the reservation is
//! rejected: the order closes, transaction `rejected`). Options: `reserve_after_ms`,
//! `client_id` (when set, the MAC id must match), `location_id` (default 1001), `max_skew_s`
//! (default 300).

mod auth;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Options, Store};
use auth::Verifier;

#[derive(Default, Serialize, Deserialize)]
pub struct PayseraState {
    next_id: u64,
    orders: BTreeMap<u64, Order>,
    /// Money-moving calls per payment `order_id` (posbridge's derived key).
    calls: BTreeMap<String, Calls>,
}

#[derive(Default, Serialize, Deserialize)]
struct Calls {
    create: u32,
    confirm: u32,
}

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    spot_id: String,
    /// pending, reserved, confirmed, closed.
    status: String,
    transaction_key: String,
    /// new, reserved, confirmed, revoked, rejected.
    transaction_status: String,
    price: u64,
    currency: String,
    description: String,
    order_id: String,
    created_ms: u64,
}

impl Order {
    /// The simulated customer, evaluated from the clock.
    fn advance(&mut self, now_ms: u64, reserve_after_ms: u64) {
        if self.status != "pending" || now_ms < self.created_ms + reserve_after_ms {
            return;
        }
        match self.price % 100 {
            51 => {}
            52 => self.set("closed", "rejected"),
            _ => self.set("reserved", "reserved"),
        }
    }

    fn set(&mut self, status: &str, transaction_status: &str) {
        self.status = status.into();
        self.transaction_status = transaction_status.into();
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "spot_id": self.spot_id,
            "created_at": self.created_ms / 1000,
            "transaction": {
                "transaction_key": self.transaction_key,
                "status": self.transaction_status,
                "payments": [{"price": self.price, "currency": self.currency,
                    "description": self.description, "order_id": self.order_id}],
            },
        })
    }
}

struct Replica {
    store: Store<PayseraState>,
    verifier: Verifier,
    reserve_after_ms: u64,
    location_id: String,
}

type Shared = State<Arc<Replica>>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Paysera's error object.
fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    let body = json!({"error": code, "error_description": description.into()});
    (status, Json(body)).into_response()
}

fn invalid_state(o: &Order) -> Response {
    let msg = format!(
        "order {} is {}, transaction {}",
        o.id, o.status, o.transaction_status
    );
    error(StatusCode::BAD_REQUEST, "invalid_state", msg)
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} not found"),
    )
}

pub fn router(opts: &Options) -> anyhow::Result<Router> {
    use anyhow::Context;
    let secret = opts
        .secret
        .clone()
        .context("the paysera replica needs --secret (the MAC key it verifies with)")?;
    let num = |k: &str, default: u64| -> anyhow::Result<u64> {
        opts.options.get(k).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--option {k}={v}: not a number"))
        })
    };
    let replica = Arc::new(Replica {
        store: Store::open(opts.state.clone())?,
        verifier: Verifier::new(
            secret,
            opts.options.get("client_id").cloned(),
            num("max_skew_s", 300)?,
        ),
        reserve_after_ms: num("reserve_after_ms", 300)?,
        location_id: opts
            .options
            .get("location_id")
            .cloned()
            .unwrap_or_else(|| "1001".into()),
    });
    Ok(Router::new()
        .route("/rest/v1/spot/{id}", get(spot))
        .route(
            "/rest/v1/spot/{id}/order",
            axum::routing::post(create_order),
        )
        .route("/rest/v1/order/{id}", get(read_order).delete(delete_order))
        .route("/rest/v1/orders", get(find_orders))
        .route("/rest/v1/transaction/{key}/confirm", put(confirm))
        .route("/rest/v1/transaction/{key}", axum::routing::delete(revoke))
        .layer(middleware::from_fn_with_state(replica.clone(), verify))
        .route("/_replica/state", get(state))
        .with_state(replica))
}

/// Refuses every request without a valid MAC, before any handler sees it.
async fn verify(State(r): Shared, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "body too large");
    };
    let now = now_ms() / 1000;
    if let Err(why) = r
        .verifier
        .verify(&parts.method, &parts.uri, &parts.headers, &bytes, now)
    {
        log::info!(
            "paysera replica: refused {} {}: {why}",
            parts.method,
            parts.uri.path()
        );
        return error(StatusCode::UNAUTHORIZED, "unauthorized", why);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn spot(State(r): Shared, Path(id): Path<String>) -> Response {
    let identifier = format!("spot-{id}");
    Json(
        json!({"id": id, "status": "checked_in", "location_id": r.location_id,
        "identifier": identifier, "code": format!("PAYSERA*{}:{identifier}", r.location_id)}),
    )
    .into_response()
}

async fn create_order(
    State(r): Shared,
    Path(spot_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body is not JSON",
        );
    };
    let p = &v["transaction"]["payments"][0];
    let (Some(price), Some(currency), Some(order_id)) = (
        p["price"].as_u64(),
        p["currency"].as_str(),
        p["order_id"].as_str(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "transaction.payments[0] needs price, currency and order_id",
        );
    };
    if price == 0 || currency.len() != 3 || order_id.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "bad price, currency or order_id",
        );
    }
    let order = r.store.update(|s| {
        s.next_id += 1;
        let order = Order {
            id: s.next_id,
            spot_id,
            status: "pending".into(),
            transaction_key: uuid::Uuid::new_v4().simple().to_string()[..20].to_owned(),
            transaction_status: "new".into(),
            price,
            currency: currency.into(),
            description: p["description"].as_str().unwrap_or("").into(),
            order_id: order_id.into(),
            created_ms: now_ms(),
        };
        s.calls.entry(order.order_id.clone()).or_default().create += 1;
        s.orders.insert(order.id, order.clone());
        order
    });
    Json(order.json()).into_response()
}

/// Runs `f` on order `id` (after the customer has had their turn), saving any change.
fn with_order(
    r: &Replica,
    id: u64,
    f: impl FnOnce(&mut Order, &mut Calls) -> Response,
) -> Response {
    r.store.update(|s| {
        let Some(o) = s.orders.get_mut(&id) else {
            return not_found("order");
        };
        o.advance(now_ms(), r.reserve_after_ms);
        let calls = s.calls.entry(o.order_id.clone()).or_default();
        f(o, calls)
    })
}

fn by_key(r: &Replica, key: &str) -> Option<u64> {
    r.store.read(|s| {
        s.orders
            .values()
            .find(|o| o.transaction_key == key)
            .map(|o| o.id)
    })
}

async fn read_order(State(r): Shared, Path(id): Path<u64>) -> Response {
    with_order(&r, id, |o, _| Json(o.json()).into_response())
}

async fn delete_order(State(r): Shared, Path(id): Path<u64>) -> Response {
    with_order(&r, id, |o, _| match o.status.as_str() {
        "pending" | "reserved" => {
            o.set("closed", "revoked");
            Json(o.json()).into_response()
        }
        "closed" => Json(o.json()).into_response(),
        _ => invalid_state(o),
    })
}

async fn find_orders(State(r): Shared, req: Request) -> Response {
    let mut query = BTreeMap::new();
    for pair in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        query.insert(k.to_owned(), v);
    }
    let (Some(spot_id), Some(order_id)) = (query.get("spot_id"), query.get("order_id")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "spot_id and order_id are required",
        );
    };
    let found: Vec<Value> = r.store.update(|s| {
        s.orders
            .values_mut()
            .filter(|o| o.spot_id == *spot_id && o.order_id == *order_id)
            .map(|o| {
                o.advance(now_ms(), r.reserve_after_ms);
                o.json()
            })
            .collect()
    });
    Json(json!({"orders": found})).into_response()
}

async fn confirm(State(r): Shared, Path(key): Path<String>) -> Response {
    let Some(id) = by_key(&r, &key) else {
        return not_found("transaction");
    };
    with_order(&r, id, |o, calls| {
        calls.confirm += 1;
        if o.status != "reserved" {
            return invalid_state(o);
        }
        o.set("confirmed", "confirmed");
        Json(json!({"transaction_key": o.transaction_key, "status": "confirmed"})).into_response()
    })
}

async fn revoke(State(r): Shared, Path(key): Path<String>) -> Response {
    let Some(id) = by_key(&r, &key) else {
        return not_found("transaction");
    };
    with_order(&r, id, |o, _| {
        match (o.status.as_str(), o.transaction_status.as_str()) {
            ("pending" | "reserved", _) | ("closed", "revoked") => {
                o.set("closed", "revoked");
                Json(json!({"transaction_key": o.transaction_key, "status": "revoked"}))
                    .into_response()
            }
            _ => invalid_state(o),
        }
    })
}

async fn state(State(r): Shared) -> Json<Value> {
    Json(r.store.update(|s| {
        for o in s.orders.values_mut() {
            o.advance(now_ms(), r.reserve_after_ms);
        }
        serde_json::to_value(&*s).unwrap_or_default()
    }))
}
