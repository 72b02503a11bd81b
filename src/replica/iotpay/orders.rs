//! The IOT Pay replica's calls: create_order runs the "terminal" and answers in the document's
//! result shape (top-level payOrderId / mchOrderNo / retParams / retDetail and the whole
//! payOrder), query_order answers the same payOrder, refund_order refunds. See `mod.rs` for
//! the test amounts and options.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{json, Map, Value};

use super::check::{self, int};
use super::{Answer, Order, Refund, Replica};

fn now_ms() -> u64 {
    crate::clock::unix_ms()
}

fn text<'a>(p: &'a Map<String, Value>, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// The card data a paid sale returns in `extra`: the document's example ("Useful card
/// transaction data returned in 'extra' field"), with this order's numbers.
fn paid_extra(seq: u64, cashback: &str, surcharge: &str) -> Value {
    json!({"cardType": "M", "cardNum": "XXXXXXXXXXXX1166", "expireDate": "1022",
        "emvLabel": "MASTERCARD", "emvAID": "A0000000041010", "emvTVR": "0000008000",
        "emvTSI": "0000", "emvTC": "ARQC: 3D36ACBD44BE512B", "termNum": "25957",
        "bankTermNum": "40880013", "termInvoiceNum": format!("{:06}", 724_000 + seq % 1000),
        "seqNum": format!("{:012}", 1_000_000 + seq), "authNum": format!("{:05}Z", (seq * 7919) % 100_000),
        "batchNum": "0008", "trxMethod": "T", "accountType": "",
        "receiptDisp": "000 Approved 00 Thank You", "cashbackAmount": cashback,
        "timeStamp": "20210120-19402057", "surchargeAmount": surcharge, "langCode": "E",
        "trxDate": "01202021", "trxTime": "164033", "cvmResults": "1F0302", "trxCode": "00"})
}

/// The document's status-9 example: the customer's card did not go through.
fn declined_extra() -> Value {
    json!({"cardType": " ", "cardNum": "", "expireDate": "    ", "emvLabel": "", "emvAID": "",
        "emvTVR": "", "emvTSI": "", "emvTC": "", "termNum": "25957", "bankTermNum": "40880013",
        "termInvoiceNum": "167339", "seqNum": "000000000000", "authNum": "", "batchNum": "0000",
        "trxMethod": "", "accountType": "", "receiptDisp": "Transaction Not Completed 05",
        "cashbackAmount": "", "timeStamp": "20210922-15231494", "surchargeAmount": "",
        "langCode": "E", "trxDate": "", "trxTime": "", "cvmResults": "", "trxCode": "00"})
}

/// payOrder as the document's result sample shows it.
fn pay_order(no: &str, o: &Order) -> Value {
    let r = &o.request;
    let paid = matches!(o.status, 2 | 3);
    json!({
        "userName": text(r, "jobNo"), "storeId": "replica01", "payOrderId": o.pay_order_id,
        "mchId": text(r, "mchId"), "mchOrderNo": no, "transId": "", "originalOrderId": "",
        "channelId": text(r, "channelId"), "currency": o.currency, "amount": o.amount,
        "tip": o.tip, "rate": 0, "payType": "pay", "refundable": if paid { 1 } else { 0 },
        "clientIp": text(r, "clientIp"), "deviceId": text(r, "device"), "deviceType": "",
        "notifyUrl": text(r, "notifyUrl"), "subject": text(r, "subject"), "body": text(r, "body"),
        "param1": "", "param2": "", "extra": o.extra, "channelOrderNo": "", "status": o.status,
        "remarks": text(r, "remarks"), "rateValue": 0,
        "trxAmount": if paid { o.amount + o.tip } else { 0 }, "costAmount": 0,
        "currencyAmount": 0, "paySuccTime": "", "createDate": o.created_ms,
        "updateDate": o.updated_ms
    })
}

