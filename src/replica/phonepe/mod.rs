//! Loopback replica of PhonePe's offline API (UAT-like paths, at the root and under
//! `/enterprise-sandbox`): init as the init document (seeds/001_206d3d9ac737255e.txt) has it,
//! and status, cancel, backToSource as shared/providers.md has them (the document does not
//! cover those). Every call is `X-VERIFY`-checked by the replica's own code written from the
//! document (`verify.rs`, not the client's), over the path without the
//! `/enterprise-sandbox` prefix, and answered UNAUTHORIZED "checksum verification failed" when
//! it does not match. An init is checked field by field (`checks.rs`: types, characters,
//! mandatory fields, every documented refusal code); a merchantTransactionId seen before is
//! answered DUPLICATE_TRANSACTION_ID. State (`ledger.rs`) lives in the `--state` file and is
//! shown at `GET /_replica/state`. Test equipment only: it must never face real money.
//!
//! Options (`--option K=V`): `pay_after_ms` (300) the customer pays this long after init;
//! `refund_after_ms` (300) a refund stays pending this long; `init_delay_ms` (0) PhonePe takes
//! this long to act on an init, and acts even if the caller hung up; `salt_index` (1);
//! `solutions` (`EDC,DQR_DEVICE`) the solution types enabled, others get SOLUTION_NOT_ENABLED;
//! `not_integrated` (none) comma-separated terminal ids not in integrated mode;
//! `status_amount` (`zero`) what a status answer's `data.amount` says: `zero` as PhonePe's
//! public samples show, or `real`; `duplicate` (`none`) every init is answered
//! DUPLICATE_TRANSACTION_ID, `after` acting on it first, `before` without acting;
//! `not_found_code` (`TRANSACTION_NOT_FOUND`) the status code for an unknown id (or
//! `INVALID_TRANSACTION_ID`); `init_refusal` (none) every valid init is refused with this code
//! (one of the document's), without acting, as PhonePe would for a merchant whose setup says so;
//! `status_blind` (`off`) the status call does not find payments it acknowledged, for N checks
//! (after `status_blind_after` checks that find it, 0) or until
//! `POST /_replica/status_blind {"blind": false}` (`blind.rs`). Replica's own
//! choices where the documents are silent: a cancel of
//! a FAILED or EXPIRED payment answers TRANSACTION_ALREADY_CLOSED; see also `checks.rs`.

mod blind;
mod checks;
mod ledger;
mod verify;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use serde_json::{json, Value};

use super::{Options, Store};
use crate::secret::Secret;
use checks::{answer, bad, check_init, check_refund, text, txn_id_of, unauthorized, valid_txn_id};
use checks::{Refusal, Setup};
use ledger::{now_ms, Kind, Ledger, Txn};

struct Replica {
    store: Store<Ledger>,
    salt: Secret,
    salt_index: u32,
    pay_after_ms: u64,
    refund_after_ms: u64,
    init_delay_ms: u64,
    solutions: Vec<String>,
    not_integrated: Vec<String>,
    real_amount: bool,
    duplicate: Duplicate,
    not_found_code: &'static str,
    init_refusal: Option<String>,
    blind: blind::Blind,
}

/// The `duplicate` option: answer every init DUPLICATE_TRANSACTION_ID, after or without acting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duplicate {
    None,
    After,
    Before,
}

fn list(opts: &Options, key: &str, default: &str) -> anyhow::Result<Vec<String>> {
    Ok(option(opts, key, default.to_owned())?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

type Shared = Arc<Replica>;

fn option<T: std::str::FromStr>(opts: &Options, key: &str, default: T) -> anyhow::Result<T> {
    match opts.options.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("--option {key}={v}: not a valid value")),
    }
}

