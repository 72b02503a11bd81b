//! The reconnect schedule, on a paused clock with a transport that fails or succeeds on cue.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;
use crate::device::scripted::ScriptedDevice;
use crate::device::transport::Connection;

/// Fails or connects to a scripted reader (which hangs up right after HELLO), per attempt.
#[derive(Debug)]
struct OnCue {
    plan: Mutex<VecDeque<bool>>,
    attempts: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Transport for OnCue {
    fn address(&self) -> String {
        "serial:/dev/on-cue".into()
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        self.attempts.lock().unwrap().push(Instant::now());
        if !self.plan.lock().unwrap().pop_front().unwrap_or(false) {
            return Err(TransportError::Absent("/dev/on-cue is gone".into()));
        }
        let (host, device) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut d = ScriptedDevice::new(device);
            d.handshake(Role::CardReader, "CUE").await;
            // Unplugged right after HELLO.
        });
        Ok(Connection {
            stream: Box::new(host),
            mtu: usize::MAX,
            ack_timeout: Duration::from_millis(300),
            private: true,
            ble: None,
        })
    }
}

fn entry() -> Paired {
    Paired {
        id: "card-reader-CUE".into(),
        role: "card-reader".into(),
        transport: "serial".into(),
        address: "/dev/on-cue".into(),
        baud: Some(115_200),
        model: "m".into(),
        firmware: "f".into(),
        serial: "CUE".into(),
        paired_at: "2026-11-23T00:00:00Z".into(),
        bond: None,
    }
}