/// The result shape of the document's sample around `order` (a JSON payOrder).
fn order_answer(res_code: &str, no: &str, order: Value) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("resCode".into(), json!(res_code));
    a.insert("retCode".into(), json!("SUCCESS"));
    a.insert("retParams".into(), json!(""));
    a.insert("payOrderId".into(), order["payOrderId"].clone());
    a.insert("mchOrderNo".into(), json!(no));
    a.insert("retDetail".into(), json!(""));
    a.insert("payOrder".into(), order);
    a
}

pub async fn create_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    let no = super::parse_form(&body).ok().and_then(|p| {
        p.get("mchOrderNo")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(no) = &no {
        r.count(no);
    }
    let p = match r.params(&body, check::CREATE_ORDER) {
        Ok(p) => p,
        Err(a) => return a,
    };
    if let Err(m) = check::create_rules(&p) {
        return r.refuse(&m);
    }
    let no = text(&p, "mchOrderNo").to_owned();
    let amount = p.get("amount").and_then(int).unwrap_or_default() as u64;
    if amount % 100 == 53 {
        // Refused before any order exists, in words that contain "used".
        return r.refuse("Transaction refused");
    }
    let mut request = p.clone();
    request.remove("sign");
    let created = r.store.update(|s| {
        if s.orders.contains_key(&no) {
            return None;
        }
        s.next_id += 1;
        let now = now_ms();
        let order = Order {
            pay_order_id: format!("CP{:026}", s.next_id),
            amount,
            tip: 0,
            currency: text(&p, "currency").to_owned(),
            // 0 "created", 1 "paying" (docs/providers.md).
            status: if amount % 100 == 62 { 0 } else { 1 },
            extra: String::new(),
            refunded: 0,
            created_ms: now,
            updated_ms: now,
            request,
        };
        s.orders.insert(no.clone(), order.clone());
        Some(order)
    });
    let Some(order) = created else {
        return r.refuse("mchOrderNo already exists");
    };
    let wait = if amount % 100 == 93 {
        r.slow
    } else {
        r.terminal
    };
    // The terminal finishes even if the caller hangs up or times out.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = r.clone();
    let task_no = no.clone();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let seq: u64 = order.pay_order_id[2..].parse().unwrap_or(0);
        let (status, tip, extra) = match amount % 100 {
            51 => (9, 0, declined_extra()),
            52 => (4, 0, json!({"receiptDisp": "POS terminal offline"})),
            62 => (9, 0, declined_extra()),
            71 => (2, 200, paid_extra(seq, "10.00", "0.50")),
            _ => (2, 0, paid_extra(seq, "", "")),
        };
        let done = task.store.update(|s| {
            let o = s.orders.get_mut(&task_no).expect("created above");
            o.status = status;
            o.tip = tip;
            o.extra = extra.to_string();
            o.updated_ms = now_ms();
            pay_order(&task_no, o)
        });
        let _ = tx.send(done);
    });
    if matches!(amount % 100, 61 | 62) {
        // The answer comes back before the terminal is done: the order as it stands now.
        let order = r.store.read(|s| pay_order(&no, &s.orders[&no]));
        return r.signed(order_answer("SUCCESS", &no, order));
    }
    let Ok(order) = rx.await else {
        return r.refuse("terminal failure");
    };
    if Replica::take(&r.resend_create) {
        return r.refuse("mchOrderNo already exists");
    }
    if Replica::take(&r.create_shapeless) {
        let mut a = Map::new();
        a.insert("retCode".into(), json!("SUCCESS"));
        a.insert("resCode".into(), json!("SUCCESS"));
        return r.signed(a);
    }
    if order["status"] == 4 {
        // "error occurs before sending request to the bank"
        let mut a = Map::new();
        a.insert("retCode".into(), json!("SUCCESS"));
        a.insert("resCode".into(), json!("FAIL"));
        a.insert("retMsg".into(), json!("POS terminal offline"));
        return r.signed(a);
    }
    // The document's result: both SUCCESS, for a paid sale (2) and for a decline (9) alike.
    r.signed(order_answer("SUCCESS", &no, order))
}

