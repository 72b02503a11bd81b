//! Bluetooth LE transport: a card reader or display reached through BlueZ (via btleplug) over the
//! Nordic UART Service (docs/link-protocol.md §11, docs/devices-ble.md). This file is its face:
//! the NUS identifiers, the options, the transport the device manager opens and the scan behind
//! `posbridge scan` (`scan`: what it hears, as it hears it). Opening a link (`open`) finds the peripheral, connects, checks for NUS,
//! subscribes to TX and hands the session a plain byte stream; the pump behind that stream
//! (`pump`) cuts writes into ATT-sized chunks and turns notifications back into bytes. It must
//! not interpret frames beyond finding where one ends, and must never let a fault in the
//! Bluetooth stack reach the rest of the daemon: every btleplug call runs on a runtime of its own
//! (`stack`), where a panic only ends one task.

pub mod bond;
mod open;
mod pump;
mod scan;
mod stack;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{BDAddr, Central, ScanFilter};
use btleplug::platform::Adapter;
use uuid::Uuid;

use super::transport::{Connection, Transport, TransportError};
/// How session bytes are cut into BLE writes; public for the fuzz targets (fuzz/).
pub use pump::take_write_units;
pub use scan::{scan, scan_telling, ScanEntry};
use stack::{cause, on_ble_runtime, retry_transient};

/// Nordic UART Service, advertised by every posbridge BLE device.
pub const NUS_SERVICE: Uuid = Uuid::from_u128(0x6e400001_b5a3_f393_e0a9_e50e24dcca9e);
/// NUS RX: the host writes link bytes here.
pub const NUS_RX: Uuid = Uuid::from_u128(0x6e400002_b5a3_f393_e0a9_e50e24dcca9e);
/// NUS TX: the device notifies link bytes here.
pub const NUS_TX: Uuid = Uuid::from_u128(0x6e400003_b5a3_f393_e0a9_e50e24dcca9e);
/// ACK timeout on BLE (docs/link-protocol.md §11): connection intervals make the link bursty.
pub const ACK_TIMEOUT: Duration = Duration::from_millis(1000);
/// The ATT MTU every LE link starts with; 20-byte chunks. btleplug reports this when BlueZ does
/// not expose the negotiated MTU (BlueZ < 5.62).
pub const DEFAULT_ATT_MTU: u16 = 23;

/// Tuning for one BLE device. The defaults suit a reader on the counter.
#[derive(Debug, Clone)]
pub struct BleOptions {
    /// How long to scan for a device BlueZ does not know yet.
    pub scan_timeout: Duration,
    /// Limit on the connection itself; past it the device counts as absent.
    pub connect_timeout: Duration,
    /// Limit on service discovery once connected. A NUS reader's few services resolve in well
    /// under a second; a link BlueZ reports connected whose services never resolve (a stale
    /// link bluetoothd took over after a restart of it or of D-Bus) is hung up and tried afresh
    /// instead of being waited for.
    pub discovery_timeout: Duration,
    /// Force this ATT MTU instead of the one BlueZ reports (chunks are MTU − 3 bytes). `None`
    /// trusts BlueZ, which falls back to [`DEFAULT_ATT_MTU`]; `Some(23)` is the safe choice for a
    /// device that misreports its MTU.
    pub att_mtu: Option<u16>,
}

impl Default for BleOptions {
    fn default() -> Self {
        BleOptions {
            scan_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(20),
            discovery_timeout: Duration::from_secs(8),
            att_mtu: None,
        }
    }
}

/// The address given is not `AA:BB:CC:DD:EE:FF` (with or without the `ble:` prefix).
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a Bluetooth address; write it as AA:BB:CC:DD:EE:FF")]
pub struct InvalidAddress(pub String);

/// Opens links to one BLE device over NUS.
#[derive(Debug, Clone)]
pub struct BleTransport {
    address: BDAddr,
    options: BleOptions,
}

impl BleTransport {
    /// `address` is `AA:BB:CC:DD:EE:FF` or `ble:AA:BB:CC:DD:EE:FF` (any case).
    pub fn new(address: &str) -> Result<BleTransport, InvalidAddress> {
        let bare = address.strip_prefix("ble:").unwrap_or(address);
        let parsed = match BDAddr::from_str(bare) {
            Ok(parsed) if bare.contains(':') => parsed,
            _ => return Err(InvalidAddress(address.to_string())),
        };
        Ok(BleTransport {
            address: parsed,
            options: BleOptions::default(),
        })
    }

    pub fn with_options(mut self, options: BleOptions) -> BleTransport {
        self.options = options;
        self
    }
}

#[async_trait]
impl Transport for BleTransport {
    fn address(&self) -> String {
        format!("ble:{}", self.address)
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let name = self.address();
        on_ble_runtime(
            &name,
            open::open(self.address, name.clone(), self.options.clone()),
        )
        .await
    }
}

/// Starts discovery filtered on NUS. BlueZ allows one discovery per D-Bus client and all of
/// posbridge shares one; if another scan or connect of ours already runs, ride along on it (it
/// may stop discovery first, which only shortens ours).
async fn start_nus_scan(adapter: &Adapter) -> Result<(), btleplug::Error> {
    let filter = ScanFilter {
        services: vec![NUS_SERVICE],
    };
    // InProgress: ride along on the discovery already running. Busy, NotReady: BlueZ is
    // starting or the adapter is powering up; ask again shortly.
    retry_transient("Bluetooth scan", || async {
        match adapter.start_scan(filter.clone()).await {
            Err(e) if cause(&e).contains("org.bluez.Error.InProgress") => Ok(()),
            other => other,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_parses_with_or_without_prefix_and_prints_upper_case() {
        let t = BleTransport::new("ble:aa:bb:cc:dd:ee:0f").unwrap();
        assert_eq!(t.address(), "ble:AA:BB:CC:DD:EE:0F");
        let t = BleTransport::new("AA:BB:CC:DD:EE:0F").unwrap();
        assert_eq!(t.address(), "ble:AA:BB:CC:DD:EE:0F");
    }

    #[test]
    fn address_refuses_junk() {
        for bad in [
            "",
            "ble:",
            "AA:BB:CC:DD:EE",
            "aabbccddeeff",
            "serial:/dev/ttyUSB0",
        ] {
            let err = BleTransport::new(bad).unwrap_err();
            assert!(err.to_string().contains("AA:BB:CC:DD:EE:FF"), "{err}");
        }
    }

    #[test]
    fn nus_uuids_match_the_spec() {
        assert_eq!(
            NUS_SERVICE.to_string(),
            "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
        );
        assert_eq!(NUS_RX.to_string(), "6e400002-b5a3-f393-e0a9-e50e24dcca9e");
        assert_eq!(NUS_TX.to_string(), "6e400003-b5a3-f393-e0a9-e50e24dcca9e");
    }
}
