//! The typed messages of the link protocol and their payload layouts (docs/link-protocol.md §8).
//! It owns the message type numbers, turning a [`Message`] into a [`Frame`] and back, and the
//! checks a payload must pass (request_id syntax, ISO 4217 currency, masked PANs only). It must
//! not decide what a message means for a sale: that is the session and device layers' job.

use super::details::ShiftTotals;
use super::fields::{
    check_request_id, Currency, Hello, NakReason, PaymentRequest, Role, SaleResult,
};
use super::stage::ReaderStage;
use super::window::ResultWindow;
use super::wire::{Reader, Writer};
use super::{Flags, Frame, PayloadError};

/// Message type numbers (frame offset 4). Ranges: 0x0_ link control, 0x1_ card reader,
/// 0x2_ DQR display, so a capture reads at a glance.
pub mod kind {
    pub const ACK: u8 = 0x01;
    pub const NAK: u8 = 0x02;
    pub const HELLO: u8 = 0x03;
    pub const KEEPALIVE: u8 = 0x04;
    pub const START_SALE: u8 = 0x10;
    pub const START_REFUND: u8 = 0x11;
    pub const START_CANCEL: u8 = 0x12;
    pub const SALE_RESULT: u8 = 0x13;
    pub const GET_RESULT: u8 = 0x14;
    pub const RESULT_NOT_FOUND: u8 = 0x15;
    pub const BUSY: u8 = 0x16;
    pub const IN_PROGRESS: u8 = 0x17;
    pub const CLOSE_SHIFT: u8 = 0x18;
    pub const SHIFT_SUMMARY: u8 = 0x19;
    /// Version 2.
    pub const DUPLICATE: u8 = 0x1A;
    /// Version 2.
    pub const SHIFT_TOTALS: u8 = 0x1B;
    /// Version 3.
    pub const GET_RESULT_WINDOW: u8 = 0x1C;
    /// Version 3.
    pub const RESULT_WINDOW: u8 = 0x1D;
    /// Version 4.
    pub const STAGE: u8 = 0x1E;
    pub const ABORT: u8 = 0x1F;
    pub const SHOW_QR: u8 = 0x20;
    pub const SHOW_AMOUNT: u8 = 0x21;
    pub const SHOW_STATUS: u8 = 0x22;
    pub const CLEAR: u8 = 0x23;
}

/// Every message either side may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The frame with sequence number `seq` arrived intact (and was delivered, or was a duplicate).
    Ack { seq: u8 },
    /// The frame with sequence number `seq` was refused; the sender may retransmit at once.
    Nak { seq: u8, reason: NakReason },
    /// First message of each side after the transport opens; resets duplicate suppression.
    Hello(Hello),
    /// Liveness probe; the answer is the ACK.
    KeepAlive,
    /// Host -> reader: charge `amount`.
    StartSale(PaymentRequest),
    /// Host -> reader: refund (needs `primary_reference`).
    StartRefund(PaymentRequest),
    /// Host -> reader: cancel/void (needs `primary_reference`).
    StartCancel(PaymentRequest),
    /// Reader -> host: the outcome of a start (or the answer to `GetResult`).
    SaleResult(SaleResult),
    /// Host -> reader: what happened to `request_id`? (reconciliation after a lost link)
    GetResult { request_id: String },
    /// Reader -> host: `request_id` is not among the reader's stored results.
    ResultNotFound { request_id: String },
    /// Reader -> host: refused, another operation (`request_id`) is running.
    Busy { request_id: String },
    /// Reader -> host: `request_id` itself is still running; ask again later.
    InProgress { request_id: String },
    /// Host -> reader: close the shift (reconciliation with the acquirer).
    CloseShift,
    /// Reader -> host: the closed shift's totals (version 1: approved sales only).
    ShiftSummary { count: u32, total: u64 },
    /// Reader -> host (version 2): a START_* carried a request_id the reader already has; it
    /// did nothing. Not an answer to the start: the host asks GET_RESULT.
    Duplicate { request_id: String },
    /// Reader -> host (version 2): the closed shift's totals of sales, refunds and cancels.
    ShiftTotals(ShiftTotals),
    /// Host -> reader (version 3): which results do you still hold?
    GetResultWindow,
    /// Reader -> host (version 3): the numbers of the results it still holds and of the next
    /// operation, in which result store ([`ResultWindow`]).
    ResultWindow(ResultWindow),
    /// Reader -> host (version 4): the running operation `request_id` has reached `stage`.
    /// Never a result; sent only in a version 4 session.
    Stage {
        request_id: String,
        stage: ReaderStage,
    },
    /// Host -> reader (version 4): stop the running operation `request_id` if it still can
    /// (it then ends with its SALE_RESULT, declined), else finish it (approved: too late).
    /// Only the ACK answers it; the outcome is the operation's own SALE_RESULT.
    Abort { request_id: String },
    /// Host -> display: show a QR code encoding `payload`.
    ShowQr { payload: String },
    /// Host -> display: show an amount to pay.
    ShowAmount { amount: u64, currency: Currency },
    /// Host -> display: show a line of text ("Paid", "Try again").
    ShowStatus { text: String },
    /// Host -> display: back to idle.
    Clear,
}

