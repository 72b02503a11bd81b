//! Card readers and QR displays: the link protocol (`link`, a pure codec, no I/O). The session
//! layer, the serial and BLE transports, the registry of paired devices and the emulators build
//! on it (see docs/link-protocol.md).

pub mod ble;
pub mod link;
pub mod screen;
pub mod transport;
