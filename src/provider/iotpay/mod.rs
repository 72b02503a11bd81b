//! The `iotpay` provider: card sales on a PAX terminal driven from IOT Pay's cloud (channel
//! CC_PAX), and refunds. It owns the order of calls and what each answer means; the wire
//! format lives in `wire.rs`. It must never send create_order twice for one request_id (the
//! mchOrderNo is derived from it, and after a lost answer we only ask query_order), never call
//! an answer approved unless its signature verifies, and never log the key or a card number.
//!
//! Paths: every call is `POST {base_url}/<name>`, so `base_url = "https://api.iotpaycloud.com/v1/"`
//! gives `/v1/create_order`, `/v1/query_order` and `/v1/refund_order`.
//!
//! Timing: create_order answers only when the terminal is done, so it may take `timeout_ms`
//! (default 90 s). If its answer is lost, `execute` asks query_order on the status schedule
//! for up to `min(timeout_ms, 20 s)` more ([`Provider::timeout`] is the sum), then leaves the
//! rest to the reconciler. The default schedule is IOT Pay's advice: every 2 s for a minute,
//! then 5, 10, 30 and every 60 s.
//!
//! Refunds: IOT Pay documents no refund query, so a refund whose answer was lost is settled
//! as `providers.iotpay.refund_recheck` says (see `RefundRecheck`): by default it stays
//! unknown and the operator checks the IOT Pay portal, because re-sending refund_order is only
//! safe if IOT Pay deduplicates mchRefundNo, which we believe ("unique" in its documentation,
//! as in the gateways it is modelled on) but cannot prove.

mod wire;

pub use wire::{order_no, refund_no};

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;

use self::wire::{Merchant, NotRefunded, PayState, Problem};
use super::http::{Http, HttpError};
use super::{Failure, OpKind, Operation, Outcome, Provider};
use crate::config::{IotPayConfig, RefundRecheck};

const DEFAULT_TIMEOUT_MS: u64 = 90_000;
/// Longest wait for query_order and refund_order, which do not wait for a terminal.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time `execute` spends asking query_order after a lost create_order answer.
const MAX_CHECK_WINDOW: Duration = Duration::from_secs(20);
/// Kept free at the end of `timeout()` so `execute` answers before the engine gives up on it.
const MARGIN: Duration = Duration::from_millis(100);

pub struct IotPay {
    merchant: Merchant,
    currency: String,
    /// For create_order: waits for the customer at the terminal.
    terminal: Http,
    /// For query_order and refund_order.
    quick: Http,
    query_timeout: Duration,
    timeout: Duration,
    schedule: Vec<Duration>,
    /// How long after a sale began "no such order" still means "not visible yet" rather than
    /// "never created": the schedule's listed intervals, at most a minute (IOT Pay's advice
    /// is to keep querying for at least a minute).
    not_found_grace: Duration,
    refund_recheck: RefundRecheck,
}

impl IotPay {
    pub fn new(cfg: &IotPayConfig) -> anyhow::Result<IotPay> {
        let key = crate::secret::resolve(
            "providers.iotpay",
            "key",
            cfg.key.as_ref(),
            cfg.key_file.as_deref(),
        )?;
        let pay_timeout = Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        let query_timeout = pay_timeout.min(QUERY_TIMEOUT);
        let schedule = match &cfg.status_poll_ms {
            Some(list) => list.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            None => {
                let mut s = vec![Duration::from_secs(2); 30];
                s.extend([5, 10, 30, 60].map(Duration::from_secs));
                s
            }
        };
        Ok(IotPay {
            merchant: Merchant {
                mch_id: cfg.mch_id.clone(),
                job_no: cfg.job_no.clone(),
                channel_id: cfg.channel_id.clone(),
                key,
            },
            currency: cfg.currency.clone(),
            terminal: Http::new("IOT Pay", &cfg.base_url, pay_timeout)?,
            quick: Http::new("IOT Pay", &cfg.base_url, query_timeout)?,
            query_timeout,
            timeout: pay_timeout + pay_timeout.min(MAX_CHECK_WINDOW),
            not_found_grace: schedule
                .iter()
                .sum::<Duration>()
                .min(Duration::from_secs(60)),
            schedule,
            refund_recheck: cfg.refund_recheck,
        })
    }

