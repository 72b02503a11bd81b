//! The emulated card reader (docs/link-protocol.md §9), behaving as the LIFE POS document's
//! Lifepay QPOS reader: it keeps its last 500 results by id, and a start with an id it already
//! has is a duplicate request: DUPLICATE to a version 2 host (which then asks GET_RESULT), the
//! stored result to a version 1 host, IN_PROGRESS while that id runs; never a second charge.
//! Another start while one runs gets BUSY. Each stored result is numbered, and a version 3 host
//! asking GET_RESULT_WINDOW learns which numbers it still holds, in which result store (a
//! fresh state file is a new store); `--keep-results N` makes it keep fewer than 500, so a test
//! can have a result evicted. Test amounts: ending in 51 declined, ending in 93
//! takes 3 s, ending in 95 waits 30 s for the customer, ending in 96 too but the acquirer has
//! already approved it, anything else approved after a short delay. ABORT (version 4) of the
//! running sale stops it at once: declined, nothing charged (its stored result rewritten, the
//! charge undone), or, for ..96 and for a refund or cancel, finishes it at once as decided
//! (too late). CLOSE_SHIFT reports sales, refunds
//! and cancels (SHIFT_TOTALS; a version 1 host gets SHIFT_SUMMARY of sales). The charge is written
//! to the state file *before* the delay, as a real reader's acquirer commits before the
//! receipt prints: a reader killed mid-sale still knows the sale after a restart. Only masked
//! card numbers exist here. To a version 4 host it tells how far an operation has got while it
//! runs (STAGE: card read, PIN entry for a sale, authorising), spread over its delay, before
//! the result; an operation whose credentials were refused read no card and tells nothing.
//! Given `--account LOGIN:PASSWORD_FILE`, it signs each operation in
//! as a Lifepay QPOS does and refuses credentials that match no account (`accounts`: a stored
//! SALE_RESULT error, nothing charged); without, it accepts any.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::accounts::Accounts;
use super::state::{State, Store, Stored, StoredDetails};
use super::{reply, Firmware};
use crate::device::link::{
    Message, Outcome, PaymentRequest, ReaderStage, ResultWindow, SaleResult, ShiftTotals,
};
use crate::device::session::Sender;

/// How long an ordinary operation takes (card tap, PIN, acquirer).
const SHORT: Duration = Duration::from_millis(200);
/// Amounts ending in 93.
const SLOW: Duration = Duration::from_secs(3);
/// Amounts ending in 95 and 96: the customer takes their time (an ABORT comes first).
const CUSTOMER: Duration = Duration::from_secs(30);

pub struct CardReader {
    store: Option<Store>,
    accounts: Accounts,
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    /// The request_id being carried out now, if any.
    running: Option<String>,
    /// Ends the running operation's wait at once (an ABORT).
    wake: Option<Arc<tokio::sync::Notify>>,
    /// Whether an ABORT can still stop the running operation (a sale not yet approved).
    stoppable: bool,
    /// The link protocol version of the current session: the lower of the host's (its
    /// HELLO) and this reader's own.
    version: u8,
    own_version: u8,
    /// How many results it keeps (500 unless `--keep-results`).
    keep: usize,
}

