//! A loopback replica of the Paysera POS API, written from the Paysera POS document
//! (seeds/000_0c09e6fa46f88a7e.txt) and, for the transaction calls the document leaves to the
//! rest of the Wallet API, from the public Wallet API pages (docs/providers.md, "What the documents leave open" lists
//! each such reading). Every `/rest/v1/` request must carry a valid MAC (`auth.rs`, the replica's
//! own check written from the documents, sharing no code with the client's signer); errors are
//! Paysera's JSON `{error, error_description}`. State lives in a [`Store`], so it outlives
//! restarts. It is test equipment: it must never stand in for Paysera outside tests and demos.
//!
//! Routes (`spots.rs`): `GET /rest/v1/spot/{id}`, `GET /rest/v1/spot?code=`, `GET
//! /rest/v1/spots?status=&limit=&offset=`, `PUT /rest/v1/spot/{id}/check-in|check-out|close`.
//! (`orders.rs`): `POST /rest/v1/spot/{id}/order` and `PUT /rest/v1/order/{id}` with either
//! body the document shows (`{"transaction_key": ..}` or `{"transaction": {..}}`), `GET|DELETE
//! /rest/v1/order/{id}`, `POST /rest/v1/transaction`, `PUT /rest/v1/transaction/{key}/confirm`,
//! `GET /rest/v1/transaction/{key}` (read), `DELETE /rest/v1/transaction/{key}` (revoke).
//! There is no order search: the document has none. `GET /_replica/state` shows everything,
//! with the money-moving calls counted per transaction (`order_creates`, `confirms`,
//! `revokes`) and the closes per spot; `GET /_replica/ledger` lists the transactions by status
//! (`new`, `reserved`, `confirmed`, `revoked`, `rejected`), each with its key, its sale
//! (`description`) and its operation (`parameters.order_id`): what a test counts at the end
//! (money left reserved, confirmed for a sale answered not charged).
//!
//! Every integer spot id exists, identifier `spot-{id}`, at `location_id` (option, default
//! 1001) carried in `place_info` (option `place_location=none` leaves it out, as the document's
//! own example does). A spot lists the orders made since it was last closed; closing it closes
//! its pending orders and empties the list (orders stay readable by id).
//!
//! The customer is simulated lazily from the clock (so it survives restarts): a pending order
//! is reserved `reserve_after_ms` (default 300) after it was created, except amounts ending in
//! `51` (never paid: it stays pending until revoked or closed) and `52` (the reservation is
//! rejected: the order closes). The customer's hostile moves the document allows, each off
//! unless set:
//! - `reserve_spread_ms=N`: a customer who approves at a random moment: each order is
//!   reserved `reserve_after_ms` + a number 0..=N drawn from its transaction key (so the same
//!   order gets the same moment after a replica restart). With N beyond the daemon's window the
//!   customer approves after the sale's deadline whenever nothing revoked the transaction first.
//! - `reserve_closed=yes`: a customer whose app still shows the transaction approves it after
//!   its order was closed by a spot close or an order removal: the document's "closed" order
//!   says nothing of its transaction, which is still `new` and is reserved at the same moment
//!   (the order stays closed). Only a revoke stops it.
//!
//! Other options: `client_id` (when set, the MAC id must match), `location_id`,
//! `place_location`, `max_skew_s` (default 300).

// A refusal is the axum `Response` Paysera would send; boxing it buys nothing in test equipment.
#![allow(clippy::result_large_err)]

mod auth;
mod orders;
mod spots;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Options, Store};
use auth::Verifier;

#[derive(Default, Serialize, Deserialize)]
pub struct PayseraState {
    next_order: u64,
    spots: BTreeMap<u64, Spot>,
    orders: BTreeMap<u64, Order>,
    transactions: BTreeMap<String, Transaction>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Spot {
    /// closed, waiting, open.
    status: String,
    identifier: String,
    /// Orders made since the spot was last closed.
    orders: Vec<u64>,
    closes: u32,
}

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    spot_id: u64,
    /// pending, reserved, confirmed, closed.
    status: String,
    transaction_key: String,
    created_ms: u64,
    /// When it closed (tests check that a leftover closed before the next order came).
    #[serde(default)]
    closed_ms: Option<u64>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Transaction {
    key: String,
    /// new, reserved, confirmed, revoked, rejected.
    status: String,
    payments: Vec<Value>,
    order: Option<u64>,
    /// Money-moving calls: orders created carrying this transaction, confirms, revokes.
    order_creates: u32,
    confirms: u32,
    #[serde(default)]
    revokes: u32,
}

impl Transaction {
    fn price(&self) -> u64 {
        self.payments
            .iter()
            .filter_map(|p| p["price"].as_u64())
            .sum()
    }
}

impl Order {
    fn close(&mut self) {
        self.status = "closed".into();
        self.closed_ms = Some(now_ms());
    }