    async fn post(
        &self,
        http: &Http,
        call: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<u8>, HttpError> {
        let req = http
            .request(Method::POST, &format!("/{call}"))
            .form(&wire::form(params));
        Ok(http.send(req).await?.body)
    }

    async fn pay(&self, op: &Operation) -> Outcome {
        let started = Instant::now();
        let params = match wire::create_order(&self.merchant, op) {
            Ok(p) => p,
            Err(f) => return Outcome::Failed(f),
        };
        let id = op.request_id.as_str();
        let lost = match self.post(&self.terminal, "create_order", &params).await {
            Err(e @ HttpError::NotSent { .. }) => return e.into_outcome(),
            Err(e) => {
                log::warn!(request_id = id; "create_order: {e}; asking query_order");
                Failure::new(
                    "timeout",
                    format!("{e}. The outcome is being checked; ask again with get_result."),
                )
            }
            Ok(body) => match wire::check(&body, &self.merchant.key) {
                Ok(map) => match wire::pay_state(&map) {
                    PayState::Paid(a) => return Outcome::Approved(a),
                    PayState::Failed(f) => return Outcome::Failed(f),
                    PayState::NotFound | PayState::Pending(_) => {
                        log::warn!(request_id = id; "create_order answered without a final status; asking query_order");
                        pending_failure()
                    }
                },
                Err(Problem::Rejected(msg)) => return Outcome::Failed(rejected(&msg, "sale")),
                Err(p) => self.unverified(id, "create_order", &p),
            },
        };
        self.settle_in_time(op, started, lost).await
    }

    /// After a lost create_order answer: query_order on the schedule while `timeout()` allows.
    async fn settle_in_time(&self, op: &Operation, started: Instant, lost: Failure) -> Outcome {
        let deadline = started + self.timeout.saturating_sub(MARGIN);
        let mut attempt = 0;
        loop {
            let outcome = self.query(op).await;
            if !matches!(outcome, Outcome::Unknown(_)) {
                return outcome;
            }
            let wait = self.schedule[attempt.min(self.schedule.len() - 1)];
            attempt += 1;
            if Instant::now() + wait + self.query_timeout > deadline {
                return Outcome::Unknown(lost);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One query_order: the order's state, or Unknown. Never moves money.
    async fn query(&self, op: &Operation) -> Outcome {
        let id = op.request_id.as_str();
        let params = wire::query_order(&self.merchant, &wire::order_no(id));
        let body = match self.post(&self.quick, "query_order", &params).await {
            Ok(body) => body,
            // Even "not sent" says nothing about the order: it stays unknown.
            Err(e) => return Outcome::Unknown(Failure::new("provider_unavailable", e.to_string())),
        };
        match wire::check(&body, &self.merchant.key) {
            Ok(map) => match wire::pay_state(&map) {
                PayState::Paid(a) => Outcome::Approved(a),
                PayState::Failed(f) => Outcome::Failed(f),
                PayState::Pending(s) => Outcome::Unknown(Failure::new(
                    "in_progress",
                    format!("The sale is still running on the terminal ({s})."),
                )),
                PayState::NotFound => self.not_found(op),
            },
            Err(Problem::Rejected(msg)) if wire::is_not_found(&msg) => self.not_found(op),
            Err(Problem::Rejected(msg)) if wire::is_sign_error(&msg) => {
                log::warn!(request_id = id; "query_order refused our signature: check providers.iotpay.key and mch_id");
                Outcome::Unknown(Failure::new(
                    "unauthorized",
                    format!("IOT Pay refused the status check ({msg}): check the merchant key."),
                ))
            }
            Err(Problem::Rejected(msg)) => Outcome::Unknown(Failure::new(
                "provider_unavailable",
                format!("IOT Pay refused the status check: {msg}"),
            )),
            Err(p) => Outcome::Unknown(self.unverified(id, "query_order", &p)),
        }
    }

    async fn refund(&self, op: &Operation, recheck: bool) -> Outcome {
        let params = match wire::refund_order(&self.merchant, op) {
            Ok(p) => p,
            Err(f) => return Outcome::Failed(f),
        };
        let id = op.request_id.as_str();
        let body = match self.post(&self.quick, "refund_order", &params).await {
            Ok(body) => body,
            Err(e @ HttpError::NotSent { .. }) if !recheck => return e.into_outcome(),
            Err(e) => {
                log::warn!(request_id = id; "refund_order: {e}");
                return Outcome::Unknown(self.refund_unknown(op, &e.to_string()));
            }
        };
        match wire::check(&body, &self.merchant.key) {
            Ok(map) => match wire::refund_state(&map) {
                Ok(a) => Outcome::Approved(a),
                // A re-issue refused as a business matter may mean "already refunded under this
                // number": only the first answer is taken as a final refusal.
                Err(NotRefunded::Failed(f)) if !recheck => Outcome::Failed(f),
                Err(NotRefunded::Failed(f)) => {
                    Outcome::Unknown(self.refund_unknown(op, &f.message))
                }
                Err(NotRefunded::Pending(s)) => Outcome::Unknown(self.refund_unknown(op, &s)),
            },
            Err(Problem::Rejected(msg)) if !recheck => Outcome::Failed(rejected(&msg, "refund")),
            Err(Problem::Rejected(msg)) => Outcome::Unknown(self.refund_unknown(op, &msg)),
            Err(p) => {
                let f = self.unverified(id, "refund_order", &p);
                Outcome::Unknown(self.refund_unknown(op, &f.message))
            }
        }
    }

    fn refund_unknown(&self, op: &Operation, why: &str) -> Failure {
        let no = wire::refund_no(&op.request_id);
        match self.refund_recheck {
            RefundRecheck::Reissue => Failure::new(
                "timeout",
                format!("The refund's outcome is not known yet ({why}); it is being checked. Ask again with get_result."),
            ),
            RefundRecheck::Manual => Failure::new(
                "manual_check",
                format!("The refund's outcome is not known ({why}). IOT Pay has no refund status query: check refund {no} in the IOT Pay merchant portal before refunding again."),
            ),
        }
    }

    /// An answer that cannot be believed: never approved, checked again later.
    fn unverified(&self, id: &str, call: &str, p: &Problem) -> Failure {
        match p {
            Problem::Signature(e) => {
                log::warn!(request_id = id; "{call}: the answer's signature failed ({e}); its outcome is treated as unknown");
                Failure::new(
                    "bad_signature",
                    "IOT Pay's answer did not carry a valid signature, so it cannot be trusted; \
                     the outcome is being checked. Ask again with get_result.",
                )
            }
            _ => {
                log::warn!(request_id = id; "{call}: the answer was not IOT Pay's JSON; its outcome is treated as unknown");
                Failure::new(
                    "timeout",
                    "IOT Pay's answer was unreadable; the outcome is being checked. \
                     Ask again with get_result.",
                )
            }
        }
    }
}

fn pending_failure() -> Failure {
    Failure::new(
        "in_progress",
        "The sale has not finished on the terminal yet; ask again with get_result.",
    )
}

impl IotPay {
    /// "No such order": final only once an order created late would have shown up by now.
    fn not_found(&self, op: &Operation) -> Outcome {
        match crate::clock::since(&op.created_at) {
            Some(age) if age >= self.not_found_grace => Outcome::Failed(not_processed()),
            _ => Outcome::Unknown(Failure::new(
                "in_progress",
                "IOT Pay does not show the order yet; checking again.",
            )),
        }
    }
}

fn not_processed() -> Failure {
    Failure::new(
        "not_processed",
        "IOT Pay never received this sale: nothing was charged. \
         Start a new sale with a new request_id.",
    )
}

/// retCode FAIL on a money-moving call: the gateway refused it, nothing moved.
fn rejected(msg: &str, what: &str) -> Failure {
    if wire::is_sign_error(msg) {
        return Failure::new(
            "unauthorized",
            format!("IOT Pay refused the {what}: {msg}. Check providers.iotpay.key and mch_id. Nothing was charged."),
        );
    }
    Failure::new(
        "invalid_request",
        format!("IOT Pay refused the {what}: {msg}. Nothing was charged."),
    )
}

#[async_trait]
impl Provider for IotPay {
    fn name(&self) -> &'static str {
        "iotpay"
    }

    fn default_currency(&self) -> &str {
        &self.currency
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn status_schedule(&self) -> &[Duration] {
        &self.schedule
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.pay(op).await,
            OpKind::Refund => self.refund(op, false).await,
            OpKind::Cancel | OpKind::CloseShift => Outcome::Failed(Failure::new(
                "not_supported",
                format!("iotpay does not support {}.", op.kind.as_str()),
            )),
        }
    }

    async fn status(&self, op: &Operation) -> Outcome {
        match (op.kind, self.refund_recheck) {
            (OpKind::Pay, _) => self.query(op).await,
            // The one status check that sends a money-moving call. It relies on IOT Pay
            // treating the same mchRefundNo as the same refund: if the first refund_order never
            // arrived, this one carries the refund out, once; if it did, the answer repeats.
            (OpKind::Refund, RefundRecheck::Reissue) => {
                log::info!(request_id = op.request_id.as_str();
                    "re-sending refund_order with the same mchRefundNo (refund_recheck = reissue)");
                self.refund(op, true).await
            }
            (OpKind::Refund, RefundRecheck::Manual) => {
                Outcome::Unknown(self.refund_unknown(op, "its answer was lost"))
            }
            (OpKind::Cancel | OpKind::CloseShift, _) => Outcome::Failed(Failure::new(
                "not_processed",
                format!(
                    "iotpay does not support {}; nothing was done.",
                    op.kind.as_str()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(poll_ms: Vec<u64>) -> IotPay {
        let cfg: IotPayConfig = toml::from_str(&format!(
            "base_url = \"http://127.0.0.1:9\"\nmch_id = \"1\"\nkey = \"k\"\njob_no = \"j\"\n\
             currency = \"CAD\"\nstatus_poll_ms = {poll_ms:?}\n"
        ))
        .unwrap();
        IotPay::new(&cfg).unwrap()
    }

    fn op(age: time::Duration) -> Operation {
        use time::format_description::well_known::Rfc3339;
        Operation {
            request_id: "r".into(),
            kind: OpKind::Pay,
            provider: "iotpay".into(),
            amount: Some(100),
            currency: "CAD".into(),
            metadata: Default::default(),
            params: Default::default(),
            primary: None,
            created_at: (time::OffsetDateTime::now_utc() - age)
                .format(&Rfc3339)
                .unwrap(),
            backend_id: String::new(),
            progress: Default::default(),
        }
    }

    #[test]
    fn no_such_order_is_final_only_after_the_grace_window() {
        let p = provider(vec![2_000; 40]);
        assert_eq!(
            p.not_found_grace,
            Duration::from_secs(60),
            "capped at a minute"
        );
        assert!(matches!(
            p.not_found(&op(time::Duration::seconds(5))),
            Outcome::Unknown(_)
        ));
        match p.not_found(&op(time::Duration::seconds(61))) {
            Outcome::Failed(f) => assert_eq!(f.reason, "not_processed"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            provider(vec![50, 100]).not_found_grace,
            Duration::from_millis(150)
        );
    }
}
