//! The `lifepay` provider: pay, refund, cancel and close_shift on the paired card reader, over
//! the link protocol (docs/link-protocol.md §9). The reader knows each operation by its own
//! backend id (`Operation.backend_id`, never the POS's request_id), so a request_id reused
//! after the journal forgot it can never land on an old result. The acquirer login (the
//! request's `login`/`password`, else the configured ones) travels in each START_* and is
//! never logged; the LIFE POS details (`email`, `phone`, `sign_on_screen`, `recipient_inn`,
//! `metadata`) travel in the version 2 details block. `status` asks the reader GET_RESULT by
//! the same id once it is connected again: a sale cut off by a lost link is reconciled, never
//! started again, and a DUPLICATE answer is never taken as the outcome. What showed that the
//! reader has the operation is witnessed before it is acted on, and a RESULT_NOT_FOUND is read
//! against the reader's result window (`recovery`). A POS that asked for progress hears
//! `on_terminal` once the reader acknowledged the start and, from a version 4 reader, each
//! STAGE it sends (card read, PIN entry, authorising). Like every provider it never touches the
//! journal itself (notes go through `Operation::progress`); the device manager owns the link.
//! A cancel naming a running sale by request_id is an abort (`abort.rs`): ABORT on a version 4
//! reader, then the sale's stored result says what the cancel did.

mod abort;
mod answers;
mod recovery;

use answers::{busy, finished, link_failed, log_answer, shift_closed, unavailable, Check};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::common::{self, Common};
use super::{Failure, OpKind, Operation, Outcome, Provider, Stage};
use crate::config::LifepayConfig;
use crate::device::link::{
    Credentials, Currency, Message, PaymentRequest, ReaderStage, SaleDetails,
};
use crate::device::manager::DeviceManager;
use crate::device::reader::{Answer, CardReader, ReaderError};
use crate::device::session::LinkError;
use crate::secret::Secret;

/// The contract's currency: amounts are in kopecks (LIFE POS document, "Сумма оплаты в
/// копейках").
pub const DEFAULT_CURRENCY: &str = "RUB";
const DEFAULT_TIMEOUT_MS: u64 = 120_000;
const DEFAULT_SCHEDULE_MS: [u64; 4] = [1_000, 2_000, 5_000, 10_000];
/// How long a new operation waits for a reader that is reconnecting (e.g. just after start).
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// A status check waits less: `get_result` bounds its on-demand check to 2 s.
const STATUS_CONNECT_WAIT: Duration = Duration::from_millis(500);
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long the result window before a start may take: room for the link's retransmissions
/// (4 × 1 s on BLE), since a sale is refused when it does not come.
const WINDOW_WAIT: Duration = Duration::from_secs(5);

/// The name in the API and the config (`[providers.lifepay]`).
pub const NAME: &str = "lifepay";

pub struct Lifepay {
    devices: Arc<DeviceManager>,
    reader: Option<String>,
    login: String,
    password: Secret,
    common: Common,
    /// Sales an abort was sent for, until they end (`abort.rs`).
    aborting: abort::Aborting,
}

impl Lifepay {
    pub fn new(cfg: &LifepayConfig, devices: Arc<DeviceManager>) -> anyhow::Result<Lifepay> {
        let password = crate::secret::resolve(
            "providers.lifepay",
            "password",
            cfg.password.as_ref(),
            cfg.password_file.as_deref(),
        )?;
        Ok(Lifepay {
            devices,
            reader: cfg.reader.clone(),
            login: cfg.login.clone(),
            password,
            common: Common::new(
                NAME,
                cfg.currency.as_deref().unwrap_or(DEFAULT_CURRENCY),
                Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
                common::schedule(cfg.status_poll_ms.as_ref(), || {
                    common::millis(&DEFAULT_SCHEDULE_MS)
                }),
            ),
            aborting: Default::default(),
        })
    }

