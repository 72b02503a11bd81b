//! The BLE transport against a mock BlueZ (tests/fixtures/bluez_nus.py) on a private D-Bus: scan,
//! connect, frames both ways over the Nordic UART Service, MTU chunking, BlueZ errors and
//! disconnects from either side. Each test plays the card reader itself on the mock's byte
//! endpoint (a Unix socket) with the link codec. One mock per process: run with cargo nextest.

mod common;

use std::time::Duration;

use common::bluez::MockBluez;
use posbridge::device::ble::{self, BleOptions, BleTransport, ScanEntry};
use posbridge::device::link::{encode, Decoder, Frame, Hello, Message, Role};
use posbridge::device::transport::{Connection, Transport, TransportError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const READER: &str = "C0:FF:EE:00:00:01";
/// Only to keep a broken test from hanging; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(15);

/// One side of the link, speaking frames over any byte stream.
struct Peer<S> {
    stream: S,
    decoder: Decoder,
    seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    fn new(stream: S) -> Peer<S> {
        Peer {
            stream,
            decoder: Decoder::new(),
            seq: 0,
        }
    }

    async fn send(&mut self, message: &Message) -> Vec<u8> {
        let frame = message.to_frame(self.seq).unwrap();
        if message.needs_ack() {
            self.seq = self.seq.wrapping_add(1);
        }
        let bytes = encode(&frame);
        self.stream.write_all(&bytes).await.unwrap();
        self.stream.flush().await.unwrap();
        bytes
    }

    async fn recv_frame(&mut self) -> Frame {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(frame) = self.decoder.next_frame() {
                    return frame.expect("intact frame");
                }
                let mut buf = [0u8; 512];
                let n = self.stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "link closed while waiting for a frame");
                assert_eq!(self.decoder.push(&buf[..n]), n);
            }
        })
        .await
        .expect("no frame arrived")
    }

    async fn recv(&mut self) -> Message {
        Message::from_frame(&self.recv_frame().await).expect("well-formed message")
    }

    /// Waits for the other side to close; panics if it sends bytes instead.
    async fn expect_eof(&mut self) {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
            .await
            .expect("link still open")
            .unwrap_or(0);
        assert_eq!(n, 0, "expected EOF, got {:?}", &buf[..n]);
    }
}

fn hello(role: Role) -> Message {
    Message::Hello(Hello {
        protocol_version: 1,
        role,
        model: "QPOS-mini".into(),
        firmware: "2.4.1".into(),
        serial: "SN0001".into(),
    })
}

/// The mock, one NUS reader at [`READER`] whose device side is a socket this test listens on.
fn rig(mtu: u16) -> (MockBluez, UnixListener) {
    let mock = MockBluez::start();
    let endpoint = mock.dir().join("reader.sock");
    let listener = UnixListener::bind(&endpoint).unwrap();
    mock.add_nus_device(READER, "QPOS-mini", -48, &endpoint, mtu);
    (mock, listener)
}

async fn connect(mock: &MockBluez) -> Connection {
    let transport = BleTransport::new(&format!("ble:{READER}")).unwrap();
    match tokio::time::timeout(PATIENCE, transport.connect()).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => panic!("connect failed: {e}\n{}", mock.logs()),
        Err(_) => panic!("connect hung\n{}", mock.logs()),
    }
}

/// `transport.connect()` fails within [`PATIENCE`]: its error (`why`: what success would mean).
async fn failed_connect(transport: &BleTransport, why: &str) -> TransportError {
    tokio::time::timeout(PATIENCE, transport.connect())
        .await
        .expect("connect hung")
        .expect_err(why)
}

async fn accept(listener: &UnixListener) -> Peer<UnixStream> {
    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the mock never opened the device endpoint")
        .unwrap();
    Peer::new(stream)
}

