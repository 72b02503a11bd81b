//! The link session over any [`Connection`]: HELLO, stop-and-wait ACK with bounded
//! retransmission, NAK handling, duplicate suppression, keep-alive and link-down detection
//! (docs/link-protocol.md §5–7). It owns sequence numbers and timers; it must not know what a
//! sale or a QR code means (that is `reader.rs` and `display.rs`) and it never re-sends a
//! message as a new frame after the link failed: callers reconnect and reconcile.
//!
//! One task per link (`actor.rs`) owns the byte stream; [`Session`] is the handle the layers
//! above hold. All timing uses tokio time, so tests can pause the clock.
//!
//! The same machinery runs the device side for `posbridge emulate` ([`DeviceLink`]): a device
//! answers the host's HELLO instead of starting one, refuses other frames before it with
//! NAK NotReady, sends no keep-alives, and outlives a host that went away.

mod actor;
mod noise;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;

use super::link::{Hello, Message, NakReason, PayloadError, Role};
use super::transport::{ByteStream, Connection};

pub(crate) use noise::Noise;

/// Transmissions of one frame before the link counts as down: the first plus 3 retries (§5).
pub const MAX_TRANSMISSIONS: u32 = 4;
/// The host sends KEEPALIVE after this much silence of its own (§7).
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(2);
/// The highest link protocol version this implementation speaks (docs/link-protocol.md §7).
pub const PROTOCOL_VERSION: u8 = 4;
/// The lowest version it still speaks: a version 1 peer gets version 1 layouts and messages.
pub const MIN_PROTOCOL_VERSION: u8 = 1;

/// Why a link went down, or why one message was refused. Cloneable, because every caller
/// waiting on a link that died gets the same reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the device closed the link (unplugged or powered off?)")]
    Closed,
    #[error("link I/O failed: {0}")]
    Io(String),
    #[error("the device did not acknowledge {what} after {attempts} transmissions")]
    NoAck { what: &'static str, attempts: u32 },
    #[error("the device acknowledged HELLO but never sent its own HELLO")]
    NoHello,
    #[error("the device answered as a {got}, but it was expected to be a {expected}")]
    WrongRole { expected: RoleName, got: RoleName },
    #[error("the device cannot speak link protocol version {MIN_PROTOCOL_VERSION} or later")]
    Incompatible,
    #[error("the device refused the {what} message ({reason:?}); this is a bug on one side")]
    Refused {
        what: &'static str,
        reason: NakReason,
    },
    #[error("the device kept answering NOT READY after HELLO")]
    NotReady,
    #[error("the message cannot be encoded: {0}")]
    Encode(PayloadError),
    #[error("the link session was closed by posbridge")]
    Shutdown,
}

impl LinkError {
    /// True when the whole link is gone (reconnect), false when one message was refused.
    pub fn is_link_down(&self) -> bool {
        !matches!(self, LinkError::Refused { .. } | LinkError::Encode(_))
    }
}

/// A role as technicians write it (`card-reader`, `dqr-display`), for messages and the API.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RoleName(pub Role);

impl RoleName {
    pub fn as_str(self) -> &'static str {
        role_name(self.0)
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::CardReader => "card-reader",
        Role::DqrDisplay => "dqr-display",
        Role::Host => "host",
    }
}

/// Parses `card-reader` / `dqr-display`.
pub fn parse_role(name: &str) -> Option<Role> {
    match name {
        "card-reader" => Some(Role::CardReader),
        "dqr-display" => Some(Role::DqrDisplay),
        _ => None,
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to send and, optionally, who waits for its ACK.
pub(crate) struct Job {
    pub(crate) msg: Message,
    pub(crate) reply: Option<oneshot::Sender<Result<(), LinkError>>>,
    /// How many more times a NAK NotReady may make us redo HELLO and resend this.
    pub(crate) redo_left: u8,
}

/// A cheap, cloneable way to send on a link (the emulator hands it to delayed answers).
#[derive(Clone)]
pub struct Sender {
    commands: mpsc::UnboundedSender<Job>,
    down: watch::Receiver<Option<LinkError>>,
}

impl Sender {
    /// Sends `msg` and waits for the peer's ACK. Errors when the peer refuses it (NAK) or the
    /// link is down; a message not acknowledged may or may not have arrived.
    pub async fn send(&self, msg: Message) -> Result<(), LinkError> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            msg,
            reply: Some(tx),
            redo_left: 2,
        };
        if self.commands.send(job).is_err() {
            return Err(self.down_reason());
        }
        rx.await.unwrap_or_else(|_| Err(self.down_reason()))
    }

    fn down_reason(&self) -> LinkError {
        self.down.borrow().clone().unwrap_or(LinkError::Shutdown)
    }
}

/// The host's handle on an open link. Dropping it closes the link.
pub struct Session {
    sender: Sender,
    inbound: Mutex<mpsc::UnboundedReceiver<Message>>,
    hello: Hello,
    /// The transport's word that nobody else can listen in ([`Connection::private`]).
    private: bool,
    task: JoinHandle<(Option<Box<dyn ByteStream>>, LinkError)>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("hello", &self.hello)
            .field("down", &self.error())
            .finish()
    }
}

