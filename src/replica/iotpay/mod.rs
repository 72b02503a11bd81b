//! Loopback replica of IOT Pay's POS semi-integration (channel CC_PAX), written from the
//! document (../shared/seeds/002_95d392190db65394.txt): `POST /v1/create_order`, and, which the
//! document only names ("init a Query Order request"), `/v1/query_order` and
//! `/v1/refund_order` as docs/providers.md, "What the documents leave open" assumes them. A request is a form body
//! whose field `params` holds the JSON parameters (the form fields themselves are accepted
//! too); it is checked against the document's table (`check.rs`: required fields, types,
//! lengths, channel CC_PAX, notifyUrl, a non-empty extra) and its `sign` verified with the
//! merchant key by the replica's own signing code (`sign.rs`, not the client's). Every answer, refusals included, carries a `sign` (the document lists it as
//! required), made with the merchant key or option `response_key`. It keeps orders, refunds
//! and a count of money-moving calls per mchOrderNo / mchRefundNo in its state file
//! (`GET /_replica/state`). It is test equipment and must never move real money.
//!
//! The terminal (`orders.rs`), by amount: ..51 the customer's card is declined, status 9 with
//! retCode and resCode both SUCCESS and the document's "Transaction Not Completed 05"; ..52
//! the terminal refuses before the bank (resCode FAIL, no payOrder; the order is kept with
//! status 4); ..53 refused before anything exists, worded "Transaction refused" (both codes
//! FAIL, no order kept: query_order then says it does not exist; a client that reads "used" in
//! "refused" takes it for a duplicate); ..61 create_order answers at once, both codes SUCCESS,
//! with payOrder status 1 (the document's "else: error occurs", lines 121-124), while the
//! terminal goes on and is paid `terminal_ms` later; ..62 the same with status 0, and the
//! terminal then declines (status 9); ..71 paid with a tip of 200, cashback "10.00" and a
//! surcharge "0.50" (strings whose unit the document never gives: only blank ones are shown);
//! ..93 takes option `slow_ms` (default 5000); anything else is paid (status 2) with the full
//! receipt `extra` the document shows. The terminal takes option `terminal_ms` (default 300)
//! on its own task, so a caller that hangs up does not stop it. Options that act like a real
//! network or backend would:
//! - `mch_id` (required): the merchant id IOT Pay assigned with the key. The document's mchId
//!   is "merchant id assigned by IOTPay": a backend knows its merchants and finds the key by
//!   this id, so a request under any other id is refused "mchId does not exist" before its
//!   sign is looked at (no merchant, no key to check it with).
//! - `resend_create=N`: the first N create_orders are charged, but the answer is the one a
//!   resent copy gets: "mchOrderNo already exists" (a proxy that retried the POST).
//! - `create_shapeless=N`: the first N create_orders are charged and answered with both codes
//!   SUCCESS and no payOrder.
//! - `query_busy=N`: the first N query_orders get resCode FAIL "system busy".
//! - `query_blind=N`: the first N query_orders answer "order does not exist" (resCode FAIL)
//!   whatever the replica holds: a status path that does not (yet) see an order create_order
//!   acknowledged (a backend incident, a lagging replica of IOT Pay's database).
//! - `query_flat=N`: the first N query_orders that find the order answer it at the top level
//!   (the order's fields beside retCode and resCode, no payOrder): the document does not show
//!   query_order's answer, and this is a shape a backend may use.
//! - `response_key`: sign answers with another key (a forged or misconfigured backend).
//!
//! A repeated mchRefundNo refunds again: the document promises no deduplication, so the
//! replica plays the dangerous reading.

mod check;
mod orders;
mod sign;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::{get, post};
use axum::{Json, Router};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Options, Store};