    /// How long the reader may take: a little less than the engine's limit, so the reader's
    /// own timeout answers first (with a clearer message).
    fn reader_wait(&self) -> Duration {
        self.common
            .timeout
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1))
    }

    fn request(&self, op: &Operation, version: u8) -> Result<PaymentRequest, Failure> {
        let currency = Currency::new(&op.currency)
            .map_err(|e| Failure::new("invalid_request", format!("currency: {e}")))?;
        let primary_reference = match op.kind {
            OpKind::Refund | OpKind::Cancel => Some(
                op.primary
                    .as_ref()
                    .and_then(|p| p.provider_reference.clone())
                    .ok_or_else(|| {
                        Failure::new(
                            "invalid_request",
                            "primary_transaction: has no provider_reference (the sale's RRN)",
                        )
                    })?,
            ),
            _ => None,
        };
        let text = |key: &str| {
            op.params
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        // The request's own login (LIFE POS `login`/`password`), else the configured one.
        let credentials = match (text("login"), text("password")) {
            (Some(login), Some(password)) => Credentials { login, password },
            _ => Credentials {
                login: self.login.clone(),
                password: self.password.expose().to_owned(),
            },
        };
        let details = SaleDetails {
            sign_on_screen: text("sign_on_screen").as_deref() == Some("1"),
            email: text("email"),
            phone: text("phone"),
            recipient_inn: text("recipient_inn"),
            metadata: op.metadata.clone(),
        };
        let details = if version >= 2 {
            Some(details)
        } else if details.asks_more_than_metadata() {
            return Err(Failure::new(
                "not_supported",
                "The card reader speaks link protocol version 1, which cannot carry email, \
                 phone, sign_on_screen or recipient_inn; update its firmware or leave them \
                 out. Nothing was sent or charged.",
            ));
        } else {
            if !op.metadata.is_empty() {
                log::info!(request_id = op.request_id.as_str();
                    "the card reader speaks link protocol version 1: metadata stays in the \
                     journal and is not sent to the reader");
            }
            None
        };
        Ok(PaymentRequest {
            request_id: reader_id(op).to_owned(),
            amount: op.amount.unwrap_or(0),
            currency,
            primary_reference,
            credentials: Some(credentials),
            details,
        })
    }

    /// The reader said it already had this operation's id: that answer is not this
    /// operation's outcome. Ask it by the same id; whatever does not settle it is unknown.
    async fn after_duplicate(&self, reader: &CardReader, op: &Operation) -> Outcome {
        log::warn!(request_id = op.request_id.as_str(), provider = "lifepay";
            "the card reader already had id {}; asking GET_RESULT", reader_id(op));
        recovery::witness(op, "the card reader answered DUPLICATE (it has this id)").await;
        match reader.get_result(reader_id(op), STATUS_WAIT).await {
            Ok(Answer::Done(r)) => {
                recovery::witness(op, "the card reader answered its stored result").await;
                finished(op, r)
            }
            _ => Outcome::Unknown(Failure::new(
                "duplicate",
                "The card reader said it already had this operation and did not say how it \
                 ended; the outcome is being checked. Ask again with get_result.",
            )),
        }
    }
}

/// The id the reader knows `op` by: its backend id, or for an intent written before backend
/// ids existed, what that version sent ([`legacy_reader_id`]), so its outcome is still found.
pub fn reader_id(op: &Operation) -> &str {
    if op.backend_id.is_empty() {
        legacy_reader_id(op)
    } else {
        &op.backend_id
    }
}

/// What versions before the per-operation backend id sent the reader: the POS's request_id.
pub fn legacy_reader_id(op: &Operation) -> &str {
    &op.request_id
}

#[async_trait]
impl Provider for Lifepay {
    fn common(&self) -> &Common {
        &self.common
    }