impl Session {
    /// Opens a session: HELLO exchange, then the device's role is checked against `expected`.
    /// Returns the device's HELLO (model, firmware, serial number).
    pub async fn open(conn: Connection, expected: Role) -> Result<(Session, Hello), LinkError> {
        let private = conn.private;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (sender, inbound, task) = actor::spawn(
            conn,
            actor::Side::Host {
                expected,
                ready: Some(ready_tx),
            },
        );
        let hello = match ready_rx.await {
            Ok(Ok(hello)) => hello,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(sender.down_reason()),
        };
        let session = Session {
            sender,
            inbound: Mutex::new(inbound),
            hello: hello.clone(),
            private,
            task,
        };
        Ok((session, hello))
    }

    /// What the device said about itself when the session opened.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The version this session runs at: the lower of ours and the device's.
    pub fn version(&self) -> u8 {
        self.hello.protocol_version.min(PROTOCOL_VERSION)
    }

    /// Whether secrets may be sent over this link (wired, or a bonded BLE device).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Sends `msg` and waits for its ACK (see [`Sender::send`]).
    pub async fn send(&self, msg: Message) -> Result<(), LinkError> {
        self.sender.send(msg).await
    }

    /// The next message the device sent (ACKs, NAKs, HELLO and KEEPALIVE are handled here
    /// and never show up). Errors once the link is down and everything received was read.
    pub async fn recv(&self) -> Result<Message, LinkError> {
        let mut inbound = self.inbound.lock().await;
        match inbound.recv().await {
            Some(msg) => Ok(msg),
            None => Err(self.sender.down_reason()),
        }
    }

    /// Throws away messages that arrived and were not read (e.g. a late answer to an
    /// operation the caller gave up on).
    pub async fn drain(&self) -> usize {
        let mut inbound = self.inbound.lock().await;
        let mut n = 0;
        while inbound.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// Why the link is down, or `None` while it is up.
    pub fn error(&self) -> Option<LinkError> {
        self.sender.down.borrow().clone()
    }

    pub fn is_up(&self) -> bool {
        self.error().is_none()
    }

    /// Waits until the link goes down and says why.
    pub async fn closed(&self) -> LinkError {
        let mut down = self.sender.down.clone();
        loop {
            if let Some(e) = down.borrow_and_update().clone() {
                return e;
            }
            if down.changed().await.is_err() {
                return LinkError::Shutdown;
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The device side of a link, for the emulators: answers the host's HELLO with `hello`.
pub struct DeviceLink {
    pub sender: Sender,
    pub inbound: mpsc::UnboundedReceiver<Message>,
    /// Ends when the host went away (EOF or I/O error), handing the stream back so the
    /// emulator can wait for the next host on the same pty.
    pub task: JoinHandle<(Option<Box<dyn ByteStream>>, LinkError)>,
}

impl DeviceLink {
    pub(crate) fn serve(conn: Connection, hello: Hello, noise: Option<Noise>) -> DeviceLink {
        let (sender, inbound, task) = actor::spawn(conn, actor::Side::Device { hello, noise });
        DeviceLink {
            sender,
            inbound,
            task,
        }
    }
}

/// The host's own HELLO.
pub(crate) fn host_hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        role: Role::Host,
        model: "posbridge".into(),
        firmware: env!("CARGO_PKG_VERSION").into(),
        serial: String::new(),
    }
}

/// A short name of a message for logs and errors (never its payload).
pub(crate) fn what(msg: &Message) -> &'static str {
    match msg {
        Message::Ack { .. } => "ACK",
        Message::Nak { .. } => "NAK",
        Message::Hello(_) => "HELLO",
        Message::KeepAlive => "KEEPALIVE",
        Message::StartSale(_) => "START_SALE",
        Message::StartRefund(_) => "START_REFUND",
        Message::StartCancel(_) => "START_CANCEL",
        Message::SaleResult(_) => "SALE_RESULT",
        Message::GetResult { .. } => "GET_RESULT",
        Message::ResultNotFound { .. } => "RESULT_NOT_FOUND",
        Message::Busy { .. } => "BUSY",
        Message::InProgress { .. } => "IN_PROGRESS",
        Message::CloseShift => "CLOSE_SHIFT",
        Message::ShiftSummary { .. } => "SHIFT_SUMMARY",
        Message::Duplicate { .. } => "DUPLICATE",
        Message::ShiftTotals(_) => "SHIFT_TOTALS",
        Message::GetResultWindow => "GET_RESULT_WINDOW",
        Message::ResultWindow(_) => "RESULT_WINDOW",
        Message::Stage { .. } => "STAGE",
        Message::Abort { .. } => "ABORT",
        Message::ShowQr { .. } => "SHOW_QR",
        Message::ShowAmount { .. } => "SHOW_AMOUNT",
        Message::ShowStatus { .. } => "SHOW_STATUS",
        Message::Clear => "CLEAR",
    }
}
