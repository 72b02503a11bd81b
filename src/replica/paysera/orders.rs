//! The replica's orders and transactions: "Creating and editing orders" (both body forms the
//! document shows), "Getting order", "Removing orders", and the transaction calls the document
//! names but leaves to the Wallet API (create, confirm, revoke). Orders answer in the
//! document's shape (`id`, `transaction_key`, `status` at the top level).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{
    id_of, invalid, invalid_state, not_found, now_ms, object, Order, PayseraState, Shared,
    Transaction,
};

const TRANSACTION_KEYS: &[&str] = &[
    "payments",
    "redirect_uri",
    "callback_uri",
    "auto_confirm",
    "reserve",
    "use_allowance",
    "suggest_allowance",
    "allowance",
];
const PAYMENT_KEYS: &[&str] = &[
    "description",
    "price",
    "currency",
    "parameters",
    "items",
    "beneficiary",
    "purpose",
    "cashback",
    "freeze",
];

/// A new transaction from its JSON object, or why not (naming the field).
fn new_transaction(t: &Map<String, Value>) -> Result<Transaction, Response> {
    if let Some(k) = t.keys().find(|k| !TRANSACTION_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!("unknown transaction field {k:?}")));
    }
    let Some(Value::Array(payments)) = t.get("payments") else {
        return Err(invalid("payments: a list of payments is required"));
    };
    if payments.is_empty() {
        return Err(invalid("payments: at least one payment is required"));
    }
    for (i, p) in payments.iter().enumerate() {
        let Value::Object(p) = p else {
            return Err(invalid(format!("payments[{i}]: must be an object")));
        };
        if let Some(k) = p.keys().find(|k| !PAYMENT_KEYS.contains(&k.as_str())) {
            return Err(invalid(format!("payments[{i}]: unknown field {k:?}")));
        }
        if p.get("price").and_then(Value::as_u64).unwrap_or(0) == 0 {
            return Err(invalid(format!(
                "payments[{i}].price: a positive integer (cents) is required"
            )));
        }
        let currency_ok = p
            .get("currency")
            .and_then(Value::as_str)
            .is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
        if !currency_ok {
            return Err(invalid(format!(
                "payments[{i}].currency: an ISO 4217 code is required"
            )));
        }
        if p.get("description").is_some_and(|d| !d.is_string()) {
            return Err(invalid(format!("payments[{i}].description: must be text")));
        }
        if p.get("parameters").is_some_and(|d| !d.is_object()) {
            return Err(invalid(format!(
                "payments[{i}].parameters: must be an object"
            )));
        }
    }
    Ok(Transaction {
        key: uuid::Uuid::new_v4().simple().to_string(),
        status: "new".into(),
        payments: payments.clone(),
        order: None,
        order_creates: 0,
        confirms: 0,
        revokes: 0,
    })
}

fn transaction_json(t: &Transaction) -> Value {
    json!({"transaction_key": t.key, "status": t.status, "payments": t.payments})
}

/// What an order body carries: exactly one of the document's two forms.
enum Carried {
    Key(String),
    Inline(Transaction),
}

fn carried(body: &[u8]) -> Result<Carried, Response> {
    let body = object(body)?;
    if let Some(k) = body
        .keys()
        .find(|k| !["transaction_key", "transaction"].contains(&k.as_str()))
    {
        return Err(invalid(format!("unknown order field {k:?}")));
    }
    match (body.get("transaction_key"), body.get("transaction")) {
        (Some(Value::String(k)), None) if !k.is_empty() => Ok(Carried::Key(k.clone())),
        (Some(_), None) => Err(invalid("transaction_key: must be a non-empty string")),
        (None, Some(Value::Object(t))) => Ok(Carried::Inline(new_transaction(t)?)),
        (None, Some(_)) => Err(invalid("transaction: must be an object")),
        (Some(_), Some(_)) => Err(invalid("give transaction_key or transaction, not both")),
        (None, None) => Err(invalid("transaction_key or transaction is required")),
    }
}

/// Puts the carried transaction on order `order`; its key, or why not.
fn attach(s: &mut PayseraState, c: Carried, order: u64) -> Result<String, Response> {
    let key = match c {
        Carried::Key(k) => k,
        Carried::Inline(t) => {
            let k = t.key.clone();
            s.transactions.insert(k.clone(), t);
            k
        }
    };
    let Some(t) = s.transactions.get_mut(&key) else {
        return Err(not_found("transaction"));
    };
    if let Some(other) = t.order.filter(|o| *o != order) {
        return Err(invalid_state(format!(
            "transaction {key} already belongs to order {other}"
        )));
    }
    if t.status != "new" {
        return Err(invalid_state(format!("transaction {key} is {}", t.status)));
    }
    t.order = Some(order);
    t.order_creates += 1;
    Ok(key)
}

