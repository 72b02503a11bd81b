//! The lifepay route against a scripted reader: the real daemon pairs a pty whose far end the
//! test drives frame by frame, as a version 2 reader that answers DUPLICATE. A DUPLICATE is
//! never the sale's answer: the daemon asks GET_RESULT by the same (backend) id, and only
//! that answer settles the sale; when it does not, the outcome is unknown. A STAGE (link
//! protocol version 4) reaches a POS that asked for progress only from a version 4 session and
//! only about the running sale.

mod common;

use std::path::{Path, PathBuf};

use posbridge::device::link::{
    Hello, Message, Outcome, ReaderStage, ResultWindow, Role, SaleResult,
};
use posbridge::device::scripted::ScriptedDevice;
use tokio_serial::{SerialPort, SerialStream};

use common::{json_of, lifepay_daemon};

struct Reader {
    dev: ScriptedDevice<SerialStream>,
    _host_end: SerialStream,
    /// The link protocol version its HELLO announces.
    version: u8,
}

fn plug(link: &Path) -> Reader {
    let (device, host_end) = SerialStream::pair().unwrap();
    let target = PathBuf::from(host_end.name().unwrap());
    std::os::unix::fs::symlink(target, link).unwrap();
    Reader {
        dev: ScriptedDevice::new(device),
        _host_end: host_end,
        version: 2,
    }
}

impl Reader {
    /// The host's next request; HELLOs are answered as a reader of `version` (2 unless set),
    /// keep-alives ACKed.
    async fn next(&mut self) -> Message {
        loop {
            let (frame, msg) = self.dev.message().await;
            match msg {
                Message::KeepAlive => self.dev.ack(frame.seq()).await,
                Message::Hello(_) => {
                    self.dev.ack(frame.seq()).await;
                    self.dev.seq = 0;
                    self.dev
                        .send(&Message::Hello(Hello {
                            protocol_version: self.version,
                            role: Role::CardReader,
                            model: "scripted".into(),
                            firmware: "2".into(),
                            serial: "SCR1".into(),
                        }))
                        .await;
                }
                Message::Ack { .. } => {}
                other => {
                    self.dev.ack(frame.seq()).await;
                    return other;
                }
            }
        }
    }
}

fn approved(id: &str) -> SaleResult {
    SaleResult {
        request_id: id.into(),
        outcome: Outcome::Approved,
        rrn: Some("123456789012".into()),
        approval_code: Some("A1B2C3".into()),
        masked_pan: Some("411111******1111".into()),
        scheme: Some("VISA".into()),
        message: "Approved".into(),
    }
}

/// A lifepay daemon (reader password `password`) with the scripted reader on `dir/reader`
/// paired: the reader answers the pairing HELLO; any other request before pairing ends is a bug.
async fn paired(dir: &Path, password: &str) -> (common::Daemon, Reader) {
    paired_at(dir, password, 2).await
}

