//! The serial transport (docs/link-protocol.md §12): a tty opened exclusively, raw, 8N1, at
//! the configured baud rate, through tokio-serial. It owns opening the port and turning open
//! errors into words a technician can act on; it must not frame or interpret bytes.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use super::transport::{Connection, Transport, TransportError};

/// ACK timeout on serial (§12): a maximum frame takes ~90 ms at 115200 baud.
pub const ACK_TIMEOUT: Duration = Duration::from_millis(300);
/// How often a missing serial device node is looked for where inotify cannot be used (see
/// `Transport::appeared`).
pub const HOTPLUG_POLL: Duration = Duration::from_millis(200);
pub const DEFAULT_BAUD: u32 = 115_200;

#[derive(Debug, Clone)]
pub struct SerialTransport {
    pub path: PathBuf,
    pub baud: u32,
}

impl SerialTransport {
    pub fn new(path: impl Into<PathBuf>, baud: u32) -> SerialTransport {
        SerialTransport {
            path: path.into(),
            baud,
        }
    }

    /// Opens the port exclusively (TIOCEXCL and flock): a second opener, ours or another
    /// program's, is refused instead of stealing half the bytes.
    pub fn open(&self) -> Result<SerialStream, TransportError> {
        use std::os::unix::fs::FileTypeExt;
        // Only a tty is ours to open: `pair serial:/some/file` must not touch a regular file.
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if !meta.file_type().is_char_device() {
                return Err(TransportError::Refused(format!(
                    "{} is not a serial device",
                    self.path.display()
                )));
            }
        }
        let path = self.path.to_string_lossy().into_owned();
        tokio_serial::new(&path, self.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .flow_control(tokio_serial::FlowControl::None)
            .open_native_async()
            .map_err(|e| self.open_error(e))
    }

    fn open_error(&self, e: tokio_serial::Error) -> TransportError {
        use std::io::ErrorKind as Io;
        use tokio_serial::ErrorKind as K;
        let path = self.path.display();
        match e.kind() {
            K::NoDevice => TransportError::Refused(format!(
                "{path} is already open by another program (or another posbridge); \
                 close it, or check `fuser {path}`"
            )),
            K::Io(Io::NotFound) => TransportError::Absent(format!(
                "{path} does not exist: is the device plugged in, and is the udev rule installed?"
            )),
            K::Io(Io::PermissionDenied) => TransportError::Refused(format!(
                "{path}: permission denied; the daemon's user needs the device's group \
                 (see the udev rule)"
            )),
            K::InvalidInput => TransportError::Refused(format!(
                "{path} cannot be used at {} baud: {}",
                self.baud, e.description
            )),
            _ => TransportError::Absent(format!("cannot open {path}: {}", e.description)),
        }
    }
}

#[async_trait]
impl Transport for SerialTransport {
    fn address(&self) -> String {
        format!("serial:{}", self.path.display())
    }

    /// Watches the device node (or the udev symlink to it): when it is missing now, resolves
    /// as soon as it exists, on inotify (`node_watch`); where inotify cannot be used, a stat
    /// every [`HOTPLUG_POLL`]. Nothing is opened.
    async fn appeared(&self) {
        if self.path.exists() {
            return std::future::pending::<()>().await;
        }
        if let Err(e) = super::node_watch::appeared(&self.path).await {
            log::debug!(
                "{}: cannot watch for it ({e}); looking every {HOTPLUG_POLL:?}",
                self.path.display()
            );
            while !self.path.exists() {
                tokio::time::sleep(HOTPLUG_POLL).await;
            }
        }
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let stream = self.open()?;
        Ok(Connection {
            stream: Box::new(stream),
            mtu: usize::MAX,
            ack_timeout: ACK_TIMEOUT,
            // A cable inside the counter: treated as private (docs/link-protocol.md §12).
            private: true,
            ble: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_port_is_absent_and_named() {
        let t = SerialTransport::new("/dev/posbridge/no-such-reader", 115_200);
        let err = t.connect().await.unwrap_err();
        assert!(matches!(err, TransportError::Absent(_)), "{err:?}");
        assert!(
            err.to_string().contains("/dev/posbridge/no-such-reader"),
            "{err}"
        );
        assert_eq!(t.address(), "serial:/dev/posbridge/no-such-reader");
    }

    #[tokio::test]
    async fn a_regular_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-tty");
        std::fs::write(&file, "keep me").unwrap();
        let err = SerialTransport::new(&file, 115_200)
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Refused(_)), "{err:?}");
        assert!(err.to_string().ends_with("is not a serial device"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }
}
