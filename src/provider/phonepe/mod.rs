//! The PhonePe provider: offline "single suite" API for EDC card terminals and DQR displays.
//!
//! pay = init (`POST /v1/payment/init`), then status checks on PhonePe's schedule until the
//! customer has paid, failed or let it expire; refund = `backToSource`, then status checks on
//! the refund's id; cancel = `PUT .../cancel` of the pay, before the customer pays. Every call
//! is signed with `X-VERIFY` (`provider::sign`) over the API path without the base URL's own
//! prefix, with the document's `accept: application/json`. A money-moving call is sent at
//! most once: any doubt after sending (timeout, reset, 5xx, garbage, a code we do not know) is
//! settled with the status call, never a resend. A DUPLICATE_TRANSACTION_ID answer is never
//! taken as this operation's answer: the status of our own id decides, else the outcome is
//! unknown. Which id the status call names is one rule (`wire::status_id`), for the request's
//! own checks and the reconciler's alike. Evidence (`follow.rs`): an answer that shows the
//! transaction exists is journaled before it is acted on, and after it "not found" never means
//! "nothing was charged" (the engine keeps it unknown). Without evidence "not found" is
//! believed only once the sale request could no longer come alive at PhonePe
//! ([`PhonePe::not_found_is_final`]), counted on the monotonic clock (`clock::SendTimes`),
//! never from `created_at`: the wall clock may step. Only INR is taken; anything else is
//! refused unsent.
//! This module must not log or return the salt key, and passes card data only masked.

/// Public for the fuzz targets (fuzz/): the answer parser the provider itself uses.
pub mod answer;
mod cancel;
mod codes;
mod follow;
mod wire;

pub use wire::map_order_id;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::common::{self, Common};
use super::http::{Http, HttpError, Reply};
use super::{sign, Failure, OpKind, Operation, Outcome, Provider};
use crate::config::PhonePeConfig;
use crate::secret::Secret;
use wire::Ids;

/// PhonePe's published status schedule: first check 20 s after init, every 3 s for 30 s,
/// 6 s for 60 s, 10 s for 60 s, 30 s for 60 s, then every 60 s.
fn published_schedule() -> Vec<Duration> {
    let mut ms = vec![20_000];
    for (every, count) in [(3_000, 10), (6_000, 10), (10_000, 6), (30_000, 2)] {
        ms.extend(std::iter::repeat_n(every, count));
    }
    ms.push(60_000);
    ms.into_iter().map(Duration::from_millis).collect()
}

const DEFAULT_TIMEOUT_MS: u64 = 180_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 15_000;
/// After the handover window an EDC sale may still be at the terminal (PIN entry, issuer);
/// a QR simply expires.
const EDC_MARGIN: Duration = Duration::from_secs(120);
const DQR_MARGIN: Duration = Duration::from_secs(15);
/// How long a refund may stay pending (PhonePe: up to ~90 s) before we leave it to the
/// reconciler.
const REFUND_BOUND: Duration = Duration::from_secs(120);

/// The name in the API and the config (`[providers.phonepe]`).
pub const NAME: &str = "phonepe";

pub struct PhonePe {
    http: Http,
    salt_key: Secret,
    salt_index: u32,
    ids: Ids,
    provider_id: Option<String>,
    solution: String,
    common: Common,
    request_timeout: Duration,
    /// When each open operation's money-moving call was sent, step-proof (src/clock.rs).
    sent: crate::clock::SendTimes,
    /// Pays between status checks, by transaction id: a cancel PhonePe answered wakes the
    /// pay it named, which checks its status at once (`cancel.rs`).
    following: crate::provider::wake::Wakers,
}

/// What one status check found. Short-lived, one at a time: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Check {
    Final(Outcome),
    /// Not final yet; `true` when the answer showed the transaction (witnessed).
    Pending(bool),
    NotFound,
    Unclear(String),
}

