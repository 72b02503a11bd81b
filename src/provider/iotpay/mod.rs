//! The `iotpay` provider: card sales on a PAX terminal driven from IOT Pay's cloud (channel
//! CC_PAX), and refunds, as IOT Pay's "POS Semi-Integration" document describes them. It owns
//! the order of calls and what each answer means for the sale; the wire format is `wire.rs`,
//! the reading of an answer `answer.rs` (single values: `fields.rs`), what the cashier is told
//! `says.rs`, the receipt `receipt.rs`, refunds `refund.rs`, the doctor's signed probe
//! `probe.rs`. It must never send create_order twice for one operation (after a lost answer it
//! only asks query_order), never re-send refund_order, never believe an answer whose `sign`
//! does not verify, never act on an answer that shows the order before it is journaled as
//! evidence, never read a refusal's words for what became of the sale, and never log the key
//! or a card number.
//!
//! Evidence: a verified create_order or query_order answer that carries our order (payOrder,
//! or a query_order answer with the order at its top level naming our mchOrderNo), whatever
//! its status, is witnessed ([`crate::provider::Progress::witness`]) before it is acted on.
//! From then on "no such order" is a contradiction, handed to the engine as
//! [`Outcome::NotFound`] at once: the sale stays unknown, never "nothing charged".
//!
//! Refusals: a create_order FAIL without an order is followed by one query_order by our own
//! number (a proxy's resend is answered "already exists", and words like "Transaction
//! refused" must not be matched for "used"): an order there is followed; "no such order" ends
//! the sale with IOT Pay's words (as `NotFound`: it rests on an absence); the same refusal
//! again (the account itself is refused) stands; anything else is checked on the schedule.
//!
//! Ids: mchOrderNo / mchRefundNo is the operation's own backend id (`wire::mch_order_no`).
//!
//! Paths: every call is `POST {base_url}/<name>`, so `base_url = "https://api.iotpaycloud.com/v1/"`
//! gives `/v1/create_order`, `/v1/query_order` and `/v1/refund_order`.
//!
//! Timing: create_order answers only when the terminal is done, so it may take `timeout_ms`
//! (default 90 s). If its answer is lost or cannot be read, `execute` asks query_order on the
//! status schedule for up to `min(timeout_ms, 20 s)` more ([`Provider::timeout`] is the sum),
//! then leaves the rest to the reconciler. The default schedule is IOT Pay's advice: every 2 s
//! for a minute, then 5, 10, 30 and every 60 s. Without evidence, "no such order" ends the
//! sale (nothing charged) only once `not_found_final_ms` (default 60 s, the document's "last
//! one minute at least") has passed since the create_order wait ended AND query_order has
//! been answering "no such order" for that long in this process (see [`IotPay::not_found`]).
//!
//! Cancel: no cancel call exists; an abort only reads the order (`abort.rs`).
//!
//! Refunds: IOT Pay documents no refund query and no deduplication of mchRefundNo, so a
//! refund whose answer was lost stays unknown (`manual_check`) and names the mchRefundNo to
//! look up in the IOT Pay portal; re-sending refund_order could refund twice.

/// Public for the fuzz targets (fuzz/): answer reading and signature checking as the provider
/// itself does them.
mod abort;
pub mod answer;
mod fields;
mod probe;
mod receipt;
mod refund;
mod says;
pub mod wire;

pub use probe::{probe, Probe};
pub use receipt::RECEIPT_KEYS;
pub use wire::{legacy_order_no, legacy_refund_no, mch_order_no, mch_refund_no};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;

use self::answer::{Call, Reading};
use self::refund::refund_unknown;
use self::says::{not_processed, rejected, unverified};
use self::wire::Merchant;
use super::common::{self, Common};
use super::http::{Http, HttpError};
use super::{Failure, OpKind, Operation, Outcome, Provider};
use crate::config::IotPayConfig;

const DEFAULT_TIMEOUT_MS: u64 = 90_000;
/// The document: "init a Query Order request every 2 seconds, last one minute at least".
pub const DEFAULT_NOT_FOUND_FINAL_MS: u64 = 60_000;
/// Longest wait for query_order and refund_order, which do not wait for a terminal.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time `execute` spends asking query_order after a lost create_order answer.
const MAX_CHECK_WINDOW: Duration = Duration::from_secs(20);
/// Kept free at the end of `timeout()` so `execute` answers before the engine gives up on it.
const MARGIN: Duration = Duration::from_millis(100);
/// After a restart the create_order wait is taken to end at this process's start +
/// `timeout_ms` + this: never earlier than the real end, whatever the wall clock did.
const RESTART_END_MARGIN: Duration = Duration::from_secs(10);