pub async fn create(State(r): Shared, Path(spot): Path<String>, body: Bytes) -> Response {
    let spot = match id_of(&spot, "spot") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let c = match carried(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let id = s.next_order + 1;
        let key = match attach(s, c, id) {
            Ok(k) => k,
            Err(resp) => return resp,
        };
        s.next_order = id;
        let order = Order {
            id,
            spot_id: spot,
            status: "pending".into(),
            transaction_key: key,
            created_ms: now_ms(),
            closed_ms: None,
        };
        s.orders.insert(id, order.clone());
        let sp = r.spot_mut(s, spot);
        sp.orders.push(id);
        sp.status = "open".into();
        Json(order.json()).into_response()
    })
}

/// `PUT /rest/v1/order/{id}`: a pending order gets another transaction.
pub async fn edit(State(r): Shared, Path(id): Path<String>, body: Bytes) -> Response {
    let id = match id_of(&id, "order") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let c = match carried(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let Some(order) = s.orders.get(&id).cloned() else {
            return not_found("order");
        };
        if order.status != "pending" {
            return invalid_state(format!("order {id} is {}", order.status));
        }
        let key = match attach(s, c, id) {
            Ok(k) => k,
            Err(resp) => return resp,
        };
        if key != order.transaction_key {
            if let Some(old) = s.transactions.get_mut(&order.transaction_key) {
                old.order = None;
            }
        }
        let o = s.orders.get_mut(&id).expect("read above");
        o.transaction_key = key;
        Json(o.json()).into_response()
    })
}

pub async fn read(State(r): Shared, Path(id): Path<String>) -> Response {
    let id = match id_of(&id, "order") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    r.update(|s| match s.orders.get(&id) {
        Some(o) => Json(o.json()).into_response(),
        None => not_found("order"),
    })
}

/// `DELETE /rest/v1/order/{id}`: a pending order is closed and leaves its spot.
pub async fn remove(State(r): Shared, Path(id): Path<String>) -> Response {
    let id = match id_of(&id, "order") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let Some(o) = s.orders.get_mut(&id) else {
            return not_found("order");
        };
        if o.status != "pending" {
            return invalid_state(format!("order {id} is {}", o.status));
        }
        o.close();
        let (spot, json) = (o.spot_id, o.json());
        if let Some(sp) = s.spots.get_mut(&spot) {
            sp.orders.retain(|x| *x != id);
        }
        Json(json).into_response()
    })
}

pub async fn create_transaction(State(r): Shared, body: Bytes) -> Response {
    let t = match object(&body).and_then(|b| new_transaction(&b)) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let json = transaction_json(&t);
        s.transactions.insert(t.key.clone(), t);
        Json(json).into_response()
    })
}

/// Sets the transaction's order (if any) to `status`.
fn set_order(s: &mut PayseraState, order: Option<u64>, status: &str) {
    if let Some(o) = order.and_then(|o| s.orders.get_mut(&o)) {
        match status {
            "closed" => o.close(),
            _ => o.status = status.into(),
        }
    }
}

pub async fn confirm(State(r): Shared, Path(key): Path<String>) -> Response {
    r.update(|s| {
        let Some(t) = s.transactions.get_mut(&key) else {
            return not_found("transaction");
        };
        t.confirms += 1;
        if t.status != "reserved" {
            return invalid_state(format!("transaction {key} is {}", t.status));
        }
        t.status = "confirmed".into();
        let (order, json) = (t.order, transaction_json(t));
        set_order(s, order, "confirmed");
        Json(json).into_response()
    })
}

/// `GET /rest/v1/transaction/{key}`: the transaction and its status (new, reserved,
/// confirmed, revoked, rejected). Reads only.
pub async fn read_transaction(State(r): Shared, Path(key): Path<String>) -> Response {
    r.update(|s| match s.transactions.get(&key) {
        Some(t) => Json(transaction_json(t)).into_response(),
        None => not_found("transaction"),
    })
}

/// Revoke: a transaction not confirmed can never be paid afterwards; its order closes.
pub async fn revoke(State(r): Shared, Path(key): Path<String>) -> Response {
    r.update(|s| {
        let Some(t) = s.transactions.get_mut(&key) else {
            return not_found("transaction");
        };
        t.revokes += 1;
        match t.status.as_str() {
            "new" | "reserved" => t.status = "revoked".into(),
            "revoked" | "rejected" => {}
            other => return invalid_state(format!("transaction {key} is {other}")),
        }
        let (order, json) = (t.order, transaction_json(t));
        // An order already closed keeps the moment it closed.
        if s.orders
            .get(&order.unwrap_or(0))
            .is_some_and(|o| o.status != "confirmed" && o.status != "closed")
        {
            set_order(s, order, "closed");
        }
        Json(json).into_response()
    })
}