    async fn execute(&self, op: &Operation) -> Outcome {
        let reader = match self
            .devices
            .card_reader(self.reader.as_deref(), CONNECT_WAIT)
            .await
        {
            Ok(r) => r,
            Err(msg) => {
                return Outcome::Failed(unavailable(format!("{msg}. Nothing was charged.")))
            }
        };
        // A cancel naming the sale by request_id: ABORT (`abort.rs`), never a START_CANCEL.
        if op.is_abort() {
            return self.abort(&reader, op).await;
        }
        let wait = self.reader_wait();
        if op.kind == OpKind::CloseShift {
            return match reader.close_shift(wait).await {
                Ok(answer) => shift_closed(op, answer),
                Err(e) => link_failed(e),
            };
        }
        let req = match self.request(op, reader.session().version()) {
            Ok(r) => r,
            Err(f) => return Outcome::Failed(f),
        };
        // The acquirer's password never crosses a link others could listen to.
        if !reader.session().is_private() {
            return Outcome::Failed(Failure::new(
                "insecure_link",
                format!(
                    "The card reader {} is connected over a link that is not private (a BLE \
                     reader that is not bonded, or whose bond is not authenticated: `posbridge \
                     devices` says which), so the acquirer credentials cannot be sent. Pair it \
                     again with `posbridge pair ble:ADDRESS --role card-reader --rebond`, which \
                     bonds with a code to compare. Nothing was sent or charged.",
                    reader.session().hello().serial
                ),
            ));
        }
        // Version 3: where the reader's numbering stands before the start, journaled, so a
        // later RESULT_NOT_FOUND can tell "never received" from "evicted" (`recovery`).
        if let Err(outcome) = record_window(&reader, op).await {
            return outcome;
        }
        // DEVICE ties the sale's story (`journalctl REQUEST_ID=...`) to the reader that ran it.
        log::info!(request_id = op.request_id.as_str(), provider = "lifepay",
            action = op.kind.as_str(), device = reader.id();
            "sent to the card reader {} as {}", reader.id(), reader_id(op));
        let (msg, name) = match op.kind {
            OpKind::Refund => (Message::StartRefund(req), "START_REFUND"),
            OpKind::Cancel => (Message::StartCancel(req), "START_CANCEL"),
            _ => (Message::StartSale(req), "START_SALE"),
        };
        // The reader's link ACK of the start means it has the request (docs/providers.md).
        let acked = format!("the card reader acknowledged {name}");
        // Progress for a POS that asked: the ACK puts it on the terminal; a version 4 reader
        // tells how far it got (STAGE).
        let on_terminal = || async {
            recovery::witness(op, &acked).await;
            op.stages
                .tell(Stage::OnTerminal, "the card reader has the request");
        };
        let answer = reader
            .start(msg, wait, on_terminal, |stage| told(op, stage))
            .await;
        log_answer(op, &reader, Check::Start, &answer);
        match answer {
            Ok(Answer::Done(r)) => {
                recovery::witness(op, "the card reader answered its stored result").await;
                self.aborting.ended(reader_id(op), finished(op, r))
            }
            // BUSY naming this very sale: the reader is running it (a START that crossed its
            // own earlier copy), never "busy with another operation; nothing charged".
            Ok(Answer::Busy { running }) if running == reader_id(op) => {
                recovery::witness(op, "the card reader answered BUSY with this sale").await;
                Outcome::Unknown(Failure::new(
                    "in_progress",
                    "The card reader is running this request; ask again with get_result.",
                ))
            }
            Ok(Answer::Busy { running }) => Outcome::Failed(busy(&running)),
            Ok(Answer::InProgress) => {
                recovery::witness(op, "the card reader answered IN_PROGRESS").await;
                Outcome::Unknown(Failure::new(
                    "in_progress",
                    "The card reader is still running this request; ask again with get_result.",
                ))
            }
            Ok(Answer::NotFound) => Outcome::Unknown(Failure::new(
                "timeout",
                "The card reader did not say what became of this request; it is being checked.",
            )),
            Ok(Answer::Duplicate) => self.after_duplicate(&reader, op).await,
            Err(e) => link_failed(e),
        }
    }

