//! The card-reader role over a link session (docs/link-protocol.md §9): sale, refund, cancel,
//! get_result, close_shift, (version 3) the reader's result window and (version 4) ABORT of
//! the running operation, each answered with a typed result. It owns matching answers to the request they belong to (by the id the reader
//! got: the operation's backend id) and one operation at a time per reader; it tells the
//! caller the moment the reader acknowledged a start (the reader has the request), before its
//! answer, and (version 4) each STAGE the reader sends about it meanwhile. It must not retry a money-moving start on its own: after a lost link, or a
//! DUPLICATE answer, the caller asks `get_result`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::link::{Message, PaymentRequest, ReaderStage, ResultWindow, SaleResult, ShiftTotals};
use super::session::{what, LinkError, Session};

/// What the reader said about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Finished: approved, declined or error, with RRN, approval code, masked PAN and scheme.
    Done(SaleResult),
    /// This request_id is still running on the reader; ask again later.
    InProgress,
    /// Another operation (`running`) is under way; nothing was started.
    Busy { running: String },
    /// The reader does not hold a result for this request_id: it never received it, or it
    /// evicted or lost the result. Which one only the result window (version 3) and what the
    /// host recorded before the start can tell (`provider::lifepay`).
    NotFound,
    /// Version 2: the reader already had this id and did nothing now. Never this request's
    /// answer: ask `get_result` by the same id.
    Duplicate,
}