/// What one query_order found. Short-lived, one at a time: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Asked {
    /// What the answer means for the sale (`Unknown` too: pending, unreadable, not sent).
    Settled(Outcome),
    /// "No such order".
    NoOrder,
    /// A FAIL without an order that is not "no such order": IOT Pay's words.
    Refused(String),
}

/// What this process has seen of one order while its outcome is unknown.
#[derive(Default)]
struct Watch {
    /// When our create_order wait ended (answer, error or timeout).
    create_ended: Option<Instant>,
    /// The first "no such order" answer.
    not_found_since: Option<Instant>,
    /// IOT Pay has shown the order (any status; also journaled as evidence): a later "no
    /// such order" is a contradiction.
    seen: bool,
}

/// The name in the API and the config (`[providers.iotpay]`).
pub const NAME: &str = "iotpay";

pub struct IotPay {
    merchant: Merchant,
    /// Its timeout: the create_order wait, then the check window after a lost answer.
    common: Common,
    /// For create_order: waits for the customer at the terminal.
    terminal: Http,
    /// For query_order and refund_order.
    quick: Http,
    query_timeout: Duration,
    pay_timeout: Duration,
    not_found_final: Duration,
    /// By mchOrderNo, while the order's outcome is unknown.
    watch: Mutex<HashMap<String, Watch>>,
    /// When this provider (the daemon) started: any create_order it has no [`Watch`] for was
    /// sent before.
    started: Instant,
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
        let schedule = common::schedule(cfg.status_poll_ms.as_ref(), || {
            let mut s = vec![Duration::from_secs(2); 30];
            s.extend([5, 10, 30, 60].map(Duration::from_secs));
            s
        });
        let not_found_final = cfg.not_found_final_ms.unwrap_or(DEFAULT_NOT_FOUND_FINAL_MS);
        if not_found_final < DEFAULT_NOT_FOUND_FINAL_MS {
            log::warn!("providers.iotpay.not_found_final_ms = {not_found_final} is under IOT Pay's minute: a sale may be called \"not charged\" too early; use it for tests only");
        }
        Ok(IotPay {
            merchant: Merchant {
                mch_id: cfg.mch_id.clone(),
                job_no: cfg.job_no.clone(),
                channel_id: cfg.channel_id.clone(),
                key,
            },
            common: Common::new(
                NAME,
                cfg.currency.clone(),
                pay_timeout + pay_timeout.min(MAX_CHECK_WINDOW),
                schedule,
            ),
            terminal: Http::new("IOT Pay", &cfg.base_url, pay_timeout)?,
            quick: Http::new("IOT Pay", &cfg.base_url, query_timeout)?,
            query_timeout,
            pay_timeout,
            not_found_final: Duration::from_millis(not_found_final),
            watch: Mutex::new(HashMap::new()),
            started: Instant::now(),
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

    fn watching<R>(&self, no: &str, f: impl FnOnce(&mut Watch) -> R) -> R {
        let mut map = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(no.to_owned()).or_default())
    }

    fn forget(&self, no: &str) {
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(no);
    }

    async fn pay(&self, op: &Operation) -> Outcome {
        let started = Instant::now();
        let params = match wire::create_order(&self.merchant, op) {
            Ok(p) => p,
            Err(f) => return Outcome::Failed(f),
        };
        let id = op.request_id.as_str();
        let no = wire::mch_order_no(op);
        let sent = self.post(&self.terminal, "create_order", &params).await;
        if !matches!(sent, Err(HttpError::NotSent { .. })) {
            self.watching(&no, |w| w.create_ended = Some(Instant::now()));
        }
        let lost = match sent {
            Err(e @ HttpError::NotSent { .. }) => return e.into_outcome(),
            Err(e) => {
                log::warn!(request_id = id; "create_order: {e}; asking query_order");
                Failure::new(
                    "timeout",
                    format!("{e}. The outcome is being checked; ask again with get_result."),
                )
            }
            Ok(body) => match wire::check(&body, &self.merchant.key) {
                Ok(map) => {
                    if let Some(what) = answer::evidence(&map, Call::Create, &no) {
                        self.witness(op, &no, &what).await;
                    }
                    match answer::read_order(&map, Call::Create, &no) {
                        Reading::Paid(a) => return self.done(&no, Outcome::Approved(a)),
                        Reading::Declined(f) => return self.done(&no, Outcome::Failed(f)),
                        Reading::Refused(msg) => return self.after_refusal(op, started, msg).await,
                        Reading::Pending(s) => {
                            log::warn!(request_id = id; "create_order answered {s}; asking query_order");
                            Failure::new(
                                "in_progress",
                                format!("IOT Pay answered {s}; checking what became of the sale. Ask again with get_result."),
                            )
                        }
                        Reading::NotFound | Reading::Unrecognised(_) => {
                            log::warn!(request_id = id; "create_order answered without a final status; asking query_order");
                            Failure::new(
                                "in_progress",
                                "The sale has not finished on the terminal yet; ask again with get_result.",
                            )
                        }
                    }
                }
                Err(p) => unverified(id, "create_order", &p),
            },
        };
        self.settle_in_time(op, started, lost).await
    }

    /// A verified create_order refusal. Its words are not read for a meaning (a "Transaction
    /// refused" holds "used"): one query_order by our own number decides. An order there is
    /// followed like any other (it is evidence); no order ends the sale with IOT Pay's own
    /// words, as `NotFound` (the conclusion rests on an absence, so the engine settles it as
    /// "nothing charged" only when no answer ever showed the order; none can have here); the
    /// same refusal again (the account itself is refused, e.g. an unknown mchId) stands; a
    /// question that fails leaves the sale to query_order on the schedule.
    async fn after_refusal(&self, op: &Operation, started: Instant, msg: String) -> Outcome {
        let id = op.request_id.as_str();
        let no = wire::mch_order_no(op);
        log::warn!(request_id = id; "create_order refused: \"{msg}\"; asking query_order once whether the order exists");
        match self.ask(op).await {
            Asked::NoOrder => self.done(&no, Outcome::NotFound(rejected(&msg))),
            Asked::Refused(again) if again == msg => {
                self.done(&no, Outcome::Failed(rejected(&msg)))
            }
            Asked::Refused(_) | Asked::Settled(Outcome::Unknown(_)) => {
                let lost = Failure::new(
                    "in_progress",
                    format!("IOT Pay refused the sale ({msg}) but could not yet confirm that no order exists; checking. Ask again with get_result."),
                );
                self.settle_in_time(op, started, lost).await
            }
            Asked::Settled(outcome) => outcome,
        }
    }

    fn done(&self, no: &str, outcome: Outcome) -> Outcome {
        self.forget(no);
        outcome
    }

    /// Journals that IOT Pay has shown the order (`what`), before the answer is acted on, and
    /// remembers it here too. A note the journal could not take is logged: the engine keeps
    /// the witness in memory, and nothing here goes on to anything it could not find again.
    async fn witness(&self, op: &Operation, no: &str, what: &str) {
        self.watching(no, |w| w.seen = true);
        if let Err(e) = op.progress.witness(what).await {
            log::warn!(request_id = op.request_id.as_str(); "could not journal that {what}: {e}");
        }
    }

    /// After a lost create_order answer: query_order on the schedule while `timeout()` allows.
    async fn settle_in_time(&self, op: &Operation, started: Instant, lost: Failure) -> Outcome {
        let deadline = started + self.common.timeout.saturating_sub(MARGIN);
        let mut attempt = 0;
        loop {
            let outcome = self.query(op).await;
            if !matches!(outcome, Outcome::Unknown(_)) {
                return outcome;
            }
            let schedule = &self.common.schedule;
            let wait = schedule[attempt.min(schedule.len() - 1)];
            attempt += 1;
            if Instant::now() + wait + self.query_timeout > deadline {
                return Outcome::Unknown(lost);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One query_order by our own mchOrderNo: the order's state, or Unknown. Never moves money.
    async fn query(&self, op: &Operation) -> Outcome {
        let id = op.request_id.as_str();
        match self.ask(op).await {
            Asked::Settled(outcome) => outcome,
            Asked::NoOrder => self.not_found(op, &wire::mch_order_no(op)),
            Asked::Refused(msg) => {
                if answer::is_sign_error(&msg) || answer::is_merchant_error(&msg) {
                    log::warn!(request_id = id; "query_order refused our signature ({msg}): check providers.iotpay.key and mch_id (`posbridge doctor`)");
                } else {
                    log::warn!(request_id = id; "query_order failed ({msg}); asking again");
                }
                Outcome::Unknown(Failure::new(
                    "provider_unavailable",
                    format!("IOT Pay could not answer the status check ({msg}); asking again."),
                ))
            }
        }
    }

    /// Asks query_order once. An answer that carries our order is witnessed before anything
    /// is made of it.
    async fn ask(&self, op: &Operation) -> Asked {
        let id = op.request_id.as_str();
        let no = wire::mch_order_no(op);
        let params = wire::query_order(&self.merchant, &no);
        let body = match self.post(&self.quick, "query_order", &params).await {
            Ok(body) => body,
            // Even "not sent" says nothing about the order: it stays unknown.
            Err(e) => {
                return Asked::Settled(Outcome::Unknown(Failure::new(
                    "provider_unavailable",
                    e.to_string(),
                )))
            }
        };
        let map = match wire::check(&body, &self.merchant.key) {
            Ok(map) => map,
            Err(p) => return Asked::Settled(Outcome::Unknown(unverified(id, "query_order", &p))),
        };
        if let Some(what) = answer::evidence(&map, Call::Query, &no) {
            self.witness(op, &no, &what).await;
        }
        Asked::Settled(match answer::read_order(&map, Call::Query, &no) {
            Reading::Paid(a) => self.done(&no, Outcome::Approved(a)),
            Reading::Declined(f) => self.done(&no, Outcome::Failed(f)),
            Reading::Pending(s) => Outcome::Unknown(Failure::new(
                "in_progress",
                format!("The sale is still running on the terminal ({s})."),
            )),
            Reading::NotFound => return Asked::NoOrder,
            Reading::Refused(msg) => return Asked::Refused(msg),
            Reading::Unrecognised(what) => {
                log::warn!(request_id = id; "query_order answered in a shape posbridge does not know ({what}); asking again");
                Outcome::Unknown(Failure::new(
                    "in_progress",
                    "IOT Pay's answer did not say what became of the sale; asking again.",
                ))
            }
        })
    }

    /// "No such order". Once IOT Pay has shown the order (the journaled evidence, or an answer
    /// seen in this process) it is a contradiction: `NotFound` at once, which the engine turns
    /// into an unknown outcome (reason `contradiction`), never "nothing charged". Without
    /// evidence it is `NotFound` only once `not_found_final` has passed since the create_order
    /// wait ended, and "no such order" has been the answer for that long. The wait's end is
    /// known in this process; after a restart it is taken as late as it can have been (this
    /// process's start + timeout_ms + [`RESTART_END_MARGIN`]). Both are monotonic, so a
    /// wall-clock step can never end the window early.
    fn not_found(&self, op: &Operation, no: &str) -> Outcome {
        let now = Instant::now();
        let window = self.not_found_final;
        let latest_end = self.pay_timeout + RESTART_END_MARGIN;
        let (seen, past_end, since_first) = self.watching(no, |w| {
            let first = *w.not_found_since.get_or_insert(now);
            let past_end = match w.create_ended {
                Some(end) => now.duration_since(end) >= window,
                None => now.duration_since(self.started) >= latest_end + window,
            };
            (w.seen, past_end, now.duration_since(first))
        });
        if seen || op.progress.evidence().is_some() {
            log::warn!(request_id = op.request_id.as_str(); "IOT Pay showed order {no} before and now says it does not exist; not believed");
            return Outcome::NotFound(not_processed());
        }
        if past_end && since_first >= window {
            return self.done(no, Outcome::NotFound(not_processed()));
        }
        Outcome::Unknown(Failure::new(
            "in_progress",
            "IOT Pay does not show the order yet; checking again.",
        ))
    }
}

#[async_trait]
impl Provider for IotPay {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.pay(op).await,
            OpKind::Refund => self.refund(op).await,
            OpKind::Cancel if op.is_abort() => self.abort(op).await,
            OpKind::Cancel | OpKind::CloseShift => Outcome::Failed(Failure::new(
                "not_supported",
                format!("iotpay does not support {}.", op.kind.as_str()),
            )),
        }
    }

    fn status_can_settle(&self, kind: OpKind) -> bool {
        // IOT Pay documents no refund query.
        kind != OpKind::Refund
    }

    async fn status(&self, op: &Operation) -> Outcome {
        match op.kind {
            OpKind::Pay => self.query(op).await,
            // Never re-sent: IOT Pay does not document that a repeated mchRefundNo is the
            // same refund, so a second refund_order could refund twice.
            OpKind::Refund => Outcome::Unknown(refund_unknown(op, "its answer was lost")),
            // An abort only reads: asking again is safe.
            OpKind::Cancel if op.is_abort() => self.abort(op).await,
            OpKind::Cancel | OpKind::CloseShift => Outcome::Failed(Failure::new(
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
mod tests;