/// With each device's bond as BlueZ holds it (`Paired`): the far reader has none.
#[tokio::test]
async fn ble_scan_lists_nus_devices_with_rssi_and_not_others() {
    let (mock, _listener) = rig(23);
    let far = mock.dir().join("far.sock");
    mock.add_nus_device("C0:FF:EE:00:00:02", "far reader", -80, &far, 23);
    mock.set_paired("C0:FF:EE:00:00:02", false);
    mock.add_plain_device("11:22:33:44:55:66", "headphones");

    let found = ble::scan(Duration::from_millis(300)).await.unwrap();
    assert_eq!(
        found,
        vec![
            ScanEntry {
                address: READER.into(),
                name: Some("QPOS-mini".into()),
                rssi: Some(-48),
                bonded: true,
            },
            ScanEntry {
                address: "C0:FF:EE:00:00:02".into(),
                name: Some("far reader".into()),
                rssi: Some(-80),
                bonded: false,
            },
        ],
        "{}",
        mock.logs()
    );
}

#[tokio::test]
async fn ble_connect_discovers_nus_and_takes_chunk_size_from_mtu() {
    let (mock, listener) = rig(185);
    let connection = connect(&mock).await;
    let _device = accept(&listener).await;
    assert_eq!(connection.mtu, 182, "ATT MTU 185 − 3");
    assert_eq!(connection.ack_timeout, Duration::from_millis(1000));
    let log = mock.logs();
    for call in ["Connect", "StartNotify"] {
        assert!(log.contains(call), "mock never saw {call}:\n{log}");
    }
}

#[tokio::test]
async fn ble_frames_round_trip_through_nus() {
    let (mock, listener) = rig(23);
    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = accept(&listener).await;

    // Host HELLO → device; device ACKs and says HELLO; host ACKs.
    host.send(&hello(Role::Host)).await;
    let frame = device.recv_frame().await;
    assert_eq!(Message::from_frame(&frame).unwrap(), hello(Role::Host));
    device.send(&Message::Ack { seq: frame.seq() }).await;
    device.send(&hello(Role::CardReader)).await;
    assert_eq!(host.recv().await, Message::Ack { seq: frame.seq() });
    let frame = host.recv_frame().await;
    assert_eq!(
        Message::from_frame(&frame).unwrap(),
        hello(Role::CardReader)
    );
    host.send(&Message::Ack { seq: frame.seq() }).await;
    assert_eq!(device.recv().await, Message::Ack { seq: frame.seq() });

    // A keep-alive and its ACK, to show the link stays usable.
    host.send(&Message::KeepAlive).await;
    let frame = device.recv_frame().await;
    assert_eq!(Message::from_frame(&frame).unwrap(), Message::KeepAlive);
    device.send(&Message::Ack { seq: frame.seq() }).await;
    assert_eq!(host.recv().await, Message::Ack { seq: frame.seq() });
}

#[tokio::test]
async fn ble_long_qr_frame_is_cut_into_mtu_sized_writes_and_arrives_intact() {
    let (mock, listener) = rig(23);
    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = accept(&listener).await;

    let qr = Message::ShowQr {
        payload: format!(
            "upi://pay?pa=shop@bank&pn=Counter&am=123.45&tn={}",
            "x".repeat(300)
        ),
    };
    let sent = host.send(&qr).await;
    assert!(sent.len() >= 300);
    assert_eq!(device.recv().await, qr);

    let writes = mock.writes(READER);
    assert!(writes.len() > 1, "one write for {} bytes", sent.len());
    for (value, kind) in &writes {
        assert!(
            value.len() <= 20,
            "a {}-byte write with ATT MTU 23",
            value.len()
        );
        assert_eq!(kind, "command", "NUS RX allows write without response");
    }
    let joined: Vec<u8> = writes.iter().flat_map(|(v, _)| v.clone()).collect();
    assert_eq!(joined, sent, "writes are the frame, in order");
}