#[derive(Default, Serialize, Deserialize)]
pub struct IotState {
    next_id: u64,
    /// By mchOrderNo.
    orders: BTreeMap<String, Order>,
    /// By mchRefundNo; a repeated number adds another.
    refunds: BTreeMap<String, Vec<Refund>>,
    /// Money-moving calls (create_order, refund_order) received, by mchOrderNo / mchRefundNo.
    calls: BTreeMap<String, u32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    pay_order_id: String,
    amount: u64,
    tip: u64,
    currency: String,
    status: u8,
    extra: String,
    refunded: u64,
    created_ms: u64,
    updated_ms: u64,
    /// The create_order parameters as received, without `sign`.
    request: Map<String, Value>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Refund {
    refund_order_id: String,
    pay_order_id: String,
    amount: u64,
}

struct Replica {
    store: Store<IotState>,
    key: String,
    response_key: String,
    mch_id: String,
    terminal: Duration,
    slow: Duration,
    resend_create: AtomicU32,
    create_shapeless: AtomicU32,
    query_busy: AtomicU32,
    query_blind: AtomicU32,
    query_flat: AtomicU32,
}

pub fn router(opts: &Options) -> anyhow::Result<Router> {
    let key = opts
        .secret
        .as_ref()
        .context("the iotpay replica needs the merchant key (--secret / POSBRIDGE_REPLICA_SECRET)")?
        .expose()
        .to_owned();
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        match opts.options.get(name) {
            Some(v) => v
                .parse()
                .with_context(|| format!("option {name}: not a number")),
            None => Ok(default),
        }
    };
    let count = |name: &str| -> anyhow::Result<AtomicU32> {
        Ok(AtomicU32::new(
            u32::try_from(number(name, 0)?).context(name.to_owned())?,
        ))
    };
    let replica = Replica {
        store: Store::open(opts.state.clone()).context("iotpay replica state")?,
        response_key: opts
            .options
            .get("response_key")
            .cloned()
            .unwrap_or(key.clone()),
        key,
        mch_id: opts.options.get("mch_id").cloned().context(
            "the iotpay replica needs option mch_id (the merchant id IOT Pay assigned with the key)",
        )?,
        terminal: Duration::from_millis(number("terminal_ms", 300)?),
        slow: Duration::from_millis(number("slow_ms", 5000)?),
        resend_create: count("resend_create")?,
        create_shapeless: count("create_shapeless")?,
        query_busy: count("query_busy")?,
        query_blind: count("query_blind")?,
        query_flat: count("query_flat")?,
    };
    Ok(Router::new()
        .route("/v1/create_order", post(orders::create_order))
        .route("/v1/query_order", post(orders::query_order))
        .route("/v1/refund_order", post(orders::refund_order))
        .route("/_replica/state", get(state))
        .with_state(Arc::new(replica)))
}

type Answer = Json<Value>;

impl Replica {
    /// `answer` with its `sign`.
    fn signed(&self, mut answer: Map<String, Value>) -> Answer {
        let sign = sign::make(&answer, &self.response_key);
        answer.insert("sign".into(), Value::String(sign));
        Json(Value::Object(answer))
    }

    /// A refusal: both codes FAIL and the reason in retMsg, signed like every answer.
    fn refuse(&self, msg: &str) -> Answer {
        let mut a = Map::new();
        a.insert("retCode".into(), json!("FAIL"));
        a.insert("resCode".into(), json!("FAIL"));
        a.insert("retMsg".into(), json!(msg));
        self.signed(a)
    }

    /// The parameters of a request, checked against `table` and its signature verified.
    fn params(&self, body: &[u8], table: &[check::Field]) -> Result<Map<String, Value>, Answer> {
        let p = parse_form(body).map_err(|m| self.refuse(&m))?;
        check::fields(&p, table).map_err(|m| self.refuse(&m))?;
        if p.get("mchId").and_then(Value::as_str) != Some(self.mch_id.as_str()) {
            return Err(self.refuse("mchId does not exist"));
        }
        check::sign_shape(&p).map_err(|m| self.refuse(&m))?;
        if !sign::verifies(&p, &self.key) {
            return Err(self.refuse("signature fail"));
        }
        Ok(p)
    }

    /// Counts one money-moving call for `id`.
    fn count(&self, id: &str) {
        self.store
            .update(|s| *s.calls.entry(id.to_owned()).or_default() += 1);
    }

    /// Takes one from a `*=N` option; true while it lasts.
    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A form body: the JSON object in field `params`, else the form's own fields as strings.
fn parse_form(body: &[u8]) -> Result<Map<String, Value>, String> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "the form is not UTF-8".to_owned())
    };
    let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_owned())?;
    let mut fields = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        fields.insert(decode(k)?, Value::String(decode(v)?));
    }
    match fields.get("params") {
        Some(Value::String(json)) => match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(p)) => Ok(p),
            _ => Err("params is not a JSON object".into()),
        },
        _ if fields.is_empty() => Err("no parameters".into()),
        _ => Ok(fields),
    }
}

async fn state(axum::extract::State(r): axum::extract::State<Arc<Replica>>) -> Json<Value> {
    Json(
        r.store
            .read(|s| serde_json::to_value(s).unwrap_or_default()),
    )
}
