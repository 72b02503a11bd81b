//! Session behaviour against a scripted device over an in-memory duplex, on a paused clock.

use std::time::Duration;

use tokio::io::DuplexStream;

use super::*;
use crate::device::link::{self, kind, Currency, Message, NakReason, PaymentRequest, Role};
use crate::device::scripted::ScriptedDevice;

fn pair() -> (Connection, ScriptedDevice<DuplexStream>) {
    let (host, device) = tokio::io::duplex(4096);
    let conn = Connection {
        stream: Box::new(host),
        mtu: usize::MAX,
        ack_timeout: Duration::from_millis(300),
        private: true,
        ble: None,
    };
    (conn, ScriptedDevice::new(device))
}

async fn open(role: Role) -> (Session, ScriptedDevice<DuplexStream>) {
    let (conn, mut dev) = pair();
    let opening = tokio::spawn(Session::open(conn, Role::CardReader));
    dev.handshake(role, "SN1").await;
    let (session, hello) = opening.await.unwrap().unwrap();
    assert_eq!(hello.serial, "SN1");
    (session, dev)
}

fn sale(id: &str) -> Message {
    Message::StartSale(PaymentRequest {
        request_id: id.into(),
        amount: 2500,
        currency: Currency::new("INR").unwrap(),
        primary_reference: None,
        credentials: None,
        details: None,
    })
}

#[tokio::test(start_paused = true)]
async fn hello_exchange_then_ack_completes_a_send() {
    let (session, mut dev) = open(Role::CardReader).await;
    assert_eq!(session.hello().model, "scripted");
    let sending = tokio::spawn(async move {
        session.send(sale("s-1")).await.unwrap();
        session
    });
    let (frame, msg) = dev.request().await;
    assert_eq!(frame.seq(), 1, "HELLO is seq 0, the next frame 1");
    assert_eq!(msg, sale("s-1"));
    dev.ack(1).await;
    let session = sending.await.unwrap();
    assert!(session.is_up());
}