fn gaps(attempts: &[Instant]) -> Vec<f64> {
    attempts
        .windows(2)
        .map(|w| ((w[1] - w[0]).as_secs_f64() * 10.0).round() / 10.0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_to_30_s_and_resets_after_a_good_hello() {
    let dir = tempfile::tempdir().unwrap();
    let manager = DeviceManager::start(dir.path(), CancellationToken::new()).unwrap();
    let plan = [
        false, false, false, true, false, false, false, false, false, false, false, false,
    ];
    let cue = Arc::new(OnCue {
        plan: Mutex::new(plan.into_iter().collect()),
        attempts: Mutex::new(Vec::new()),
    });
    manager.manage_with(entry(), Ok(cue.clone()), None);
    tokio::time::sleep(Duration::from_secs(150)).await;
    let attempts = cue.attempts.lock().unwrap().clone();
    let g = gaps(&attempts);
    // Three failures (0.5, 1, 2 s apart), a good HELLO, the link dies at once: the pause is
    // back to 0.5 s, then doubles again up to the 30 s cap.
    assert_eq!(g[..3], [0.5, 1.0, 2.0], "{g:?}");
    assert_eq!(g[3..9], [0.5, 1.0, 2.0, 4.0, 8.0, 16.0], "{g:?}");
    assert!(
        g.len() > 9 && g[9..].iter().all(|gap| *gap == 30.0),
        "{g:?}"
    );
    let listed = manager.list();
    assert!(
        listed.is_empty(),
        "not in the registry, so not listed: {listed:?}"
    );
    let m = manager.devices().get("card-reader-CUE").unwrap().clone();
    assert_eq!(m.listing()["connected"], false);
    assert_eq!(m.listing()["last_error"], "/dev/on-cue is gone");
    assert_eq!(
        m.listing()["firmware"],
        "0.0.1",
        "facts from the last HELLO"
    );
}

/// A BLE reader off the air: each of the first `waits` connects is held for 20 s (as BlueZ
/// and the kernel hold one until the device advertises) and ends `Unseen`; later ones fail at
/// once (`Absent`).
#[derive(Debug)]
struct OffTheAir {
    waits: usize,
    attempts: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Transport for OffTheAir {
    fn address(&self) -> String {
        "ble:C0:FF:EE:00:00:01".into()
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let n = {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push(Instant::now());
            attempts.len()
        };
        if n > self.waits {
            return Err(TransportError::Absent("the adapter is gone".into()));
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        Err(TransportError::Unseen("no connection within 20 s".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_waited_for_the_device_is_followed_by_the_next_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let manager = DeviceManager::start(dir.path(), CancellationToken::new()).unwrap();
    let off = Arc::new(OffTheAir {
        waits: 5,
        attempts: Mutex::new(Vec::new()),
    });
    manager.manage_with(entry(), Ok(off.clone()), None);
    tokio::time::sleep(Duration::from_secs(105)).await;
    let g = gaps(&off.attempts.lock().unwrap());
    // Five held connects back to back: never a moment in which the reader could come back
    // unseen; then failures that did not wait get the backoff again, from its start.
    assert_eq!(g.get(..5), Some(&[20.0; 5][..]), "{g:?}");
    assert_eq!(g.get(5..7), Some(&[0.5, 1.0][..]), "{g:?}");
    let m = manager.devices().get("card-reader-CUE").unwrap().clone();
    assert_eq!(m.listing()["connected"], false);
}

#[tokio::test]
async fn a_ble_address_gets_the_ble_transport() {
    let t = transport_for(&Address::Ble("aa:bb:cc:dd:ee:ff".into()), None).unwrap();
    assert_eq!(t.address(), "ble:AA:BB:CC:DD:EE:FF");
    let err = transport_for(&Address::Ble("not-an-address".into()), None).unwrap_err();
    assert!(err.to_string().contains("not a Bluetooth address"), "{err}");
}

/// A display that stays connected and reports what it was told to show.
#[derive(Debug)]
struct StayingDisplay {
    shown: tokio::sync::mpsc::UnboundedSender<crate::device::link::Message>,
}

#[async_trait]
impl Transport for StayingDisplay {
    fn address(&self) -> String {
        "serial:/dev/display".into()
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let (host, device) = tokio::io::duplex(4096);
        let shown = self.shown.clone();
        tokio::spawn(async move {
            let mut d = ScriptedDevice::new(device);
            d.handshake(Role::DqrDisplay, "D1").await;
            while let Some(frame) = d.try_frame().await {
                d.ack(frame.seq()).await;
                let _ = shown.send(crate::device::link::Message::from_frame(&frame).unwrap());
            }
        });
        Ok(Connection {
            stream: Box::new(host),
            mtu: usize::MAX,
            ack_timeout: Duration::from_millis(300),
            private: true,
            ble: None,
        })
    }
}

#[tokio::test]
async fn the_paired_display_is_lent_by_role_and_a_missing_reader_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let manager = DeviceManager::start(dir.path(), CancellationToken::new()).unwrap();
    let (tx, mut shown) = tokio::sync::mpsc::unbounded_channel();
    let mut display = entry();
    display.id = "dqr-display-D1".into();
    display.role = "dqr-display".into();
    display.serial = "D1".into(); // what its HELLO says: another serial is not used
    manager.manage_with(display, Ok(Arc::new(StayingDisplay { shown: tx })), None);
    let d = manager.display(None, Duration::from_secs(5)).await.unwrap();
    d.show_status("paid").await.unwrap();
    assert_eq!(
        shown.recv().await.unwrap(),
        crate::device::link::Message::ShowStatus {
            text: "paid".into()
        }
    );
    let err = manager
        .card_reader(None, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "no card reader is paired; pair one with `posbridge pair`"
    );
}

#[tokio::test]
async fn has_display_says_whether_a_dqr_display_is_paired_connected_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let manager = DeviceManager::start(dir.path(), CancellationToken::new()).unwrap();
    assert!(!manager.has_display(), "nothing is paired");
    let refused = || Err(TransportError::Refused("not here".into()));
    manager.manage_with(entry(), refused(), None);
    assert!(!manager.has_display(), "a card reader is not a display");
    let mut display = entry();
    display.id = "dqr-display-D1".into();
    display.role = "dqr-display".into();
    // Paired, though it never connects.
    manager.manage_with(display, refused(), None);
    assert!(manager.has_display());
}