impl PhonePe {
    pub fn new(cfg: &PhonePeConfig) -> anyhow::Result<PhonePe> {
        let salt_key = crate::secret::resolve(
            "providers.phonepe",
            "salt_key",
            cfg.salt_key.as_ref(),
            cfg.salt_key_file.as_deref(),
        )?;
        let request_timeout =
            Duration::from_millis(cfg.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS));
        let http = Http::new("PhonePe", &cfg.base_url, request_timeout)?;
        Ok(PhonePe {
            http,
            salt_key,
            salt_index: cfg.salt_index,
            ids: Ids {
                merchant_id: cfg.merchant_id.clone(),
                store_id: cfg.store_id.clone(),
                terminal_id: cfg.terminal_id.clone(),
            },
            provider_id: cfg.provider_id.clone(),
            solution: cfg.solution_type.clone(),
            common: Common::new(
                NAME,
                "INR",
                Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
                common::schedule(cfg.status_poll_ms.as_ref(), published_schedule),
            ),
            request_timeout,
            sent: crate::clock::SendTimes::new(),
            following: Default::default(),
        })
    }

    /// The path PhonePe signs for `api_path` as we call it under the base URL.
    fn signed_path<'a>(&self, full: &'a str) -> &'a str {
        sign::phonepe_signed_path(self.http.base_url(), full)
    }

    fn headers(&self, req: reqwest::RequestBuilder, x_verify: String) -> reqwest::RequestBuilder {
        // `accept` as the document's samples send it (001, the Python samples' headers).
        let req = req
            .header("Content-Type", "application/json")
            .header("accept", "application/json")
            .header("X-VERIFY", x_verify);
        match &self.provider_id {
            Some(p) => req.header("X-PROVIDER-ID", p),
            None => req,
        }
    }

    /// init / backToSource: `{"request": base64}`, signed over exactly that base64.
    async fn post_wrapped(&self, api_path: &str, payload: &Value) -> Result<Reply, HttpError> {
        let b64 = sign::phonepe_encode_request(payload);
        let full = format!("{}{api_path}", self.http.base_url());
        let x = sign::phonepe_x_verify(
            &b64,
            self.signed_path(&full),
            self.salt_key.expose(),
            self.salt_index,
        );
        let req = self.http.request(Method::POST, api_path);
        let body = json!({ "request": b64 }).to_string();
        self.http.send(self.headers(req, x).body(body)).await
    }

    /// status / cancel: signed over the path called.
    async fn call_path(&self, method: Method, api_path: &str) -> Result<Reply, HttpError> {
        let full = format!("{}{api_path}", self.http.base_url());
        let x = sign::phonepe_x_verify_path(
            self.signed_path(&full),
            self.salt_key.expose(),
            self.salt_index,
        );
        let req = self.http.request(method, api_path);
        self.http.send(self.headers(req, x)).await
    }

    /// How long after its intent an operation's request may still come alive at PhonePe: a
    /// request we gave up on may take as long again inside PhonePe (twice the request timeout),
    /// then a pay's sale request lives for its handover/expiry window (`wire::window`, as sent);
    /// the first status interval (PhonePe's own 20 s by default) is the margin on top.
    fn alive_for(&self, op: &Operation) -> Duration {
        let window = match op.kind {
            OpKind::Pay => wire::window(&self.solution, op).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        self.request_timeout * 2 + window + self.common.schedule[0]
    }

    /// "Not found" is final (nothing charged) only once [`Self::alive_for`] has passed since
    /// the request was sent; before that it is unknown and the checks go on. "Since" is
    /// monotonic: measured from the send in this process, or after a restart from this
    /// process's start (later than the send). `created_at` is not used: a wall clock stepped
    /// forward (NTP setting a counter that booted at 1970) would end the window at once.
    fn not_found_is_final(&self, op: &Operation) -> bool {
        self.sent.at_least(&op.request_id) >= self.alive_for(op)
    }

    /// PhonePe has no record of it and the request can no longer come alive. What the engine
    /// makes of it: "never received, nothing charged" only when nothing ever showed the
    /// transaction exists; after evidence, an unknown outcome (`contradiction`).
    fn not_processed() -> Outcome {
        Outcome::NotFound(Failure::new(
            "not_processed",
            "PhonePe never received this request: nothing was charged. \
             Start again with a new request_id.",
        ))
    }

    fn bound(&self, started: Instant, window: Duration) -> Instant {
        // Stop a little before the engine's limit, so the answer says what we last saw.
        let limit = (self.common.timeout).saturating_sub(self.common.timeout / 20);
        started + limit.min(window)
    }

    async fn pay(&self, op: &Operation) -> Outcome {
        let started = Instant::now();
        let req = match wire::pay_request(&self.ids, &self.solution, op) {
            Ok(r) => r,
            Err(msg) => return Outcome::Failed(Failure::new("invalid_request", msg)),
        };
        let margin = if self.solution == "DQR_DEVICE" {
            DQR_MARGIN
        } else {
            EDC_MARGIN
        };
        let bound = self.bound(started, req.window + margin);
        self.send_and_follow(op, wire::INIT_PATH, &req.payload, bound)
            .await
    }

    async fn refund(&self, op: &Operation) -> Outcome {
        let started = Instant::now();
        let payload = match wire::refund_payload(&self.ids, op) {
            Ok(p) => p,
            Err(msg) => return Outcome::Failed(Failure::new("invalid_request", msg)),
        };
        let bound = self.bound(started, REFUND_BOUND);
        self.send_and_follow(op, wire::REFUND_PATH, &payload, bound)
            .await
    }
}

#[async_trait]
impl Provider for PhonePe {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        let outcome = self.execute_once(op).await;
        self.settled(op, outcome)
    }

    async fn status(&self, op: &Operation) -> Outcome {
        let outcome = self.status_once(op).await;
        self.settled(op, outcome)
    }
}

impl PhonePe {
    /// Stops measuring an operation whose outcome is final.
    fn settled(&self, op: &Operation, outcome: Outcome) -> Outcome {
        if !matches!(outcome, Outcome::Unknown(_)) {
            self.sent.forget(&op.request_id);
        }
        outcome
    }

    async fn execute_once(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.pay(op).await,
            OpKind::Refund => self.refund(op).await,
            OpKind::Cancel => self.cancel(op).await,
            OpKind::CloseShift => Outcome::Failed(Failure::new(
                "not_supported",
                "PhonePe has no shift to close.",
            )),
        }
    }

    async fn status_once(&self, op: &Operation) -> Outcome {
        let id = match wire::status_id(&self.ids.terminal_id, op) {
            Ok(id) => id,
            Err(msg) => return Outcome::Failed(Failure::new("invalid_request", msg)),
        };
        if op.kind == OpKind::Cancel {
            return self.cancel_status(op, &id).await;
        }
        match self.check(op, &id).await {
            Check::Final(o) => o,
            Check::NotFound if self.not_found_is_final(op) => Self::not_processed(),
            Check::NotFound if op.progress.evidence().is_some() => Outcome::Unknown(Failure::new(
                "timeout",
                "PhonePe acknowledged this transaction, but its status does not find it yet",
            )),
            Check::NotFound => Outcome::Unknown(Failure::new(
                "timeout",
                "PhonePe does not know the request yet",
            )),
            Check::Pending(_) => {
                Outcome::Unknown(Failure::new("in_progress", "PhonePe still has it pending"))
            }
            Check::Unclear(why) => Outcome::Unknown(Failure::new("timeout", why)),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_rules;
