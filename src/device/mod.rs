//! Card readers and QR displays: the link protocol (`link`, a pure codec, no I/O), the session
//! over any byte stream (`session`), the transports (`serial`, which waits for its node with
//! `node_watch`; BLE in `ble`), the role APIs (`reader`, `display`), the registry of paired
//! devices and the manager that keeps them connected (see docs/link-protocol.md and
//! docs/devices.md).

pub mod ble;
pub mod display;
pub mod link;
pub mod manager;
mod node_watch;
pub mod reader;
pub mod registry;
pub mod screen;
pub mod scripted;
pub mod serial;
pub mod session;
pub mod transport;
