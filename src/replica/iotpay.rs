//! Loopback replica of IOT Pay's POS semi-integration (channel CC_PAX): `POST /v1/create_order`,
//! `/v1/query_order` and `/v1/refund_order`, each taking one form field `params` with the JSON
//! parameters and `sign`. Requests are verified with the merchant key (a bad one gets the
//! unsigned `{"retCode":"FAIL","retMsg":"sign error"}`); answers are signed. It keeps orders,
//! refunds and a count of money-moving calls per mchOrderNo / mchRefundNo in its state file,
//! shown at `GET /_replica/state`. It is test equipment and must never move real money.
//!
//! Behaviour, as tests drive it:
//! - create_order holds the order at status 1 (paying) while the customer "taps the card"
//!   (option `terminal_ms`, default 300), on its own task so a caller that hangs up does not
//!   stop the terminal. Amount ending 51: declined (status 4, resCode FAIL, receiptDisp
//!   "DECLINED BY ISSUER"); ending 93: the terminal takes option `slow_ms` (default 5000);
//!   else paid (status 2, VISA `************1111`). A repeated mchOrderNo is refused, never
//!   charged again.
//! - query_order by mchOrderNo or payOrderId; unknown: resCode FAIL, errCode ORDER_NOT_EXIST.
//! - refund_order: a repeated mchRefundNo with the same payOrderId and amount gets the first
//!   answer again and moves nothing (the idempotency posbridge's `refund_recheck = "reissue"`
//!   relies on). Refund amount ending 51: refused; more than is left: refused.
//! - Option `response_key`: sign answers with this key instead (a forged or misconfigured
//!   backend, to prove such answers are never believed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{Options, Store};
use crate::provider::sign::{iotpay_sign, iotpay_verify};

#[derive(Default, Serialize, Deserialize)]
pub struct IotState {
    next_id: u64,
    /// By mchOrderNo.
    orders: BTreeMap<String, Order>,
    /// By mchRefundNo.
    refunds: BTreeMap<String, Refund>,
    /// Money-moving calls (create_order, refund_order) received, by mchOrderNo / mchRefundNo.
    calls: BTreeMap<String, u32>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    pay_order_id: String,
    amount: u64,
    currency: String,
    status: u8,
    extra: String,
    refunded: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Refund {
    pay_order_id: String,
    amount: u64,
    /// The answer (unsigned), given again to a repeated mchRefundNo.
    answer: Map<String, Value>,
}

struct Replica {
    store: Store<IotState>,
    key: String,
    response_key: String,
    terminal: Duration,
    slow: Duration,
}

pub fn router(opts: &Options) -> anyhow::Result<Router> {
    let key = opts
        .secret
        .as_ref()
        .context("the iotpay replica needs the merchant key (--secret / POSBRIDGE_REPLICA_SECRET)")?
        .expose()
        .to_owned();
    let ms = |name: &str, default: u64| -> anyhow::Result<Duration> {
        let v = match opts.options.get(name) {
            Some(v) => v
                .parse()
                .with_context(|| format!("option {name}: not a number"))?,
            None => default,
        };
        Ok(Duration::from_millis(v))
    };
    let replica = Replica {
        store: Store::open(opts.state.clone()).context("iotpay replica state")?,
        response_key: opts
            .options
            .get("response_key")
            .cloned()
            .unwrap_or(key.clone()),
        key,
        terminal: ms("terminal_ms", 300)?,
        slow: ms("slow_ms", 5000)?,
    };
    Ok(Router::new()
        .route("/v1/create_order", post(create_order))
        .route("/v1/query_order", post(query_order))
        .route("/v1/refund_order", post(refund_order))
        .route("/_replica/state", get(state))
        .with_state(Arc::new(replica)))
}

type Answer = Json<Value>;

fn refuse(msg: &str) -> Answer {
    Json(json!({"retCode": "FAIL", "retMsg": msg}))
}

impl Replica {
    fn signed(&self, mut answer: Map<String, Value>) -> Answer {
        let sign = iotpay_sign(&answer, &self.response_key);
        answer.insert("sign".into(), Value::String(sign));
        Json(Value::Object(answer))
    }