#[tokio::test]
async fn ble_busy_or_not_ready_bluez_is_asked_again_by_scan_and_connect() {
    // Right after bluetoothd (re)starts it answers Busy / NotReady: not the technician's
    // problem, and not a reason to fail their first command.
    let (mock, listener) = rig(23);
    mock.fail_next(
        "StartDiscovery",
        "org.bluez.Error.NotReady",
        "Resource Not Ready",
    );
    let found = ble::scan(Duration::from_millis(300)).await;
    assert!(
        matches!(&found, Ok(list) if list.iter().any(|e| e.address == READER)),
        "scan after NotReady: {found:?}\n{}",
        mock.logs()
    );
    mock.fail_next(
        "Connect",
        "org.bluez.Error.Busy",
        "Operation already in progress",
    );
    let _connection = connect(&mock).await;
    let _device = accept(&listener).await;
}

#[tokio::test]
async fn ble_scan_waits_for_an_adapter_that_comes_late() {
    let (mock, _listener) = rig(23);
    mock.remove_adapter("hci0");
    let add_later = {
        let bus = mock.bus_address().to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            common::bluez::add_adapter_on(&bus, "hci0");
        })
    };
    let found = ble::scan(Duration::from_millis(300)).await;
    add_later.join().unwrap();
    assert!(
        found.is_ok(),
        "scan before the adapter came: {found:?}\n{}",
        mock.logs()
    );
}

#[tokio::test]
async fn ble_bluez_error_on_connect_is_refused_naming_device_and_cause() {
    let (mock, listener) = rig(23);
    mock.fail_next(
        "Connect",
        "org.bluez.Error.Failed",
        "Software caused connection abort",
    );
    let transport = BleTransport::new(READER).unwrap();
    let err = failed_connect(&transport, "connect succeeded despite the BlueZ error").await;
    let TransportError::Refused(text) = &err else {
        panic!("expected Refused, got {err:?}");
    };
    for part in [
        READER,
        "org.bluez.Error.Failed",
        "Software caused connection abort",
    ] {
        assert!(text.contains(part), "{text:?} does not mention {part}");
    }

    // The fault was one-shot: the next attempt (the caller's retry) gets through.
    let _connection = connect(&mock).await;
    let _device = accept(&listener).await;
}

#[tokio::test]
async fn ble_a_link_whose_services_never_resolve_is_hung_up_and_tried_afresh() {
    let (mock, listener) = rig(23);
    mock.stall_services_once(READER);
    let transport = BleTransport::new(READER).unwrap().with_options(BleOptions {
        discovery_timeout: Duration::from_millis(500),
        ..BleOptions::default()
    });
    let err = failed_connect(&transport, "connected without services").await;
    let TransportError::Absent(text) = &err else {
        panic!("expected Absent, got {err:?}");
    };
    assert!(
        text.contains(READER) && text.contains("did not resolve within 500ms"),
        "{text}"
    );
    // Hung up: the device side saw the stale link go; the next attempt is a fresh link.
    accept(&listener).await.expect_eof().await;
    let _connection = tokio::time::timeout(PATIENCE, transport.connect())
        .await
        .expect("second connect hung")
        .unwrap_or_else(|e| panic!("second connect failed: {e}\n{}", mock.logs()));
    let _device = accept(&listener).await;
}

#[tokio::test]
async fn ble_bluez_error_on_start_notify_is_refused_and_hangs_up() {
    let (mock, listener) = rig(23);
    mock.fail_next(
        "StartNotify",
        "org.bluez.Error.NotPermitted",
        "Read not permitted",
    );
    let transport = BleTransport::new(READER).unwrap();
    let err = failed_connect(&transport, "connect succeeded without notifications").await;
    let TransportError::Refused(text) = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(
        text.contains(READER) && text.contains("org.bluez.Error.NotPermitted"),
        "{text}"
    );
    // The half-open link was dropped: the device side saw it go.
    accept(&listener).await.expect_eof().await;
}

#[tokio::test]
async fn ble_bluez_error_on_write_ends_the_stream() {
    let (mock, listener) = rig(23);
    let mut host = Peer::new(connect(&mock).await.stream);
    let _device = accept(&listener).await;
    mock.fail_next("WriteValue", "org.bluez.Error.Failed", "Not connected");
    host.send(&hello(Role::Host)).await;
    host.expect_eof().await;
}