impl CardReader {
    pub fn open(
        store: Option<Store>,
        accounts: Accounts,
        own_version: u8,
        keep: usize,
    ) -> Result<CardReader> {
        let mut state = match &store {
            Some(s) => s.load()?,
            None => State::default(),
        };
        // A state from before numbering gets it; one holding more than `keep` is cut to it
        // (the oldest go), as a reader whose memory shrank would.
        state.number_results();
        state.evict(keep);
        if let Some(s) = &store {
            s.save(&state)?;
        }
        Ok(CardReader {
            store,
            accounts,
            inner: Mutex::new(Inner {
                state,
                running: None,
                wake: None,
                stoppable: false,
                version: 1,
                own_version,
                keep,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, state: &State) {
        if let Some(store) = &self.store {
            if let Err(e) = store.save(state) {
                log::error!("cannot save the reader state: {e:#}");
            }
        }
    }

    fn start(self: Arc<Self>, operation: &str, req: PaymentRequest, link: Sender) {
        let id = req.request_id.clone();
        let mut inner = self.lock();
        if inner.running.as_deref() == Some(id.as_str()) {
            return reply(&link, Message::InProgress { request_id: id });
        }
        if let Some(stored) = find(&inner.state.results, &id) {
            if inner.version >= 2 {
                log::info!("{id}: known request, answering DUPLICATE (no new charge)");
                return reply(&link, Message::Duplicate { request_id: id });
            }
            log::info!("{id}: known request, answering the stored result (no new charge)");
            return reply(&link, Message::SaleResult(to_result(stored)));
        }
        if let Some(running) = inner.running.clone() {
            return reply(
                &link,
                Message::Busy {
                    request_id: running,
                },
            );
        }
        let stored = match self.accounts.check(req.credentials.as_ref()) {
            Ok(()) => decide(operation, &req, &inner.state),
            Err(why) => {
                let login = req
                    .credentials
                    .as_ref()
                    .map_or("(none)", |c| c.login.as_str());
                log::warn!("{id}: {operation} refused, login {login}: {why}");
                refused(operation, &req, why)
            }
        };
        if stored.outcome == "approved" {
            let state = &mut inner.state;
            state.charges += 1;
            let (count, total) = match operation {
                "sale" => (&mut state.shift_count, &mut state.shift_total),
                "refund" => (&mut state.shift_refund_count, &mut state.shift_refund_total),
                _ => (&mut state.shift_cancel_count, &mut state.shift_cancel_total),
            };
            *count += 1;
            *total += req.amount;
        }
        let keep = inner.keep;
        inner.state.keep(stored.clone(), keep);
        // Committed before the answer, like an acquirer: see the module docs.
        self.save(&inner.state);
        let wake = Arc::new(tokio::sync::Notify::new());
        inner.running = Some(id.clone());
        let version = inner.version;
        inner.wake = Some(wake.clone());
        inner.stoppable = operation == "sale" && req.amount % 100 != 96;
        drop(inner);
        log::info!(
            "{id}: {operation} {} {} -> {}",
            req.amount,
            req.currency,
            stored.outcome
        );
        let delay = match req.amount % 100 {
            93 => SLOW,
            95 | 96 => CUSTOMER,
            _ => SHORT,
        };
        let stages = match (version, stored.rrn.is_some()) {
            (4.., true) => stages_of(operation),
            _ => &[],
        };
        let me = self.clone();
        tokio::spawn(async move {
            // The delay in equal parts, a STAGE after each but the last; an ABORT cuts it short.
            let part = delay / (stages.len() as u32 + 1);
            let staged = async {
                for stage in stages {
                    tokio::time::sleep(part).await;
                    let told = Message::Stage {
                        request_id: id.clone(),
                        stage: *stage,
                    };
                    if let Err(e) = link.send(told).await {
                        log::info!("{id}: STAGE not delivered ({e})");
                    }
                }
                tokio::time::sleep(part).await;
            };
            tokio::select! {
                _ = staged => {}
                _ = wake.notified() => {}
            }
            // What is stored now: an ABORT may have rewritten it.
            let result = {
                let mut inner = me.lock();
                inner.running = None;
                inner.wake = None;
                find(&inner.state.results, &id).map_or_else(|| to_result(&stored), to_result)
            };
            if let Err(e) = link.send(Message::SaleResult(result)).await {
                log::info!("{id}: result kept, the host will ask for it ({e})");
            }
        });
    }

    /// ABORT (version 4): stops the running sale `id` while it can (declined, the charge
    /// undone), else lets it finish at once. Answered only by the operation's SALE_RESULT.
    fn abort(&self, id: &str) {
        let mut inner = self.lock();
        if inner.version < 4 {
            log::info!("ABORT in a version {} session: ignored", inner.version);
            return;
        }
        if inner.running.as_deref() != Some(id) {
            log::info!("{id}: ABORT, but it is not running: nothing to stop");
            return;
        }
        if inner.stoppable {
            let s = &mut inner.state;
            let found = s.results.iter_mut().rev().find(|r| r.request_id == id);
            if let Some(r) = found {
                let undo = (r.outcome == "approved").then_some(r.amount);
                r.outcome = "declined".into();
                r.approval_code = None;
                r.message = "Cancelled at the POS (ABORT): nothing was charged".into();
                if let Some(amount) = undo {
                    s.charges -= 1;
                    s.shift_count -= 1;
                    s.shift_total -= amount;
                }
            }
            self.save(&inner.state);
            log::info!("{id}: ABORT: stopped, nothing charged");
        } else {
            log::info!("{id}: ABORT: too late, the acquirer has already decided");
        }
        if let Some(wake) = &inner.wake {
            wake.notify_one();
        }
    }
}

impl Firmware for CardReader {
    fn handle(self: Arc<Self>, msg: Message, link: Sender) {
        match msg {
            Message::StartSale(req) => self.start("sale", req, link),
            Message::StartRefund(req) => self.start("refund", req, link),
            Message::StartCancel(req) => self.start("cancel", req, link),
            Message::GetResult { request_id } => {
                let inner = self.lock();
                let answer = if inner.running.as_deref() == Some(request_id.as_str()) {
                    Message::InProgress { request_id }
                } else if let Some(stored) = find(&inner.state.results, &request_id) {
                    Message::SaleResult(to_result(stored))
                } else {
                    Message::ResultNotFound { request_id }
                };
                reply(&link, answer);
            }
            Message::Abort { request_id } => self.abort(&request_id),
            Message::GetResultWindow => {
                let inner = self.lock();
                if inner.version < 3 {
                    // An older reader has no window: it says nothing (the host never asks).
                    log::info!("GET_RESULT_WINDOW in a version {} session", inner.version);
                    return;
                }
                let window = ResultWindow {
                    store: inner.state.store,
                    oldest: inner.state.oldest(),
                    next: inner.state.next,
                };
                reply(&link, Message::ResultWindow(window));
            }
            Message::CloseShift => {
                let mut inner = self.lock();
                if let Some(running) = inner.running.clone() {
                    return reply(
                        &link,
                        Message::Busy {
                            request_id: running,
                        },
                    );
                }
                let s = &mut inner.state;
                let totals = ShiftTotals {
                    pay_count: std::mem::take(&mut s.shift_count),
                    pay_total: std::mem::take(&mut s.shift_total),
                    refund_count: std::mem::take(&mut s.shift_refund_count),
                    refund_total: std::mem::take(&mut s.shift_refund_total),
                    cancel_count: std::mem::take(&mut s.shift_cancel_count),
                    cancel_total: std::mem::take(&mut s.shift_cancel_total),
                };
                self.save(&inner.state);
                log::info!("shift closed: {totals:?}");
                let answer = if inner.version >= 2 {
                    Message::ShiftTotals(totals)
                } else {
                    Message::ShiftSummary {
                        count: totals.pay_count,
                        total: totals.pay_total,
                    }
                };
                reply(&link, answer);
            }
            Message::Hello(host) => {
                let mut inner = self.lock();
                inner.version = host.protocol_version.min(inner.own_version);
            }
            other => log::debug!("a reader ignores {}", crate::device::session::what(&other)),
        }
    }
}

/// The stages a version 4 reader tells while `operation` runs, in order.
fn stages_of(operation: &str) -> &'static [ReaderStage] {
    match operation {
        "sale" => &[
            ReaderStage::CardRead,
            ReaderStage::PinEntry,
            ReaderStage::Authorising,
        ],
        "refund" => &[ReaderStage::CardRead, ReaderStage::Authorising],
        _ => &[ReaderStage::Authorising],
    }
}

fn find<'a>(results: &'a VecDeque<Stored>, id: &str) -> Option<&'a Stored> {
    results.iter().rev().find(|r| r.request_id == id)
}

/// What the emulated acquirer says.
fn decide(operation: &str, req: &PaymentRequest, state: &State) -> Stored {
    let h = Sha256::digest(req.request_id.as_bytes());
    let digits: String = h[..12].iter().map(|b| char::from(b'0' + b % 10)).collect();
    let code: String = h[12..15].iter().map(|b| format!("{b:02X}")).collect();
    let (outcome, message) = match operation {
        "sale" if req.amount % 100 == 51 => (
            "declined",
            "Declined by the issuer (emulator: amount ending in 51)".to_owned(),
        ),
        "sale" => ("approved", "Approved".to_owned()),
        _ => {
            let original = req.primary_reference.as_deref().and_then(|rrn| {
                state.results.iter().find(|r| {
                    r.operation == "sale"
                        && r.outcome == "approved"
                        && r.rrn.as_deref() == Some(rrn)
                })
            });
            match original {
                Some(sale) if req.amount <= sale.amount => ("approved", "Approved".to_owned()),
                Some(_) => (
                    "declined",
                    "The amount exceeds the original sale".to_owned(),
                ),
                None => (
                    "declined",
                    "No approved sale with that reference on this reader".to_owned(),
                ),
            }
        }
    };
    let approved = outcome == "approved";
    Stored {
        request_id: req.request_id.clone(),
        number: 0, // given by State::keep
        operation: operation.into(),
        amount: req.amount,
        currency: req.currency.as_str().into(),
        outcome: outcome.into(),
        rrn: Some(digits),
        approval_code: approved.then_some(code),
        masked_pan: Some("411111******1111".into()),
        scheme: Some("VISA".into()),
        message,
        at: crate::clock::now_rfc3339(),
        login: req.credentials.as_ref().map(|c| c.login.clone()),
        password_sha256: fingerprint(req),
        details: details(req),
    }
}

/// The stored answer to credentials Lifepay refused: the reader never read a card, so no
/// RRN, approval or card number; outcome error (not "declined": no issuer said anything, and
/// another card would fare no better). Stored and numbered like any operation it accepted, so
/// GET_RESULT after a lost link answers the same refusal.
fn refused(operation: &str, req: &PaymentRequest, why: &str) -> Stored {
    Stored {
        request_id: req.request_id.clone(),
        number: 0, // given by State::keep
        operation: operation.into(),
        amount: req.amount,
        currency: req.currency.as_str().into(),
        outcome: "error".into(),
        rrn: None,
        approval_code: None,
        masked_pan: None,
        scheme: None,
        message: why.into(),
        at: crate::clock::now_rfc3339(),
        login: req.credentials.as_ref().map(|c| c.login.clone()),
        password_sha256: fingerprint(req),
        details: details(req),
    }
}

/// The first 4 bytes of the password's SHA-256, hex: enough for a test to tell which password
/// arrived, never the password.
fn fingerprint(req: &PaymentRequest) -> Option<String> {
    req.credentials.as_ref().map(|c| {
        Sha256::digest(c.password.as_bytes())[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

fn details(req: &PaymentRequest) -> Option<StoredDetails> {
    req.details.as_ref().map(|d| StoredDetails {
        sign_on_screen: d.sign_on_screen,
        email: d.email.clone(),
        phone: d.phone.clone(),
        recipient_inn: d.recipient_inn.clone(),
        metadata: d.metadata.clone(),
    })
}

fn to_result(s: &Stored) -> SaleResult {
    SaleResult {
        request_id: s.request_id.clone(),
        outcome: match s.outcome.as_str() {
            "approved" => Outcome::Approved,
            "declined" => Outcome::Declined,
            _ => Outcome::Error,
        },
        rrn: s.rrn.clone(),
        approval_code: s.approval_code.clone(),
        masked_pan: s.masked_pan.clone(),
        scheme: s.scheme.clone(),
        message: s.message.clone(),
    }
}