/// The answer to CLOSE_SHIFT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShiftAnswer {
    /// A version 1 reader: approved sales only (refunds and cancels not reported).
    Closed {
        count: u32,
        total: u64,
    },
    /// A version 2 reader: sales, refunds and cancels.
    Totals(ShiftTotals),
    Busy {
        running: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    /// The link failed: a start may or may not have reached the reader. Reconnect and ask
    /// `get_result`; never start it again under a new request_id.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The reader acknowledged but did not answer in time: the outcome is unknown.
    #[error("the card reader did not answer {what} within {} s", after.as_secs_f32())]
    Timeout { what: &'static str, after: Duration },
}

#[derive(Debug)]
pub struct CardReader {
    /// The paired device's id (`card-reader-<serial>`): the DEVICE of the log entries.
    id: String,
    session: Arc<Session>,
    one_at_a_time: Mutex<()>,
}

impl CardReader {
    pub fn new(id: String, session: Arc<Session>) -> CardReader {
        CardReader {
            id,
            session,
            one_at_a_time: Mutex::new(()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Starts a sale (`Message::StartSale`), refund (`StartRefund`, `primary_reference` the
    /// sale's RRN) or cancel (`StartCancel`) and waits up to `wait` for the card holder and the
    /// acquirer. `acked` runs once the reader has acknowledged the start at the link level
    /// (it has the request, §5), before its answer is awaited. `staged` is told each STAGE
    /// the reader sends about this operation while it runs (version 4; a STAGE in an older
    /// session is ignored, as is one about another id).
    pub async fn start<A, F>(
        &self,
        msg: Message,
        wait: Duration,
        acked: A,
        staged: impl Fn(ReaderStage),
    ) -> Result<Answer, ReaderError>
    where
        A: FnOnce() -> F,
        F: Future<Output = ()>,
    {
        let id = match &msg {
            Message::StartSale(r) | Message::StartRefund(r) | Message::StartCancel(r) => {
                r.request_id.clone()
            }
            _ => unreachable!("CardReader::start is only called with a START_* message"),
        };
        let stages = self.session.version() >= 4;
        let answer = pick_answer(&id);
        let pick = |msg: &Message| match msg {
            Message::Stage { request_id, stage } if stages && *request_id == id => {
                staged(*stage);
                None
            }
            other => answer(other),
        };
        self.exchange(msg, wait, acked, pick).await
    }

    /// Charges `req.amount` ([`CardReader::start`] with nothing to do on the ACK).
    pub async fn sale(&self, req: PaymentRequest, wait: Duration) -> Result<Answer, ReaderError> {
        self.start(Message::StartSale(req), wait, no_hook, |_| {})
            .await
    }

    /// Refunds (part of) an earlier sale; `req.primary_reference` is the sale's RRN.
    pub async fn refund(&self, req: PaymentRequest, wait: Duration) -> Result<Answer, ReaderError> {
        self.start(Message::StartRefund(req), wait, no_hook, |_| {})
            .await
    }

    /// Cancels (voids) an earlier sale in full.
    pub async fn cancel(&self, req: PaymentRequest, wait: Duration) -> Result<Answer, ReaderError> {
        self.start(Message::StartCancel(req), wait, no_hook, |_| {})
            .await
    }

    /// Version 4: asks the reader to stop the running operation it knows as `request_id`
    /// (ABORT). Sent beside that operation, which holds the reader until it ends (not one at a
    /// time with it), and answered by the link ACK only: the operation's own SALE_RESULT says
    /// what became of it. `Ok` means the reader has the ABORT. Never moves money by itself.
    pub async fn abort(&self, request_id: &str, wait: Duration) -> Result<(), ReaderError> {
        let msg = Message::Abort {
            request_id: request_id.to_owned(),
        };
        tokio::time::timeout(wait, self.session.send(msg))
            .await
            .map_err(|_| ReaderError::Timeout {
                what: "ABORT",
                after: wait,
            })??;
        Ok(())
    }

    /// Version 3: the numbers of the results the reader still holds, and of its next
    /// operation. `None` from a reader whose session runs at version 1 or 2 (it has no window).
    pub async fn result_window(&self, wait: Duration) -> Result<Option<ResultWindow>, ReaderError> {
        if self.session.version() < 3 {
            return Ok(None);
        }
        self.exchange(Message::GetResultWindow, wait, no_hook, |msg| match msg {
            Message::ResultWindow(w) => Some(Some(*w)),
            _ => None,
        })
        .await
    }

    /// Asks what became of `request_id` (reconciliation). Never moves money.
    pub async fn get_result(
        &self,
        request_id: &str,
        wait: Duration,
    ) -> Result<Answer, ReaderError> {
        let msg = Message::GetResult {
            request_id: request_id.to_owned(),
        };
        self.exchange(msg, wait, no_hook, pick_answer(request_id))
            .await
    }

    pub async fn close_shift(&self, wait: Duration) -> Result<ShiftAnswer, ReaderError> {
        self.exchange(Message::CloseShift, wait, no_hook, |msg| match msg {
            Message::ShiftSummary { count, total } => Some(ShiftAnswer::Closed {
                count: *count,
                total: *total,
            }),
            Message::ShiftTotals(t) => Some(ShiftAnswer::Totals(*t)),
            Message::Busy { request_id } => Some(ShiftAnswer::Busy {
                running: request_id.clone(),
            }),
            _ => None,
        })
        .await
    }

    /// Sends `msg`, runs `acked` once the reader acknowledged it, and waits for the first
    /// answer `pick` recognises; anything else that arrives meanwhile (a late answer to an
    /// abandoned request) is logged and dropped.
    async fn exchange<T, A, F>(
        &self,
        msg: Message,
        wait: Duration,
        acked: A,
        pick: impl Fn(&Message) -> Option<T>,
    ) -> Result<T, ReaderError>
    where
        A: FnOnce() -> F,
        F: Future<Output = ()>,
    {
        let _one = self.one_at_a_time.lock().await;
        let name = what(&msg);
        let deadline = Instant::now() + wait;
        let stale = self.session.drain().await;
        if stale > 0 {
            log::debug!("dropped {stale} stale reader messages before {name}");
        }
        let timeout = ReaderError::Timeout {
            what: name,
            after: wait,
        };
        tokio::time::timeout_at(deadline, self.session.send(msg))
            .await
            .map_err(|_| timeout.clone())??;
        acked().await;
        loop {
            let answer = tokio::time::timeout_at(deadline, self.session.recv())
                .await
                .map_err(|_| timeout.clone())??;
            match pick(&answer) {
                Some(found) => return Ok(found),
                None => log::debug!(
                    "ignoring {} while waiting for the answer to {name}",
                    what(&answer)
                ),
            }
        }
    }
}

/// The answers about the operation the reader knows as `id`.
fn pick_answer(id: &str) -> impl Fn(&Message) -> Option<Answer> + '_ {
    move |answer| match answer {
        Message::SaleResult(r) if r.request_id == id => Some(Answer::Done(r.clone())),
        Message::InProgress { request_id } if request_id == id => Some(Answer::InProgress),
        Message::ResultNotFound { request_id } if request_id == id => Some(Answer::NotFound),
        Message::Duplicate { request_id } if request_id == id => Some(Answer::Duplicate),
        Message::Busy { request_id } => Some(Answer::Busy {
            running: request_id.clone(),
        }),
        _ => None,
    }
}

/// Nothing to do when the reader acknowledged.
async fn no_hook() {}