pub fn router(opts: &Options) -> anyhow::Result<Router> {
    let salt = opts
        .secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the phonepe replica needs the salt key (--secret)"))?;
    let shared = Arc::new(Replica {
        store: Store::open(opts.state.clone())?,
        salt,
        salt_index: option(opts, "salt_index", 1)?,
        pay_after_ms: option(opts, "pay_after_ms", 300)?,
        refund_after_ms: option(opts, "refund_after_ms", 300)?,
        init_delay_ms: option(opts, "init_delay_ms", 0)?,
        solutions: list(opts, "solutions", "EDC,DQR_DEVICE")?,
        not_integrated: list(opts, "not_integrated", "")?,
        real_amount: match option(opts, "status_amount", "zero".to_owned())?.as_str() {
            "zero" => false,
            "real" => true,
            v => anyhow::bail!("--option status_amount={v}: zero or real"),
        },
        duplicate: match option(opts, "duplicate", "none".to_owned())?.as_str() {
            "none" => Duplicate::None,
            "after" => Duplicate::After,
            "before" => Duplicate::Before,
            v => anyhow::bail!("--option duplicate={v}: none, after or before"),
        },
        not_found_code: match option(opts, "not_found_code", String::new())?.as_str() {
            "" | "TRANSACTION_NOT_FOUND" => "TRANSACTION_NOT_FOUND",
            "INVALID_TRANSACTION_ID" => "INVALID_TRANSACTION_ID",
            v => anyhow::bail!(
                "--option not_found_code={v}: TRANSACTION_NOT_FOUND or INVALID_TRANSACTION_ID"
            ),
        },
        init_refusal: opts.options.get("init_refusal").cloned(),
        blind: blind::Blind::from_options(opts)?,
    });
    let api: Router = Router::new()
        .route("/v1/payment/init", post(init))
        .route("/v1/payment/{merchant}/{txn}/status", get(status))
        .route("/v1/payment/{merchant}/{txn}/cancel", put(cancel))
        .route("/v3/credit/backToSource", post(refund))
        .with_state(shared.clone());
    let control = Router::new()
        .route("/_replica/state", get(dump))
        .route("/_replica/status_blind", post(blind::switch))
        .with_state(shared);
    Ok(api.clone().nest("/enterprise-sandbox", api).merge(control))
}

impl Replica {
    /// Checks `X-VERIFY` = sha256(parts... + salt) + "###" + salt_index.
    fn verified(&self, headers: &HeaderMap, body_b64: Option<&str>, path: &str) -> bool {
        let got = headers
            .get("x-verify")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let parts: &[&str] = match body_b64 {
            Some(b) => &[b, path],
            None => &[path],
        };
        verify::x_verify_ok(got, parts, self.salt.expose(), self.salt_index)
    }

    /// The base64 `request` of a body, checked and decoded, or the answer refusing it.
    fn unwrap_request(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Result<Value, Refusal> {
        let b64 = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("request")?.as_str().map(str::to_owned))
            .ok_or_else(|| bad("BAD_REQUEST", "body must be {\"request\": \"<base64>\"}"))?;
        if !self.verified(headers, Some(&b64), uri.path()) {
            return Err(unauthorized());
        }
        let payload: Value = B64
            .decode(&b64)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .filter(Value::is_object)
            .ok_or_else(|| bad("BAD_REQUEST", "request is not base64 of a JSON object"))?;
        Ok(payload)
    }
}

async fn init(
    State(r): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    if r.init_delay_ms == 0 {
        return act_on_init(&r, &headers, &uri, &body);
    }
    // Its own task: like a real backend, PhonePe finishes the work even if the caller has
    // hung up (the fault layer's `slow` is cancelled with the connection, this is not).
    let task = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(r.init_delay_ms)).await;
        act_on_init(&r, &headers, &uri, &body)
    });
    task.await
        .unwrap_or_else(|_| bad("INTERNAL_SERVER_ERROR", "replica task failed").into_response())
}