/// [`paired`], the reader speaking link protocol `version`.
async fn paired_at(dir: &Path, password: &str, version: u8) -> (common::Daemon, Reader) {
    let link = dir.join("reader");
    let mut reader = plug(&link);
    reader.version = version;
    let d = lifepay_daemon(dir, password);
    let pairing = d.cli_in_thread(&[
        "pair",
        &format!("serial:{}", link.display()),
        "--role",
        "card-reader",
        "--json",
    ]);
    let paired = tokio::task::spawn_blocking(move || pairing.join().unwrap());
    tokio::pin!(paired);
    let out = tokio::select! {
        out = &mut paired => out.unwrap(),
        msg = reader.next() => panic!("unexpected {msg:?} while pairing"),
    };
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    (d, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_answer_is_checked_by_get_result_and_never_taken_as_the_outcome() {
    tokio::time::timeout(
        std::time::Duration::from_secs(90),
        duplicate_then_get_result(),
    )
    .await
    .expect("the scripted exchange finished");
}

async fn duplicate_then_get_result() {
    let dir = tempfile::tempdir().unwrap();
    let (d, mut reader) = paired(dir.path(), "pw-dup").await;
    for (request_id, settles) in [("dup-1", true), ("dup-2", false)] {
        let paying = d.cli_in_thread(&[
            "pay",
            "--provider",
            "lifepay",
            "--amount",
            "2500",
            "--request-id",
            request_id,
            "--json",
        ]);
        let Message::StartSale(start) = reader.next().await else {
            panic!("expected START_SALE")
        };
        let id = start.request_id.clone();
        assert_eq!(
            id,
            d.backend_id(request_id),
            "the reader gets the backend id"
        );
        reader
            .dev
            .send(&Message::Duplicate {
                request_id: id.clone(),
            })
            .await;
        assert_eq!(
            reader.next().await,
            Message::GetResult {
                request_id: id.clone()
            },
            "a DUPLICATE is followed by GET_RESULT by our own id"
        );
        let answer = if settles {
            Message::SaleResult(approved(&id))
        } else {
            Message::ResultNotFound { request_id: id }
        };
        reader.dev.send(&answer).await;
        let out = tokio::task::spawn_blocking(move || paying.join().unwrap())
            .await
            .unwrap();
        let r = json_of(&out);
        if settles {
            assert_eq!(r["code"], 0, "{r}");
            assert_eq!(r["data"]["status"], "approved");
        } else {
            // A reader contradicting itself settles nothing: unknown, never "not charged".
            assert_eq!(r["error_type"], "unknown_result_error", "{r}");
            assert_eq!(r["reason"], "duplicate", "{r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_answer_naming_our_own_sale_is_in_progress_never_not_charged() {
    tokio::time::timeout(std::time::Duration::from_secs(90), busy_with_our_own_sale())
        .await
        .expect("the scripted exchange finished");
}

/// A reader that answers BUSY naming the very sale it was sent is running that sale: the
/// answer is "in progress", not "busy with another operation; nothing was charged".
async fn busy_with_our_own_sale() {
    let dir = tempfile::tempdir().unwrap();
    let (d, mut reader) = paired(dir.path(), "pw-busy").await;
    let paying = d.cli_in_thread(&[
        "pay",
        "--provider",
        "lifepay",
        "--amount",
        "2500",
        "--request-id",
        "busy-own",
        "--json",
    ]);
    let Message::StartSale(start) = reader.next().await else {
        panic!("expected START_SALE")
    };
    reader
        .dev
        .send(&Message::Busy {
            request_id: start.request_id.clone(),
        })
        .await;
    let out = tokio::task::spawn_blocking(move || paying.join().unwrap())
        .await
        .unwrap();
    let r = json_of(&out);
    assert_eq!(r["error_type"], "unknown_result_error", "{r}");
    assert_eq!(r["reason"], "in_progress", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_is_told_only_from_a_version_4_session_and_only_about_the_running_sale() {
    tokio::time::timeout(std::time::Duration::from_secs(90), stages_by_version())
        .await
        .expect("the scripted exchange finished");
}

/// The reader sends STAGE PIN entry about another id, card read about the running sale, then
/// the result: a version 4 session tells the POS `on_terminal` and `card_read` (the other id is
/// ignored); a version 2 session, where no STAGE belongs, only `on_terminal` (the host ACKs the
/// STAGE and ignores it). Either way the answer is the SALE_RESULT's.
async fn stages_by_version() {
    for (version, want) in [
        (4, &["on_terminal", "card_read"][..]),
        (2, &["on_terminal"][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut reader) = paired_at(dir.path(), "pw-stage", version).await;
        let mut pos = d.client();
        let request_id = format!("stage-v{version}");
        let req = serde_json::json!({"action": "pay", "provider": "lifepay", "amount": 2500,
            "request_id": request_id, "progress": true});
        let paying = std::thread::spawn(move || pos.request_with_events(&req));
        let start = loop {
            match reader.next().await {
                Message::StartSale(start) => break start,
                Message::GetResultWindow => {
                    let window = ResultWindow {
                        store: 7,
                        oldest: 0,
                        next: 0,
                    };
                    reader.dev.send_acked(&Message::ResultWindow(window)).await;
                }
                other => panic!("expected START_SALE, got {other:?}"),
            }
        };
        let id = start.request_id.clone();
        let told = [
            ("P-another-sale", ReaderStage::PinEntry),
            (id.as_str(), ReaderStage::CardRead),
        ];
        for (about, stage) in told {
            let stage = Message::Stage {
                request_id: about.into(),
                stage,
            };
            reader.dev.send_acked(&stage).await;
        }
        reader
            .dev
            .send_acked(&Message::SaleResult(approved(&id)))
            .await;
        let (events, answer) = tokio::task::spawn_blocking(move || paying.join().unwrap())
            .await
            .unwrap();
        assert_eq!(answer["code"], 0, "{answer}\n{}", d.log());
        assert_eq!(
            common::stages(&events),
            want,
            "version {version}: {events:?}"
        );
    }
}
