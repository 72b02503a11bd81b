//! The link session over a real serial transport: posbridge opens one end of a pty by path,
//! exactly as in production; the test scripts the device end byte by byte (garbage, damaged
//! frames, silence, unplugging).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use posbridge::device::link::{
    self, Currency, Message, NakReason, Outcome, PaymentRequest, Role, SaleResult,
};
use posbridge::device::reader::{Answer, CardReader, ReaderError};
use posbridge::device::scripted::ScriptedDevice;
use posbridge::device::serial::SerialTransport;
use posbridge::device::session::{LinkError, Session};
use posbridge::device::transport::{Transport, TransportError};
use tokio_serial::{SerialPort, SerialStream};

const WAIT: Duration = Duration::from_secs(10);

/// A pty whose host end is reachable at a stable path (a symlink, as udev gives real readers).
struct Plug {
    device: ScriptedDevice<SerialStream>,
    /// Held so the pty stays up until the host opens it (see /work/shared/testing.md).
    _host_end: SerialStream,
}

fn plug(link: &Path) -> Plug {
    let (device, host_end) = SerialStream::pair().unwrap();
    let target = PathBuf::from(host_end.name().unwrap());
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
    Plug {
        device: ScriptedDevice::new(device),
        _host_end: host_end,
    }
}

fn sale(id: &str, amount: u64) -> PaymentRequest {
    PaymentRequest {
        request_id: id.into(),
        amount,
        currency: Currency::new("INR").unwrap(),
        primary_reference: None,
        credentials: None,
        details: None,
    }
}

fn result(id: &str, outcome: Outcome) -> SaleResult {
    SaleResult {
        request_id: id.into(),
        outcome,
        rrn: Some("123456789012".into()),
        approval_code: (outcome == Outcome::Approved).then(|| "A1B2C3".into()),
        masked_pan: Some("411111******1111".into()),
        scheme: Some("VISA".into()),
        message: "done".into(),
    }
}

/// Opens the host session while the scripted device answers HELLO.
async fn connect(link: &Path, dev: &mut ScriptedDevice<SerialStream>) -> CardReader {
    let transport = SerialTransport::new(link, 115_200);
    let opening = tokio::spawn(async move {
        let conn = transport.connect().await.unwrap();
        Session::open(conn, Role::CardReader).await.unwrap()
    });
    dev.handshake(Role::CardReader, "SCRIPT-1").await;
    let (session, hello) = opening.await.unwrap();
    assert_eq!(hello.serial, "SCRIPT-1");
    CardReader::new("card-reader-test".into(), Arc::new(session))
}

/// The device side of one sale: START_SALE acknowledged, then `answer` until acknowledged.
async fn serve_sale(dev: &mut ScriptedDevice<SerialStream>, answer: SaleResult) -> PaymentRequest {
    let (frame, msg) = dev.request().await;
    let Message::StartSale(req) = msg else {
        panic!("expected START_SALE, got {msg:?}")
    };
    dev.ack(frame.seq()).await;
    dev.send_acked(&Message::SaleResult(answer)).await;
    req
}

#[tokio::test]
async fn sale_approved() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.sale(sale("ok-1", 2500), WAIT).await });
    let req = serve_sale(&mut p.device, result("ok-1", Outcome::Approved)).await;
    assert_eq!((req.request_id.as_str(), req.amount), ("ok-1", 2500));
    assert_eq!(
        host.await.unwrap().unwrap(),
        Answer::Done(result("ok-1", Outcome::Approved))
    );
}

#[tokio::test]
async fn sale_declined() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.sale(sale("no-1", 2551), WAIT).await });
    serve_sale(&mut p.device, result("no-1", Outcome::Declined)).await;
    match host.await.unwrap().unwrap() {
        Answer::Done(r) => {
            assert_eq!(r.outcome, Outcome::Declined);
            assert_eq!(r.approval_code, None);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn garbage_between_frames_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.sale(sale("g-1", 100), WAIT).await });
    let (frame, _) = p.device.request().await;
    p.device
        .write(b"\r\nBOOT v1.2 \xA5\xA5\x00\xFF noise ")
        .await;
    p.device.ack(frame.seq()).await;
    p.device.write(&[0xA5, 0x5A, 0x07, 0x13, 0x00]).await; // a false start (bad version)
    p.device
        .send_acked(&Message::SaleResult(result("g-1", Outcome::Approved)))
        .await;
    assert!(matches!(host.await.unwrap().unwrap(), Answer::Done(_)));
}