pub async fn query_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    let p = match r.params(&body, check::QUERY_ORDER) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let (no, id) = (text(&p, "mchOrderNo"), text(&p, "payOrderId"));
    if no.is_empty() && id.is_empty() {
        return r.refuse("mchOrderNo or payOrderId is required");
    }
    if Replica::take(&r.query_busy) {
        let mut a = Map::new();
        a.insert("retCode".into(), json!("SUCCESS"));
        a.insert("resCode".into(), json!("FAIL"));
        a.insert("retMsg".into(), json!("system busy, try again later"));
        return r.signed(a);
    }
    if Replica::take(&r.query_blind) {
        let mut a = Map::new();
        a.insert("retCode".into(), json!("SUCCESS"));
        a.insert("resCode".into(), json!("FAIL"));
        a.insert("retMsg".into(), json!("order does not exist"));
        return r.signed(a);
    }
    let found = r.store.read(|s| {
        if !no.is_empty() {
            return s.orders.get(no).map(|o| (no.to_owned(), pay_order(no, o)));
        }
        s.orders
            .iter()
            .find(|(_, o)| o.pay_order_id == id)
            .map(|(no, o)| (no.clone(), pay_order(no, o)))
    });
    match found {
        Some((_, Value::Object(order))) if Replica::take(&r.query_flat) => {
            let mut a = order;
            a.insert("retCode".into(), json!("SUCCESS"));
            a.insert("resCode".into(), json!("SUCCESS"));
            r.signed(a)
        }
        Some((no, order)) => r.signed(order_answer("SUCCESS", &no, order)),
        None => {
            let mut a = Map::new();
            a.insert("retCode".into(), json!("SUCCESS"));
            a.insert("resCode".into(), json!("FAIL"));
            a.insert("retMsg".into(), json!("order does not exist"));
            r.signed(a)
        }
    }
}

pub async fn refund_order(State(r): State<Arc<Replica>>, body: Bytes) -> Answer {
    if let Some(no) = super::parse_form(&body).ok().and_then(|p| {
        p.get("mchRefundNo")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        r.count(&no);
    }
    let p = match r.params(&body, check::REFUND_ORDER) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let no = text(&p, "mchRefundNo").to_owned();
    let pay_order_id = text(&p, "payOrderId").to_owned();
    let amount = p.get("refundAmount").and_then(int).unwrap_or_default() as u64;
    let outcome = r.store.update(|s| {
        let order = s
            .orders
            .values_mut()
            .find(|o| o.pay_order_id == pay_order_id);
        match order {
            None => Err("pay order does not exist"),
            Some(o) if !matches!(o.status, 2 | 3) => Err("pay order is not paid"),
            Some(o) if amount > o.amount + o.tip - o.refunded => {
                Err("refund amount exceeds the amount left")
            }
            Some(_) if amount % 100 == 51 => Err("REFUND DECLINED"),
            Some(o) => {
                o.refunded += amount;
                s.next_id += 1;
                let refund = Refund {
                    refund_order_id: format!("RF{:026}", s.next_id),
                    pay_order_id: pay_order_id.clone(),
                    amount,
                };
                s.refunds
                    .entry(no.clone())
                    .or_default()
                    .push(refund.clone());
                Ok(refund)
            }
        }
    });
    let mut a = Map::new();
    a.insert("retCode".into(), json!("SUCCESS"));
    match outcome {
        Err(why) => {
            a.insert("resCode".into(), json!("FAIL"));
            a.insert("retMsg".into(), json!(why));
        }
        Ok(refund) => {
            a.insert("resCode".into(), json!("SUCCESS"));
            a.insert(
                "refundOrder".into(),
                json!({"refundOrderId": refund.refund_order_id, "mchRefundNo": no,
                       "payOrderId": refund.pay_order_id, "refundAmount": refund.amount,
                       "status": 2}),
            );
        }
    }
    r.signed(a)
}