    fn status_can_settle(&self, kind: OpKind) -> bool {
        // The reader keeps results of sales, refunds and cancels, not of shift closes.
        kind != OpKind::CloseShift
    }

    async fn status(&self, op: &Operation) -> Outcome {
        if op.kind == OpKind::CloseShift {
            return Outcome::Unknown(Failure::new(
                "manual_check",
                "A shift close cut off by a lost link cannot be asked about; check the reader's \
                 last shift report.",
            ));
        }
        let reader = match self
            .devices
            .card_reader(self.reader.as_deref(), STATUS_CONNECT_WAIT)
            .await
        {
            Ok(r) => r,
            Err(msg) => return Outcome::Unknown(unavailable(msg)),
        };
        if op.is_abort() {
            return abort::status(&reader, op).await;
        }
        let answer = reader.get_result(reader_id(op), STATUS_WAIT).await;
        log_answer(op, &reader, Check::Status, &answer);
        match &answer {
            Ok(Answer::Done(r)) => {
                recovery::witness(op, "the card reader answered its stored result").await;
                finished(op, r.clone())
            }
            Ok(Answer::NotFound) => recovery::not_found(&reader, op).await,
            Ok(Answer::InProgress | Answer::Busy { .. } | Answer::Duplicate) => {
                let seen = match &answer {
                    Ok(Answer::InProgress) => Some("IN_PROGRESS"),
                    Ok(Answer::Duplicate) => Some("DUPLICATE"),
                    _ => None,
                };
                if let Some(seen) = seen {
                    let what = format!("the card reader answered {seen} to GET_RESULT");
                    recovery::witness(op, &what).await;
                }
                Outcome::Unknown(Failure::new(
                    "in_progress",
                    "The card reader is still running it; ask again shortly.",
                ))
            }
            Err(e) => Outcome::Unknown(Failure::new("link_lost", e.to_string())),
        }
    }
}

/// Version 3: journals the reader's result window before a start ([`recovery::NOTE_WINDOW`]).
/// A link that fails here fails before anything was sent; a reader that refuses the question
/// is treated as one without a window.
async fn record_window(reader: &CardReader, op: &Operation) -> Result<(), Outcome> {
    let window = match reader.result_window(WINDOW_WAIT).await {
        Ok(Some(window)) => window,
        Ok(None) => return Ok(()),
        Err(ReaderError::Link(LinkError::Refused { reason, .. })) => {
            log::warn!(request_id = op.request_id.as_str(), provider = "lifepay";
                "the card reader refused GET_RESULT_WINDOW ({reason:?}); a result it later \
                 does not find is read as from a reader without one");
            return Ok(());
        }
        Err(e) => {
            return Err(Outcome::Failed(unavailable(format!(
                "The card reader did not answer before the {} was sent ({e}). Nothing was \
                 sent or charged.",
                op.kind.as_str()
            ))))
        }
    };
    let note = recovery::window_note(&window);
    op.progress
        .record(recovery::NOTE_WINDOW, note)
        .await
        .map_err(|e| {
            Outcome::Failed(Failure::new(
                "journal_unavailable",
                format!(
                    "The card reader's result window could not be recorded ({e}). Nothing \
                     was sent or charged."
                ),
            ))
        })
}

#[cfg(test)]
mod tests;

/// A STAGE the reader sent about `op` (version 4), told to a POS that asked for progress.
fn told(op: &Operation, stage: ReaderStage) {
    let (stage, message) = match stage {
        ReaderStage::CardRead => (Stage::CardRead, "the card reader read the card"),
        ReaderStage::PinEntry => (Stage::PinEntry, "the customer is entering the PIN"),
        ReaderStage::Authorising => (Stage::Authorising, "the card reader is authorising"),
    };
    op.stages.tell(stage, message);
}