#[tokio::test(start_paused = true)]
async fn a_device_of_another_role_is_refused_by_name() {
    let (conn, mut dev) = pair();
    let opening = tokio::spawn(Session::open(conn, Role::CardReader));
    let (frame, _) = dev.message().await;
    dev.ack(frame.seq()).await;
    dev.seq = 0;
    dev.send(&Message::Hello(link::Hello {
        protocol_version: 1,
        role: Role::DqrDisplay,
        model: "m".into(),
        firmware: "f".into(),
        serial: "s".into(),
    }))
    .await;
    let err = opening.await.unwrap().unwrap_err();
    assert!(matches!(err, LinkError::WrongRole { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the device answered as a dqr-display, but it was expected to be a card-reader"
    );
}

#[tokio::test(start_paused = true)]
async fn unanswered_frame_is_sent_four_times_byte_for_byte_then_link_down() {
    let (session, mut dev) = open(Role::CardReader).await;
    let sending = tokio::spawn(async move { (session.send(sale("s-2")).await, session) });
    let first = dev.request().await.0;
    for _ in 0..3 {
        let again = dev.frame().await;
        assert_eq!(again, first, "a retransmission is the same frame");
    }
    let (result, session) = sending.await.unwrap();
    assert_eq!(
        result.unwrap_err(),
        LinkError::NoAck {
            what: "START_SALE",
            attempts: 4
        }
    );
    assert_eq!(session.closed().await.to_string(), result_text());
    assert!(session.recv().await.is_err());
}

fn result_text() -> String {
    "the device did not acknowledge START_SALE after 4 transmissions".into()
}

#[tokio::test(start_paused = true)]
async fn nak_bad_crc_retransmits_at_once() {
    let (session, mut dev) = open(Role::CardReader).await;
    let sending = tokio::spawn(async move { session.send(sale("s-3")).await });
    let first = dev.request().await.0;
    let nak = link::encode(
        &Message::Nak {
            seq: first.seq(),
            reason: NakReason::BadCrc,
        }
        .to_frame(0)
        .unwrap(),
    );
    let before = tokio::time::Instant::now();
    dev.write(&nak).await;
    let again = dev.frame().await;
    assert_eq!(again, first);
    assert!(
        before.elapsed() < Duration::from_millis(300),
        "not after the ACK timeout"
    );
    dev.ack(first.seq()).await;
    sending.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn nak_not_ready_redoes_hello_and_resends_under_a_new_session() {
    let (session, mut dev) = open(Role::CardReader).await;
    let sending = tokio::spawn(async move { session.send(sale("s-4")).await });
    let first = dev.request().await.0;
    let nak = Message::Nak {
        seq: first.seq(),
        reason: NakReason::NotReady,
    };
    dev.write(&link::encode(&nak.to_frame(0).unwrap())).await;
    dev.handshake(Role::CardReader, "SN1").await;
    let (frame, msg) = dev.request().await;
    assert_eq!(msg, sale("s-4"));
    assert_eq!(frame.seq(), 1, "numbering restarts after HELLO");
    dev.ack(1).await;
    sending.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn duplicate_frame_is_acked_again_but_delivered_once() {
    let (session, mut dev) = open(Role::CardReader).await;
    let result = Message::InProgress {
        request_id: "s-5".into(),
    };
    let bytes = dev.send(&result).await;
    assert_eq!(dev.message().await.1, Message::Ack { seq: 1 });
    dev.write(&bytes).await; // our ACK "was lost": the same frame again
    assert_eq!(dev.message().await.1, Message::Ack { seq: 1 });
    let next = Message::Busy {
        request_id: "other".into(),
    };
    dev.send_acked(&next).await;
    assert_eq!(session.recv().await.unwrap(), result);
    assert_eq!(
        session.recv().await.unwrap(),
        next,
        "no second delivery of seq 1"
    );
}

#[tokio::test(start_paused = true)]
async fn corrupted_frame_from_the_device_is_naked() {
    let (session, mut dev) = open(Role::CardReader).await;
    let msg = Message::InProgress {
        request_id: "s-6".into(),
    };
    let mut bytes = link::encode(&msg.to_frame(1).unwrap());
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    let mut noisy = b"\x00garbage\xA5".to_vec();
    noisy.extend_from_slice(&bytes);
    dev.write(&noisy).await;
    let (frame, nak) = dev.message().await;
    assert_eq!(frame.kind(), kind::NAK);
    assert_eq!(
        nak,
        Message::Nak {
            seq: 1,
            reason: NakReason::BadCrc
        }
    );
    dev.seq = 1;
    dev.send_acked(&msg).await;
    assert_eq!(session.recv().await.unwrap(), msg);
}

#[tokio::test(start_paused = true)]
async fn keepalive_after_two_seconds_of_host_silence_and_down_if_unanswered() {
    let (session, mut dev) = open(Role::CardReader).await;
    let start = tokio::time::Instant::now();
    let (frame, msg) = dev.message().await;
    assert_eq!(msg, Message::KeepAlive);
    assert!(start.elapsed() >= KEEPALIVE_AFTER);
    dev.ack(frame.seq()).await;
    // Now stay silent: four transmissions of the next keep-alive, then down.
    for _ in 0..4 {
        assert_eq!(dev.message().await.1, Message::KeepAlive);
    }
    assert_eq!(
        session.closed().await,
        LinkError::NoAck {
            what: "KEEPALIVE",
            attempts: 4
        }
    );
}

#[tokio::test(start_paused = true)]
async fn eof_is_link_down() {
    let (session, dev) = open(Role::CardReader).await;
    drop(dev);
    assert_eq!(session.closed().await, LinkError::Closed);
    assert_eq!(
        session.send(Message::CloseShift).await,
        Err(LinkError::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn device_that_never_answers_hello_fails_open() {
    let (conn, mut dev) = pair();
    let opening = tokio::spawn(Session::open(conn, Role::CardReader));
    for _ in 0..4 {
        assert!(matches!(dev.message().await.1, Message::Hello(_)));
    }
    let err = opening.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        LinkError::NoAck {
            what: "HELLO",
            attempts: 4
        }
    );
}

#[tokio::test(start_paused = true)]
async fn device_link_answers_hello_and_refuses_frames_before_it() {
    let (host, device) = tokio::io::duplex(4096);
    let conn = Connection {
        stream: Box::new(device),
        mtu: 20,
        ack_timeout: Duration::from_millis(300),
        private: true,
        ble: None,
    };
    let hello = link::Hello {
        protocol_version: 1,
        role: Role::DqrDisplay,
        model: "emu".into(),
        firmware: "1".into(),
        serial: "D1".into(),
    };
    let mut link = DeviceLink::serve(conn, hello, None);
    let mut h = ScriptedDevice::new(host);
    h.seq = 1;
    h.send(&Message::Clear).await;
    assert_eq!(
        h.message().await.1,
        Message::Nak {
            seq: 1,
            reason: NakReason::NotReady
        }
    );
    // A real host session over the same stream works end to end.
    let stream: Box<dyn ByteStream> = Box::new(h.io);
    let (session, got) = Session::open(
        Connection {
            stream,
            mtu: usize::MAX,
            ack_timeout: Duration::from_millis(300),
            private: true,
            ble: None,
        },
        Role::DqrDisplay,
    )
    .await
    .unwrap();
    assert_eq!(got.serial, "D1");
    // The firmware is told the host's HELLO (its protocol version), then gets the message.
    assert!(matches!(
        link.inbound.recv().await,
        Some(Message::Hello(link::Hello {
            role: Role::Host,
            protocol_version: PROTOCOL_VERSION,
            ..
        }))
    ));
    session.send(Message::Clear).await.unwrap();
    assert_eq!(link.inbound.recv().await, Some(Message::Clear));
}

/// Copies bytes one way, flipping one bit in `percent` of the reads (seeded); counts each read
/// it damaged in `damaged`.
async fn corrupting_relay(
    mut from: tokio::io::ReadHalf<DuplexStream>,
    mut to: tokio::io::WriteHalf<DuplexStream>,
    percent: u64,
    mut seed: u64,
    damaged: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 2048];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed % 100 < percent {
            buf[(seed >> 8) as usize % n] ^= 1 << ((seed >> 20) % 8);
            damaged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Of 12 seeds, links that must come up (all 12 do), messages that must be delivered (598 of
/// 600 are) and reads that must be damaged (252 are) on the damaged line below.
const MIN_LINKS_UP: usize = 10;
const MIN_DELIVERED: usize = 500;
const MIN_DAMAGED: usize = 100;

/// Both directions damaged: every message acknowledged to its sender arrives exactly once and
/// in order; at most the one message in flight when a link dies may be unconfirmed. And the
/// test proves it tested something: the line was damaged (reads flipped, counted), most links
/// came up, and most messages were delivered (minimums below, from what the 12 seeds do).
#[tokio::test(start_paused = true)]
async fn on_a_damaged_line_acknowledged_messages_arrive_exactly_once_in_order() {
    let (mut links_up, mut delivered, mut damaged_total) = (0usize, 0usize, 0usize);
    for seed in 1..=12u64 {
        let damaged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (host, host_wire) = tokio::io::duplex(4096);
        let (device_wire, device) = tokio::io::duplex(4096);
        let (hw_read, hw_write) = tokio::io::split(host_wire);
        let (dw_read, dw_write) = tokio::io::split(device_wire);
        tokio::spawn(corrupting_relay(
            hw_read,
            dw_write,
            15,
            seed * 7919,
            damaged.clone(),
        ));
        tokio::spawn(corrupting_relay(
            dw_read,
            hw_write,
            15,
            seed * 104_729,
            damaged.clone(),
        ));
        let conn = |stream: DuplexStream| Connection {
            stream: Box::new(stream),
            mtu: 32,
            ack_timeout: Duration::from_millis(300),
            private: true,
            ble: None,
        };
        let hello = link::Hello {
            protocol_version: 1,
            role: Role::CardReader,
            model: "emu".into(),
            firmware: "1".into(),
            serial: format!("S{seed}"),
        };
        let mut dev = DeviceLink::serve(conn(device), hello, None);
        let opened = tokio::time::timeout(
            Duration::from_secs(60),
            Session::open(conn(host), Role::CardReader),
        )
        .await
        .expect("open is bounded");
        let Ok((session, _)) = opened else {
            // HELLO itself lost four times: a link that never came up proves nothing here, so
            // it is counted against the minimum of links up below.
            damaged_total += damaged.load(std::sync::atomic::Ordering::Relaxed);
            continue;
        };
        links_up += 1;
        let n = 25;
        let mut to_device = Vec::new();
        let mut to_host = Vec::new();
        for i in 0..n {
            let down = Message::GetResult {
                request_id: format!("h{seed}-{i}"),
            };
            let up = Message::InProgress {
                request_id: format!("d{seed}-{i}"),
            };
            let both =
                async { tokio::join!(session.send(down.clone()), dev.sender.send(up.clone())) };
            let (a, b) = tokio::time::timeout(Duration::from_secs(60), both)
                .await
                .expect("sends are bounded by their retransmissions");
            to_device.push((down, a.is_ok()));
            to_host.push((up, b.is_ok()));
            if a.is_err() {
                break;
            }
        }
        // Whatever is delivered, is delivered before its ACK goes out; give the last
        // unacknowledged one its retransmissions, then look.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut got_device = Vec::new();
        while let Ok(m) = dev.inbound.try_recv() {
            // The host's HELLOs reach the firmware too; they are not payload messages.
            if !matches!(m, Message::Hello(_)) {
                got_device.push(m);
            }
        }
        let mut got_host = Vec::new();
        while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(1), session.recv()).await {
            got_host.push(m);
        }
        check_exactly_once(seed, &to_device, &got_device);
        check_exactly_once(seed, &to_host, &got_host);
        delivered += got_device.len() + got_host.len();
        damaged_total += damaged.load(std::sync::atomic::Ordering::Relaxed);
    }
    eprintln!(
        "{links_up} of 12 links up, {delivered} of 600 delivered, {damaged_total} reads damaged"
    );
    assert!(links_up >= MIN_LINKS_UP, "{links_up} of 12 links came up");
    assert!(delivered >= MIN_DELIVERED, "{delivered} messages delivered");
    assert!(
        damaged_total >= MIN_DAMAGED,
        "{damaged_total} reads damaged"
    );
}

fn check_exactly_once(seed: u64, sent: &[(Message, bool)], got: &[Message]) {
    let acked: Vec<&Message> = sent.iter().filter(|(_, ok)| *ok).map(|(m, _)| m).collect();
    assert!(
        got.len() >= acked.len() && got.len() <= sent.len(),
        "seed {seed}: {} delivered, {} acknowledged, {} sent",
        got.len(),
        acked.len(),
        sent.len()
    );
    for (i, m) in got.iter().enumerate() {
        assert_eq!(
            m, &sent[i].0,
            "seed {seed}: delivery {i} out of order or repeated"
        );
    }
}
