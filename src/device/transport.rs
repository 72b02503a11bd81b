//! What a transport gives the session layer: an open, ordered byte stream to one device, plus the
//! few facts about it the session needs (largest write in one piece, timeouts). Serial
//! (`serial.rs`) and Bluetooth LE (`ble.rs`) both end here, so everything above — HELLO, ACK,
//! retransmission, card-reader and display roles — is written once.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// Any duplex byte stream a session can run over: a serial port, the pump in front of a BLE
/// peripheral, one end of a pty or an in-memory duplex in tests.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// An open link to a device.
pub struct Connection {
    pub stream: Box<dyn ByteStream>,
    /// Largest write the transport carries in one piece (BLE: ATT MTU − 3; serial: unbounded).
    /// The session writes whole frames; the transport cuts them (`link::chunks`).
    pub mtu: usize,
    /// How long to wait for an ACK before retransmitting (docs/link-protocol.md §5, §11, §12).
    pub ack_timeout: Duration,
    /// Nobody else can listen in: a wired serial line inside the counter, or a BLE link to a
    /// bonded device (encrypted). Secrets (the acquirer's password) are only ever sent over a
    /// private link (docs/link-protocol.md §9, §11).
    pub private: bool,
    /// What BlueZ said of a BLE link when it opened; `None` for other transports.
    pub ble: Option<BleFacts>,
}

/// A BLE link's facts for the technician (`posbridge devices`) and for the bond rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleFacts {
    /// Whether BlueZ holds a bond with the device; `None` when it could not say.
    pub bonded: Option<bool>,
    /// The signal strength BlueZ last saw, in dBm.
    pub rssi: Option<i16>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("mtu", &self.mtu)
            .field("ack_timeout", &self.ack_timeout)
            .field("private", &self.private)
            .field("ble", &self.ble)
            .finish_non_exhaustive()
    }
}

/// Why a transport could not open (or lost) its link. The message names the device and the
/// cause in words a technician can act on ("/dev/ttyUSB0 is already open by another program").
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device is not there (unplugged, powered off, out of range). Retry with backoff.
    #[error("{0}")]
    Absent(String),
    /// The attempt waited the whole window the transport gives the device to show up (a BLE
    /// connect that BlueZ and the kernel hold until the device advertises, a scan for one BlueZ
    /// does not know) and it did not. The attempt was itself the wait: try again at once, with no
    /// pause in which the device could come back unseen.
    #[error("{0}")]
    Unseen(String),
    /// It is there but refused us (permissions, exclusive open by someone else, BlueZ error).
    /// Retry with backoff too, but say so in `devices`.
    #[error("{0}")]
    Refused(String),
}

/// Opens links to one device. A transport is cheap to keep; `connect` is called again after
/// every link loss (with backoff by the caller, except after [`TransportError::Unseen`]).
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// The device's address as the technician wrote it: `serial:/dev/posbridge/reader-123`,
    /// `ble:AA:BB:CC:DD:EE:FF`.
    fn address(&self) -> String;
    async fn connect(&self) -> Result<Connection, TransportError>;

    /// Resolves when a device that is missing right now appears (a USB reader plugged in: its
    /// udev name shows up), so the caller can connect at once instead of at its next backoff
    /// step. Never resolves when the transport cannot tell, or the device is there already.
    async fn appeared(&self) {
        std::future::pending::<()>().await
    }
}