    /// The `params` of a form body, signature checked.
    fn params(&self, body: &[u8]) -> Result<Map<String, Value>, Answer> {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
        };
        let raw = std::str::from_utf8(body)
            .ok()
            .and_then(|text| {
                text.split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| decode(k).is_ok_and(|k| k == "params"))
            })
            .and_then(|(_, v)| decode(v).ok());
        let Some(Ok(Value::Object(p))) = raw.map(|r| serde_json::from_str::<Value>(&r)) else {
            return Err(refuse("params is missing or not a JSON object"));
        };
        Ok(p)
    }

    fn verify(&self, p: &Map<String, Value>) -> Result<(), Answer> {
        iotpay_verify(p, &self.key).map_err(|_| refuse("sign error"))
    }

    /// Counts one money-moving call for `id`.
    fn count(&self, id: &str) {
        self.store
            .update(|s| *s.calls.entry(id.to_owned()).or_default() += 1);
    }
}

fn text<'a>(p: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn amount(p: &Map<String, Value>, k: &str) -> Option<u64> {
    let v = p.get(k)?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .filter(|a| *a > 0)
}

/// A business number of at most 30 characters.
fn number<'a>(p: &'a Map<String, Value>, k: &str) -> Result<&'a str, Answer> {
    text(p, k)
        .filter(|s| s.len() <= 30)
        .ok_or_else(|| refuse(&format!("{k} is required (at most 30 characters)")))
}

fn order_json(no: &str, o: &Order) -> Value {
    json!({"payOrderId": o.pay_order_id, "mchOrderNo": no, "status": o.status,
           "amount": o.amount, "currency": o.currency, "extra": o.extra})
}

async fn create_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    let p = match r.params(&body) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let no = match number(&p, "mchOrderNo") {
        Ok(no) => no.to_owned(),
        Err(a) => return a,
    };
    r.count(&no);
    if let Err(a) = r.verify(&p) {
        return a;
    }
    for k in [
        "mchId",
        "channelId",
        "currency",
        "clientIp",
        "notifyUrl",
        "subject",
        "body",
        "extra",
        "jobNo",
    ] {
        if text(&p, k).is_none() {
            return refuse(&format!("{k} is required"));
        }
    }
    let Some(amount) = amount(&p, "amount") else {
        return refuse("amount must be a positive number of cents");
    };
    let created = r.store.update(|s| {
        if s.orders.contains_key(&no) {
            return None;
        }
        s.next_id += 1;
        let order = Order {
            pay_order_id: format!("IOT{:012}", s.next_id),
            amount,
            currency: text(&p, "currency").unwrap_or_default().to_owned(),
            status: 1,
            extra: String::new(),
            refunded: 0,
        };
        s.orders.insert(no.clone(), order.clone());
        Some(order)
    });
    let Some(order) = created else {
        return refuse("duplicate mchOrderNo");
    };
    let wait = if amount % 100 == 93 {
        r.slow
    } else {
        r.terminal
    };
    // The terminal finishes even if the caller hangs up or times out.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = r.clone();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let (status, extra) = if amount % 100 == 51 {
            (
                4,
                json!({"receiptDisp": "DECLINED BY ISSUER", "trxCode": "DECLINE"}),
            )
        } else {
            let seq: u64 = order.pay_order_id[3..].parse().unwrap_or(0);
            let auth = format!("{:06}", (seq * 7919) % 1_000_000);
            (
                2,
                json!({"cardType": "VISA", "cardNum": "************1111", "authNum": auth,
                       "receiptDisp": "APPROVED", "trxCode": "SALE"}),
            )
        };
        let done = task.store.update(|s| {
            let o = s.orders.get_mut(&no).expect("created above");
            o.status = status;
            o.extra = extra.to_string();
            order_json(&no, o)
        });
        let _ = tx.send(done);
    });
    let Ok(order) = rx.await else {
        return refuse("terminal failure");
    };
    let paid = order["status"] == 2;
    let mut answer = Map::new();
    answer.insert("retCode".into(), json!("SUCCESS"));
    answer.insert(
        "resCode".into(),
        json!(if paid { "SUCCESS" } else { "FAIL" }),
    );
    if !paid {
        answer.insert("errDes".into(), json!("DECLINED BY ISSUER"));
    }
    answer.insert("payOrder".into(), order);
    r.signed(answer)
}

