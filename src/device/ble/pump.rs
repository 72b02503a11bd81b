//! The pump behind a BLE connection's byte stream: the session holds one end of an in-memory
//! duplex, the pump the other. Session bytes become RX writes (each frame starts a new write and
//! is cut into ATT_MTU − 3 chunks, docs/link-protocol.md §11); TX notifications become session
//! bytes. The pump ends — closing the stream, which the session reads as EOF = link down — when
//! the session hangs up, the device disconnects, BlueZ fails a write, or the system D-Bus goes
//! (its event streams then fall silent). It must not retry or interpret frames (the session
//! does); it only finds where a frame ends.

use std::pin::Pin;
use std::time::Duration;

use btleplug::api::{CentralEvent, Characteristic, Peripheral as _, ValueNotification, WriteType};
use btleplug::platform::{Peripheral, PeripheralId};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::stack::cause;
use super::NUS_TX;
use crate::device::link::{
    self, CRC_LEN, HEADER_LEN, MAX_FRAME_LEN, MAX_PAYLOAD, START_MARKER, VERSION,
};

pub(super) type Events = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;
pub(super) type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

/// Room in each direction of the duplex: two largest frames.
const STREAM_BUFFER: usize = 2 * MAX_FRAME_LEN;

/// Everything the pump needs about one open link.
pub(super) struct Link {
    pub name: String,
    pub peripheral: Peripheral,
    pub rx: Characteristic,
    pub write_type: WriteType,
    /// Largest write: ATT_MTU − 3.
    pub chunk: usize,
    pub notifications: Notifications,
    pub events: Events,
    /// Resolves when the system D-Bus connection is lost (`systemctl restart dbus`).
    pub bus_lost: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Starts the pump on the current (BLE) runtime and returns the session's end of the stream.
pub(super) fn start(link: Link) -> DuplexStream {
    let (session_end, pump_end) = tokio::io::duplex(STREAM_BUFFER);
    tokio::spawn(run(link, pump_end));
    session_end
}

/// Why the pump stopped.
enum End {
    SessionClosed,
    DeviceGone,
    Failed(String),
}

async fn run(link: Link, stream: DuplexStream) {
    let Link {
        name,
        peripheral,
        rx,
        write_type,
        chunk,
        notifications,
        events,
        bus_lost,
    } = link;
    let (mut from_session, mut to_session) = tokio::io::split(stream);
    let id = peripheral.id();
    let end = tokio::select! {
        end = uplink(&peripheral, &rx, write_type, chunk, &mut from_session) => end,
        end = downlink(notifications, &mut to_session) => end,
        end = watch_disconnect(events, &id) => end,
        () = bus_lost => End::Failed("lost the connection to the system D-Bus".to_string()),
    };
    // Close the stream first: the session must learn of the loss now, not after BlueZ answers.
    drop(from_session);
    drop(to_session);
    match &end {
        End::SessionClosed => log::info!("{name}: link closed by posbridge"),
        End::DeviceGone => log::warn!("{name}: device disconnected"),
        End::Failed(why) => log::warn!("{name}: link lost: {why}"),
    }
    if !matches!(end, End::DeviceGone) {
        match tokio::time::timeout(Duration::from_secs(5), peripheral.disconnect()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("{name}: disconnect: {}", cause(&e)),
            Err(_) => log::debug!("{name}: disconnect: no answer from BlueZ"),
        }
    }
}

/// Session → device.
async fn uplink(
    peripheral: &Peripheral,
    rx: &Characteristic,
    write_type: WriteType,
    chunk: usize,
    from_session: &mut (impl AsyncRead + Unpin),
) -> End {
    let mut pending = Vec::with_capacity(STREAM_BUFFER);
    let mut buf = vec![0u8; STREAM_BUFFER];
    loop {
        let n = match from_session.read(&mut buf).await {
            Ok(0) | Err(_) => return End::SessionClosed,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        for unit in take_write_units(&mut pending) {
            for piece in link::chunks(&unit, chunk) {
                if let Err(e) = peripheral.write(rx, piece, write_type).await {
                    return End::Failed(format!("BlueZ failed a write to RX: {}", cause(&e)));
                }
            }
        }
    }
}

/// Device → session.
async fn downlink(
    mut notifications: Notifications,
    to_session: &mut (impl AsyncWrite + Unpin),
) -> End {
    while let Some(n) = notifications.next().await {
        if n.uuid != NUS_TX {
            continue;
        }
        if to_session.write_all(&n.value).await.is_err() {
            return End::SessionClosed;
        }
    }
    End::Failed("BlueZ stopped sending notifications".to_string())
}

async fn watch_disconnect(mut events: Events, id: &PeripheralId) -> End {
    while let Some(event) = events.next().await {
        if matches!(&event, CentralEvent::DeviceDisconnected(gone) if gone == id) {
            return End::DeviceGone;
        }
    }
    End::Failed("lost the BlueZ event stream".to_string())
}

/// Splits what the session wrote into write units: each whole frame is one unit, so every frame
/// starts a new BLE write (§11); bytes that are not a frame pass on as they are. An incomplete
/// frame (or a lone trailing marker byte) stays in `pending` until the rest arrives; the session
/// always writes whole frames, so the rest is on its way.
pub fn take_write_units(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    while !pending.is_empty() {
        match pending.windows(2).position(|w| w == START_MARKER) {
            Some(0) => {}
            Some(at) => {
                units.push(pending.drain(..at).collect());
                continue;
            }
            None => {
                let keep = usize::from(pending.last() == Some(&START_MARKER[0]));
                let n = pending.len() - keep;
                if n > 0 {
                    units.push(pending.drain(..n).collect());
                }
                break;
            }
        }
        if pending.len() < HEADER_LEN {
            break;
        }
        let len = usize::from(u16::from_le_bytes([pending[6], pending[7]]));
        if pending[2] != VERSION || len > MAX_PAYLOAD {
            // Not a frame header: the marker goes on as plain bytes.
            units.push(pending.drain(..START_MARKER.len()).collect());
            continue;
        }
        let total = HEADER_LEN + len + CRC_LEN;
        if pending.len() < total {
            break;
        }
        units.push(pending.drain(..total).collect());
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::link::{encode, Flags, Frame};

    fn frame(seq: u8, len: usize) -> Vec<u8> {
        encode(&Frame::new(seq, 0x20, Flags::ACK_REQUESTED, vec![b'q'; len]).unwrap())
    }

    #[test]
    fn each_frame_is_its_own_write_unit() {
        let (a, b) = (frame(1, 300), frame(2, 3));
        let mut pending = [a.clone(), b.clone()].concat();
        assert_eq!(take_write_units(&mut pending), vec![a, b]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_partial_frame_waits_for_its_rest() {
        let a = frame(1, 100);
        let mut pending = a[..50].to_vec();
        assert!(take_write_units(&mut pending).is_empty());
        assert_eq!(pending.len(), 50);
        pending.extend_from_slice(&a[50..]);
        assert_eq!(take_write_units(&mut pending), vec![a]);
    }

    #[test]
    fn bytes_that_are_not_frames_pass_through() {
        let a = frame(1, 4);
        let mut pending = [b"noise".to_vec(), a.clone()].concat();
        assert_eq!(take_write_units(&mut pending), vec![b"noise".to_vec(), a]);

        // A marker with a wrong version is not a header: sent on, not waited for.
        let mut pending = vec![0xA5, 0x5A, 0x09, 0, 0, 0, 0xff, 0xff, 1, 2];
        let units = take_write_units(&mut pending);
        assert_eq!(
            units.concat(),
            vec![0xA5, 0x5A, 0x09, 0, 0, 0, 0xff, 0xff, 1, 2]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn a_lone_marker_byte_is_held_for_its_partner() {
        let mut pending = vec![1, 2, 0xA5];
        assert_eq!(take_write_units(&mut pending), vec![vec![1, 2]]);
        assert_eq!(pending, vec![0xA5]);
    }
}
