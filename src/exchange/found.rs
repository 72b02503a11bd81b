//! Found events: the devices a `scan` sent with `"progress": true` hears, told as they are
//! heard, before the scan's one answer (which lists them all again, in the same form). The
//! device manager calls [`Sightings::tell`]; the API writes the lines. Telling never waits:
//! the queue is the connection's bounded event queue, and a sighting that does not fit (a
//! client that does not read) is dropped. When to tell (first heard, then on a change, at most
//! once a second per device) is the scan's decision, not this room's.
//!
//! Data and a non-blocking send only: no I/O, no rendering.

use std::fmt;

use serde::Serialize;
use tokio::sync::mpsc;

use super::event::Event;

/// One device as a scan heard it; also the form of each `data.found` entry of its answer.
/// Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sighting {
    /// `AA:BB:CC:DD:EE:FF` (pair it as `ble:` + this).
    pub address: String,
    pub name: Option<String>,
    /// Signal strength in dBm as last heard, if BlueZ has one.
    pub rssi: Option<i16>,
    /// Whether BlueZ holds a bond with the device (`Paired` in BlueZ's words).
    pub bonded: bool,
    /// Whether posbridge has it paired (in devices.json).
    pub paired: bool,
}

/// A device the scan `request_id` heard (`None` when the scan request had no request_id: its
/// answer has none either).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub request_id: Option<String>,
    pub device: Sighting,
}

/// Where a scan's sightings go: nowhere (the default), or the queue of the connection that
/// asked.
#[derive(Clone, Default)]
pub struct Sightings {
    sink: Option<(Option<String>, mpsc::Sender<Event>)>,
}

impl Sightings {
    /// Sightings of the scan `request_id`, sent to `queue`.
    pub fn to(request_id: Option<&str>, queue: mpsc::Sender<Event>) -> Sightings {
        Sightings {
            sink: Some((request_id.map(str::to_owned), queue)),
        }
    }

    /// Whether anyone listens.
    pub fn listening(&self) -> bool {
        self.sink.as_ref().is_some_and(|(_, q)| !q.is_closed())
    }

    /// Tells `device`. Never waits: nothing when nobody listens, or the queue is full (the
    /// sighting is dropped; the answer lists the device all the same).
    pub fn tell(&self, device: Sighting) {
        let Some((request_id, queue)) = &self.sink else {
            return;
        };
        let event = Event::Found(Found {
            request_id: request_id.clone(),
            device,
        });
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(event) {
            log::debug!("found event dropped: the client does not read its events");
        }
    }
}

impl fmt::Debug for Sightings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.listening() {
            "Sightings(listening)"
        } else {
            "Sightings(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(rssi: i16) -> Sighting {
        Sighting {
            address: "C0:FF:EE:00:00:01".into(),
            name: Some("QPOS-mini".into()),
            rssi: Some(rssi),
            bonded: true,
            paired: false,
        }
    }

    #[test]
    fn sightings_go_to_the_queue_and_never_wait() {
        Sightings::default().tell(reader(-40));
        let (tx, mut rx) = mpsc::channel(1);
        let sightings = Sightings::to(Some("s1"), tx);
        assert!(sightings.listening());
        sightings.tell(reader(-50));
        sightings.tell(reader(-60)); // the queue is full: dropped, not waited for
        let Event::Found(found) = rx.try_recv().unwrap() else {
            panic!("not a found event");
        };
        assert_eq!(found.request_id.as_deref(), Some("s1"));
        assert_eq!(found.device, reader(-50));
        assert!(rx.try_recv().is_err());
        drop(rx);
        assert!(!sightings.listening());
        sightings.tell(reader(-70)); // nobody reads any more: nothing happens
    }
}