async fn query_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    let p = match r.params(&body).and_then(|p| r.verify(&p).map(|()| p)) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let found = r.store.read(|s| {
        if let Some(no) = text(&p, "mchOrderNo") {
            return s.orders.get(no).map(|o| order_json(no, o));
        }
        let id = text(&p, "payOrderId")?;
        s.orders
            .iter()
            .find(|(_, o)| o.pay_order_id == id)
            .map(|(no, o)| order_json(no, o))
    });
    let mut answer = Map::new();
    answer.insert("retCode".into(), json!("SUCCESS"));
    match found {
        Some(order) => {
            answer.insert("resCode".into(), json!("SUCCESS"));
            answer.insert("payOrder".into(), order);
        }
        None => {
            answer.insert("resCode".into(), json!("FAIL"));
            answer.insert("errCode".into(), json!("ORDER_NOT_EXIST"));
            answer.insert("errDes".into(), json!("order not exist"));
        }
    }
    r.signed(answer)
}

async fn refund_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    let p = match r.params(&body) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let no = match number(&p, "mchRefundNo") {
        Ok(no) => no.to_owned(),
        Err(a) => return a,
    };
    r.count(&no);
    if let Err(a) = r.verify(&p) {
        return a;
    }
    for k in ["mchId", "payOrderId", "clientIp", "loginName"] {
        if text(&p, k).is_none() {
            return refuse(&format!("{k} is required"));
        }
    }
    let Some(amount) = amount(&p, "refundAmount") else {
        return refuse("refundAmount must be a positive number of cents");
    };
    let pay_order_id = text(&p, "payOrderId").unwrap_or_default().to_owned();
    let answer = r.store.update(|s| {
        if let Some(done) = s.refunds.get(&no) {
            // The same refund again: the first answer, nothing moves.
            return (done.pay_order_id == pay_order_id && done.amount == amount)
                .then(|| done.answer.clone());
        }
        let mut answer = Map::new();
        answer.insert("retCode".into(), json!("SUCCESS"));
        let order = s
            .orders
            .values_mut()
            .find(|o| o.pay_order_id == pay_order_id);
        let refused = match order {
            None => Some("pay order not exist"),
            Some(o) if !matches!(o.status, 2 | 3) => Some("pay order is not paid"),
            Some(o) if amount > o.amount - o.refunded => {
                Some("refund amount exceeds the amount left")
            }
            Some(_) if amount % 100 == 51 => Some("REFUND DECLINED"),
            Some(o) => {
                o.refunded += amount;
                None
            }
        };
        match refused {
            Some(why) => {
                answer.insert("resCode".into(), json!("FAIL"));
                answer.insert("errDes".into(), json!(why));
            }
            None => {
                s.next_id += 1;
                answer.insert("resCode".into(), json!("SUCCESS"));
                answer.insert(
                    "refundOrder".into(),
                    json!({"refundOrderId": format!("RF{:012}", s.next_id), "mchRefundNo": no,
                           "payOrderId": pay_order_id, "refundAmount": amount, "status": 2}),
                );
            }
        }
        let refund = Refund {
            pay_order_id: pay_order_id.clone(),
            amount,
            answer: answer.clone(),
        };
        s.refunds.insert(no.clone(), refund);
        Some(answer)
    });
    match answer {
        Some(a) => r.signed(a),
        None => refuse("mchRefundNo was already used for another refund"),
    }
}

async fn state(State(r): State<Arc<Replica>>) -> Json<Value> {
    Json(
        r.store
            .read(|s| serde_json::to_value(s).unwrap_or_default()),
    )
}