#[tokio::test]
async fn corrupted_frame_is_naked_and_the_retransmission_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.sale(sale("c-1", 100), WAIT).await });
    let (frame, _) = p.device.request().await;
    p.device.ack(frame.seq()).await;
    let seq = p.device.seq;
    let good = link::encode(
        &Message::SaleResult(result("c-1", Outcome::Approved))
            .to_frame(seq)
            .unwrap(),
    );
    let mut bad = good.clone();
    bad[12] ^= 0x40; // inside the payload
    p.device.write(&bad).await;
    let (_, nak) = p.device.message().await;
    assert_eq!(
        nak,
        Message::Nak {
            seq,
            reason: NakReason::BadCrc
        }
    );
    p.device.write(&good).await;
    assert_eq!(p.device.message().await.1, Message::Ack { seq });
    assert_eq!(
        host.await.unwrap().unwrap(),
        Answer::Done(result("c-1", Outcome::Approved))
    );
}

#[tokio::test]
async fn device_that_stops_answering_is_a_link_down_error() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    // The device keeps the line open but never answers again.
    let err = reader.sale(sale("quiet-1", 100), WAIT).await.unwrap_err();
    assert_eq!(
        err,
        ReaderError::Link(LinkError::NoAck {
            what: "START_SALE",
            attempts: 4
        })
    );
    assert!(!reader.session().is_up());
}

#[tokio::test]
async fn unplugged_mid_sale_then_replugged_get_result_reconciles_one_charge() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.sale(sale("cut-1", 4500), WAIT).await });
    let (frame, msg) = p.device.request().await;
    assert!(matches!(msg, Message::StartSale(_)));
    p.device.ack(frame.seq()).await;
    // The card was charged; the cable is pulled before the answer.
    drop(p);
    let err = host.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ReaderError::Link(ref e) if e.is_link_down()),
        "{err:?}"
    );

    // Replugged (a new pty behind the same udev-style name).
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let host = tokio::spawn(async move { reader.get_result("cut-1", WAIT).await });
    let (frame, msg) = p.device.request().await;
    assert_eq!(
        msg,
        Message::GetResult {
            request_id: "cut-1".into()
        },
        "reconciliation asks; it never starts the sale again"
    );
    p.device.ack(frame.seq()).await;
    p.device
        .send_acked(&Message::SaleResult(result("cut-1", Outcome::Approved)))
        .await;
    assert_eq!(
        host.await.unwrap().unwrap(),
        Answer::Done(result("cut-1", Outcome::Approved))
    );
    // No second START_SALE arrives. A KEEPALIVE (after 2 s of the host's silence) or a
    // retransmitted GET_RESULT (an ACK that came late on a loaded machine) is the link doing its
    // job, not a sale started again.
    let quiet = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok((_, msg)) = tokio::time::timeout_at(quiet, p.device.request()).await {
        assert!(
            matches!(msg, Message::KeepAlive | Message::GetResult { .. }),
            "unexpected frame after reconciliation: {msg:?}"
        );
    }
}

#[tokio::test]
async fn the_port_is_opened_exclusively() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let _p = plug(&link);
    let transport = SerialTransport::new(&link, 9600);
    let _first = transport.connect().await.unwrap();
    let err = transport.connect().await.unwrap_err();
    assert!(matches!(err, TransportError::Refused(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&link.display().to_string()), "{text}");
    assert!(text.contains("already open"), "{text}");
}

#[tokio::test]
async fn any_baud_rate_from_config_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let _p = plug(&link);
    for baud in [9600, 57_600, 250_000] {
        let conn = SerialTransport::new(&link, baud).connect().await;
        assert!(conn.is_ok(), "baud {baud}: {:?}", conn.err());
    }
}

#[tokio::test]
async fn duplicate_frame_is_acknowledged_but_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let mut p = plug(&link);
    let reader = connect(&link, &mut p.device).await;
    let session = reader.session().clone();
    let first = Message::InProgress {
        request_id: "d-1".into(),
    };
    let seq = p.device.seq;
    let bytes = p.device.send(&first).await;
    assert_eq!(p.device.message().await.1, Message::Ack { seq });
    p.device.write(&bytes).await; // as if our ACK had been lost
    assert_eq!(p.device.message().await.1, Message::Ack { seq });
    let second = Message::Busy {
        request_id: "d-2".into(),
    };
    p.device.send_acked(&second).await;
    assert_eq!(session.recv().await.unwrap(), first);
    assert_eq!(session.recv().await.unwrap(), second);
}