fn act_on_init(r: &Replica, headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Response {
    let p = match r.unwrap_request(headers, uri, body) {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    let id = txn_id_of(&p).to_owned();
    if valid_txn_id(&id) {
        r.store
            .update(|l| *l.calls.entry(id.clone()).or_default() += 1);
    }
    let setup = Setup {
        solutions: &r.solutions,
        not_integrated: &r.not_integrated,
    };
    let window_ms = match check_init(&setup, &p) {
        Ok(w) => w,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(code) = &r.init_refusal {
        return answer(
            StatusCode::OK,
            false,
            code,
            "refused by --option init_refusal",
            Value::Null,
        );
    }
    let now = now_ms();
    let amount = p["amount"].as_u64().unwrap_or(0);
    let merchant = text(&p, "merchantId").to_owned();
    let provider_id = headers
        .get("x-provider-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let created = r.duplicate != Duplicate::Before
        && r.store.update(|l| {
            if l.transactions.contains_key(&id) {
                return false;
            }
            let mut t = Txn::new(Kind::Payment, &merchant, &id, amount, now);
            t.settle_at_ms = now + r.pay_after_ms;
            t.expires_at_ms = now + window_ms;
            t.provider_id = provider_id;
            t.payload = p.clone();
            l.transactions.insert(id.clone(), t);
            true
        });
    if !created || r.duplicate != Duplicate::None {
        // The document's answer, word for word (no data).
        return answer(
            StatusCode::OK,
            false,
            "DUPLICATE_TRANSACTION_ID",
            "The transaction id you have entered seems to be invalid. \
             [message = Duplicate transaction id]",
            Value::Null,
        );
    }
    answer(
        StatusCode::OK,
        true,
        "SUCCESS",
        "Your request has been successfully completed.",
        json!({"merchantId": merchant, "transactionId": id, "amount": amount}),
    )
}

async fn status(
    State(r): State<Shared>,
    Path((merchant, txn)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !r.verified(&headers, None, uri.path()) {
        return unauthorized().into_response();
    }
    let now = now_ms();
    let found = r.store.update(|l| {
        let id = l.find(&txn)?;
        if r.blind.hides(l, &id) {
            return None;
        }
        let t = l.transactions.get_mut(&id)?;
        t.advance(&id, now);
        (t.merchant_id == merchant)
            .then(|| (t.status.clone(), t.code.clone(), t.data(&id, r.real_amount)))
    });
    match found {
        None => answer(
            StatusCode::OK,
            false,
            r.not_found_code,
            "No transaction found with this id",
            Value::Null,
        ),
        Some((status, code, data)) => answer(
            StatusCode::OK,
            status == "SUCCESS",
            &code,
            &format!("Transaction {status}"),
            data,
        ),
    }
}

async fn cancel(
    State(r): State<Shared>,
    Path((merchant, txn)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !r.verified(&headers, None, uri.path()) {
        return unauthorized().into_response();
    }
    let now = now_ms();
    let result = r.store.update(|l| {
        *l.cancels.entry(txn.clone()).or_default() += 1;
        let t = l
            .transactions
            .get_mut(&txn)
            .filter(|t| t.merchant_id == merchant)?;
        t.advance(&txn, now);
        Some(match t.status.as_str() {
            "PENDING" => {
                t.status = "FAILED".into();
                t.code = "PAYMENT_CANCELLED".into();
                "SUCCESS"
            }
            "SUCCESS" => "PAYMENT_ALREADY_COMPLETED",
            _ => "TRANSACTION_ALREADY_CLOSED",
        })
    });
    match result {
        None => answer(
            StatusCode::OK,
            false,
            "TRANSACTION_NOT_FOUND",
            "No transaction found with this id",
            Value::Null,
        ),
        Some("SUCCESS") => answer(
            StatusCode::OK,
            true,
            "SUCCESS",
            "Payment request cancelled",
            json!({"merchantId": merchant, "transactionId": txn}),
        ),
        Some(code) => answer(
            StatusCode::OK,
            false,
            code,
            "The payment cannot be cancelled",
            Value::Null,
        ),
    }
}

async fn refund(
    State(r): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let p = match r.unwrap_request(&headers, &uri, &body) {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = check_refund(&p) {
        return refusal.into_response();
    }
    let id = text(&p, "transactionId").to_owned();
    let original = text(&p, "originalTransactionId").to_owned();
    let amount = p["amount"].as_u64().unwrap_or(0);
    let merchant = text(&p, "merchantId").to_owned();
    let now = now_ms();
    let refusal = r.store.update(|l| {
        *l.calls.entry(id.clone()).or_default() += 1;
        l.advance_all(now);
        if l.transactions.contains_key(&id) {
            return Some((
                "DUPLICATE_TRANSACTION_ID",
                "transactionId was already used".into(),
            ));
        }
        if let Some(why) = l.refund_refusal(&original, amount) {
            return Some(why);
        }
        let mut t = Txn::new(Kind::Refund, &merchant, &id, amount, now);
        t.settle_at_ms = now + r.refund_after_ms;
        t.original = Some(original.clone());
        t.payload = p.clone();
        l.transactions.insert(id.clone(), t);
        None
    });
    match refusal {
        Some((code, message)) => answer(StatusCode::OK, false, code, &message, Value::Null),
        None => answer(
            StatusCode::OK,
            true,
            "PAYMENT_PENDING",
            "Refund is being processed",
            json!({"merchantId": merchant, "transactionId": id, "amount": amount, "status": "PENDING"}),
        ),
    }
}

async fn dump(State(r): State<Shared>) -> Json<Value> {
    let now = now_ms();
    Json(r.store.update(|l| {
        l.advance_all(now);
        serde_json::to_value(&*l).unwrap_or_default()
    }))
}