#[tokio::test]
async fn ble_unknown_device_is_unseen_after_a_whole_scan() {
    let (_mock, _listener) = rig(23);
    let transport = BleTransport::new("C0:FF:EE:99:99:99")
        .unwrap()
        .with_options(BleOptions {
            scan_timeout: Duration::from_millis(300),
            ..BleOptions::default()
        });
    let err = failed_connect(&transport, "connected to a device that does not exist").await;
    // The scan was itself the wait for the device: the device manager scans again at once.
    let TransportError::Unseen(text) = &err else {
        panic!("expected Unseen, got {err:?}");
    };
    assert!(text.contains("C0:FF:EE:99:99:99"), "{text}");
}

#[tokio::test]
async fn ble_device_side_disconnect_mid_exchange_ends_the_stream() {
    let (mock, listener) = rig(23);
    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = accept(&listener).await;

    host.send(&hello(Role::Host)).await;
    device.recv_frame().await;
    // The reader walks out of range before it answers.
    mock.disconnect_from_device(READER);
    host.expect_eof().await;
    device.expect_eof().await;
}

#[tokio::test]
async fn ble_reader_closing_its_side_is_a_disconnect() {
    let (mock, listener) = rig(23);
    let mut host = Peer::new(connect(&mock).await.stream);
    let device = accept(&listener).await;
    drop(device);
    host.expect_eof().await;
}

#[tokio::test]
async fn ble_closing_the_stream_disconnects_the_device() {
    let (mock, listener) = rig(23);
    let connection = connect(&mock).await;
    let mut device = accept(&listener).await;
    drop(connection);
    device.expect_eof().await;
    // And a new connection is possible afterwards (the reconnect after link loss).
    let _again = connect(&mock).await;
    let _device = accept(&listener).await;
}

#[tokio::test]
async fn ble_connect_scans_for_a_device_bluez_has_not_seen_yet() {
    let mock = MockBluez::start();
    let endpoint = mock.dir().join("reader.sock");
    let listener = UnixListener::bind(&endpoint).unwrap();
    mock.add_nus_device_on_scan(READER, "QPOS-mini", -60, &endpoint, 23);

    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = accept(&listener).await;
    assert!(mock.logs().contains("StartDiscovery"), "{}", mock.logs());
    host.send(&Message::KeepAlive).await;
    assert_eq!(device.recv().await, Message::KeepAlive);
}

/// A pty pair: the mock opens the slave by path, as it would the link of
/// `posbridge emulate card-reader --pty LINK`; the test plays the reader on the master.
fn open_pty() -> (std::fs::File, std::path::PathBuf, std::fs::File) {
    use std::os::fd::AsRawFd;
    let (master, slave) = common::pty();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
    (master, path, slave)
}

#[tokio::test]
async fn ble_pty_endpoint_carries_frames_like_an_emulated_reader() {
    let mock = MockBluez::start();
    // Keep our slave fd open for the whole test: the last close hangs the pty up.
    let (master, slave_path, _slave) = open_pty();
    mock.add_nus_device(READER, "QPOS-mini", -48, &slave_path, 23);

    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = Peer::new(tokio::fs::File::from_std(master));
    host.send(&hello(Role::Host)).await;
    assert_eq!(device.recv().await, hello(Role::Host));
    device.send(&hello(Role::CardReader)).await;
    assert_eq!(host.recv().await, hello(Role::CardReader));
}

#[tokio::test]
async fn ble_panic_inside_bluez_async_is_refused_and_not_fatal() {
    let (mock, listener) = rig(23);
    mock.break_next_introspection(READER);
    let transport = BleTransport::new(READER).unwrap();
    let err = failed_connect(&transport, "connect succeeded with broken introspection").await;
    let TransportError::Refused(text) = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(
        text.contains(READER) && text.contains("failed internally"),
        "{text}"
    );

    // Still alive, and the retry works.
    let mut host = Peer::new(connect(&mock).await.stream);
    let mut device = accept(&listener).await;
    host.send(&Message::KeepAlive).await;
    assert_eq!(device.recv().await, Message::KeepAlive);
}