    /// The document's order data structure: id, transaction_key, status.
    fn json(&self) -> Value {
        json!({"id": self.id, "transaction_key": self.transaction_key, "status": self.status})
    }
}

/// How the simulated customer behaves (the module doc's options).
#[derive(Clone, Copy)]
struct Customer {
    reserve_after_ms: u64,
    reserve_spread_ms: u64,
    reserve_closed: bool,
}

impl Customer {
    /// When the customer approves the order carrying `key`, after the order was made.
    fn delay_ms(&self, key: &str) -> u64 {
        let drawn = key
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        self.reserve_after_ms + drawn % (self.reserve_spread_ms + 1)
    }
}

impl PayseraState {
    /// The simulated customer, evaluated from the clock for every open order (and, when the
    /// customer approves late, for closed orders whose transaction is still `new`).
    fn advance(&mut self, now_ms: u64, c: Customer) {
        for o in self.orders.values_mut() {
            let open = o.status == "pending";
            if !(open || c.reserve_closed && o.status == "closed") {
                continue;
            }
            if now_ms < o.created_ms + c.delay_ms(&o.transaction_key) {
                continue;
            }
            let Some(t) = self.transactions.get_mut(&o.transaction_key) else {
                continue;
            };
            if t.status != "new" || t.order != Some(o.id) {
                continue;
            }
            match t.price() % 100 {
                51 => {}
                52 => {
                    t.status = "rejected".into();
                    if open {
                        o.close();
                    }
                }
                _ => {
                    t.status = "reserved".into();
                    if open {
                        o.status = "reserved".into();
                    }
                }
            }
        }
    }

    /// The transactions by status, each with its key, sale and operation.
    fn ledger(&self) -> Value {
        let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for s in ["new", "reserved", "confirmed", "revoked", "rejected"] {
            by.insert(s.into(), Vec::new());
        }
        for t in self.transactions.values() {
            let p = t.payments.first().cloned().unwrap_or_default();
            by.entry(t.status.clone()).or_default().push(json!({
                "key": t.key,
                "sale": p["description"],
                "order_id": p["parameters"]["order_id"],
                "order": t.order,
                "confirms": t.confirms,
                "revokes": t.revokes,
            }));
        }
        json!(by)
    }
}

struct Replica {
    store: Store<PayseraState>,
    verifier: Verifier,
    customer: Customer,
    location_id: u64,
    place_location: bool,
}

type Shared = State<Arc<Replica>>;

impl Replica {
    /// Runs `f` on the state after the customer has had their turn, saving any change.
    fn update<R>(&self, f: impl FnOnce(&mut PayseraState) -> R) -> R {
        self.store.update(|s| {
            s.advance(now_ms(), self.customer);
            f(s)
        })
    }
}

fn now_ms() -> u64 {
    crate::clock::unix_ms()
}

/// Paysera's error object.
fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    let body = json!({"error": code, "error_description": description.into()});
    (status, Json(body)).into_response()
}

fn invalid(description: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_parameters", description)
}

fn invalid_state(description: impl Into<String>) -> Response {
    error(StatusCode::CONFLICT, "invalid_state", description)
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} not found"),
    )
}

/// A path id as the document shows ids: a positive integer.
fn id_of(raw: &str, what: &str) -> Result<u64, Response> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| not_found(what))
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
            // The replica speaks plain HTTP: a Host without a port means 80.
            80,
        ),
        customer: Customer {
            reserve_after_ms: num("reserve_after_ms", 300)?,
            reserve_spread_ms: num("reserve_spread_ms", 0)?,
            reserve_closed: match opts.options.get("reserve_closed").map(String::as_str) {
                None | Some("no") => false,
                Some("yes") => true,
                Some(v) => anyhow::bail!("--option reserve_closed={v}: yes or no"),
            },
        },
        location_id: num("location_id", 1001)?,
        place_location: opts.options.get("place_location").map(String::as_str) != Some("none"),
    });
    Ok(Router::new()
        .route("/rest/v1/spot", get(spots::by_code))
        .route("/rest/v1/spots", get(spots::list))
        .route("/rest/v1/spot/{id}", get(spots::by_id))
        .route("/rest/v1/spot/{id}/check-in", put(spots::check_in))
        .route("/rest/v1/spot/{id}/check-out", put(spots::check_out))
        .route("/rest/v1/spot/{id}/close", put(spots::close))
        .route("/rest/v1/spot/{id}/order", post(orders::create))
        .route(
            "/rest/v1/order/{id}",
            get(orders::read).put(orders::edit).delete(orders::remove),
        )
        .route("/rest/v1/transaction", post(orders::create_transaction))
        .route("/rest/v1/transaction/{key}/confirm", put(orders::confirm))
        .route(
            "/rest/v1/transaction/{key}",
            get(orders::read_transaction).delete(orders::revoke),
        )
        .layer(middleware::from_fn_with_state(replica.clone(), verify))
        .route("/_replica/state", get(state))
        .route("/_replica/ledger", get(ledger))
        .with_state(replica))
}

/// Refuses every request without a valid MAC, before any handler sees it; a body must be
/// JSON (`Content-Type: application/json`), as in every example of the document.
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
    let json_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !bytes.is_empty() && !json_type {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a body must be sent as Content-Type: application/json",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The body as a JSON object, or Paysera's refusal.
fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not JSON",
        )),
    }
}

async fn state(State(r): Shared) -> Json<Value> {
    Json(r.update(|s| serde_json::to_value(&*s).unwrap_or_default()))
}

async fn ledger(State(r): Shared) -> Json<Value> {
    Json(r.update(|s| s.ledger()))
}

#[cfg(test)]
mod tests;