impl Message {
    /// The message type byte this message travels under.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Ack { .. } => kind::ACK,
            Message::Nak { .. } => kind::NAK,
            Message::Hello(_) => kind::HELLO,
            Message::KeepAlive => kind::KEEPALIVE,
            Message::StartSale(_) => kind::START_SALE,
            Message::StartRefund(_) => kind::START_REFUND,
            Message::StartCancel(_) => kind::START_CANCEL,
            Message::SaleResult(_) => kind::SALE_RESULT,
            Message::GetResult { .. } => kind::GET_RESULT,
            Message::ResultNotFound { .. } => kind::RESULT_NOT_FOUND,
            Message::Busy { .. } => kind::BUSY,
            Message::InProgress { .. } => kind::IN_PROGRESS,
            Message::CloseShift => kind::CLOSE_SHIFT,
            Message::ShiftSummary { .. } => kind::SHIFT_SUMMARY,
            Message::Duplicate { .. } => kind::DUPLICATE,
            Message::ShiftTotals(_) => kind::SHIFT_TOTALS,
            Message::GetResultWindow => kind::GET_RESULT_WINDOW,
            Message::ResultWindow(_) => kind::RESULT_WINDOW,
            Message::Stage { .. } => kind::STAGE,
            Message::Abort { .. } => kind::ABORT,
            Message::ShowQr { .. } => kind::SHOW_QR,
            Message::ShowAmount { .. } => kind::SHOW_AMOUNT,
            Message::ShowStatus { .. } => kind::SHOW_STATUS,
            Message::Clear => kind::CLEAR,
        }
    }

    /// ACK and NAK are answers, never answered themselves; everything else is acknowledged.
    pub fn needs_ack(&self) -> bool {
        !matches!(self, Message::Ack { .. } | Message::Nak { .. })
    }

    /// Builds the frame for this message. `seq` is the sender's next sequence number; ACK and
    /// NAK do not consume one and carry the acknowledged number in the header instead, so a
    /// capture pairs each frame with its answer at a glance.
    pub fn to_frame(&self, seq: u8) -> Result<Frame, PayloadError> {
        let (seq, flags) = match self {
            Message::Ack { seq } | Message::Nak { seq, .. } => (*seq, Flags::NONE),
            _ => (seq, Flags::ACK_REQUESTED),
        };
        Frame::new(seq, self.kind(), flags, self.encode_payload()?)
    }

    /// Parses a frame's payload according to its type. Unknown types and malformed payloads
    /// are errors (the receiver NAKs them), never panics.
    pub fn from_frame(frame: &Frame) -> Result<Message, PayloadError> {
        Message::decode(frame.kind(), frame.payload())
    }

    /// The payload bytes alone (see docs/link-protocol.md for each layout).
    pub fn encode_payload(&self) -> Result<Vec<u8>, PayloadError> {
        let mut w = Writer::default();
        match self {
            Message::Ack { seq } => w.u8(*seq),
            Message::Nak { seq, reason } => {
                // `Other(1)` would go out as 1 and come back as BadCrc: one meaning per code,
                // so decode(encode(m)) == m holds for every message the encoder accepts.
                if NakReason::from_code(reason.code()) != *reason {
                    return Err(PayloadError::Invalid {
                        field: "reason",
                        reason: "Other carries a code that has a name of its own (1 to 5)",
                    });
                }
                w.u8(*seq);
                w.u8(reason.code());
            }
            Message::Hello(h) => {
                w.u8(h.protocol_version);
                w.u8(h.role.code());
                w.str8("model", &h.model)?;
                w.str8("firmware", &h.firmware)?;
                w.str8("serial", &h.serial)?;
            }
            Message::StartSale(r) | Message::StartRefund(r) | Message::StartCancel(r) => {
                r.encode(&mut w)?
            }
            Message::SaleResult(r) => r.encode(&mut w)?,
            Message::GetResult { request_id }
            | Message::ResultNotFound { request_id }
            | Message::Busy { request_id }
            | Message::InProgress { request_id }
            | Message::Duplicate { request_id }
            | Message::Abort { request_id } => {
                check_request_id(request_id)?;
                w.str8("request_id", request_id)?;
            }
            Message::ShiftSummary { count, total } => {
                w.u32(*count);
                w.u64(*total);
            }
            Message::ShiftTotals(t) => t.encode(&mut w),
            Message::ResultWindow(window) => window.encode(&mut w)?,
            Message::Stage { request_id, stage } => {
                check_request_id(request_id)?;
                w.str8("request_id", request_id)?;
                stage.encode(&mut w);
            }
            Message::ShowQr { payload } => {
                check_qr_payload(payload)?;
                w.str16("payload", payload)?;
            }
            Message::ShowAmount { amount, currency } => {
                w.u64(*amount);
                w.bytes(currency.as_bytes());
            }
            Message::ShowStatus { text } => w.str16("text", text)?,
            Message::KeepAlive
            | Message::CloseShift
            | Message::GetResultWindow
            | Message::Clear => {}
        }
        let payload = w.finish();
        if payload.len() > super::MAX_PAYLOAD {
            return Err(PayloadError::TooLarge { len: payload.len() });
        }
        Ok(payload)
    }

    /// Parses a payload of message type `kind`.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Message, PayloadError> {
        let mut r = Reader::new(payload);
        let msg = match kind {
            kind::ACK => Message::Ack { seq: r.u8("seq")? },
            kind::NAK => Message::Nak {
                seq: r.u8("seq")?,
                reason: NakReason::from_code(r.u8("reason")?),
            },
            kind::HELLO => Message::Hello(Hello {
                protocol_version: r.u8("protocol_version")?,
                role: Role::from_code(r.u8("role")?)?,
                model: r.str8("model")?,
                firmware: r.str8("firmware")?,
                serial: r.str8("serial")?,
            }),
            kind::KEEPALIVE => Message::KeepAlive,
            kind::START_SALE => Message::StartSale(PaymentRequest::decode(&mut r)?),
            kind::START_REFUND => Message::StartRefund(PaymentRequest::decode(&mut r)?),
            kind::START_CANCEL => Message::StartCancel(PaymentRequest::decode(&mut r)?),
            kind::SALE_RESULT => Message::SaleResult(SaleResult::decode(&mut r)?),
            kind::GET_RESULT => Message::GetResult {
                request_id: read_request_id(&mut r)?,
            },
            kind::RESULT_NOT_FOUND => Message::ResultNotFound {
                request_id: read_request_id(&mut r)?,
            },
            kind::BUSY => Message::Busy {
                request_id: read_request_id(&mut r)?,
            },
            kind::IN_PROGRESS => Message::InProgress {
                request_id: read_request_id(&mut r)?,
            },
            kind::DUPLICATE => Message::Duplicate {
                request_id: read_request_id(&mut r)?,
            },
            kind::SHIFT_TOTALS => Message::ShiftTotals(ShiftTotals::decode(&mut r)?),
            kind::CLOSE_SHIFT => Message::CloseShift,
            kind::GET_RESULT_WINDOW => Message::GetResultWindow,
            kind::RESULT_WINDOW => Message::ResultWindow(ResultWindow::decode(&mut r)?),
            kind::STAGE => Message::Stage {
                request_id: read_request_id(&mut r)?,
                stage: ReaderStage::decode(&mut r)?,
            },
            kind::ABORT => Message::Abort {
                request_id: read_request_id(&mut r)?,
            },
            kind::SHIFT_SUMMARY => Message::ShiftSummary {
                count: r.u32("count")?,
                total: r.u64("total")?,
            },
            kind::SHOW_QR => {
                let payload = r.str16("payload")?;
                check_qr_payload(&payload)?;
                Message::ShowQr { payload }
            }
            kind::SHOW_AMOUNT => Message::ShowAmount {
                amount: r.u64("amount")?,
                currency: Currency::from_bytes(r.fixed("currency")?)?,
            },
            kind::SHOW_STATUS => Message::ShowStatus {
                text: r.str16("text")?,
            },
            kind::CLEAR => Message::Clear,
            other => return Err(PayloadError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn read_request_id(r: &mut Reader<'_>) -> Result<String, PayloadError> {
    let id = r.str8("request_id")?;
    check_request_id(&id)?;
    Ok(id)
}

/// An empty QR code cannot be scanned; refusing it here turns a host bug into a clear error
/// instead of a blank display in front of a customer.
fn check_qr_payload(payload: &str) -> Result<(), PayloadError> {
    if payload.is_empty() {
        return Err(PayloadError::Invalid {
            field: "payload",
            reason: "a QR payload must not be empty",
        });
    }
    Ok(())
}
