//! Issue 16 item 4 against a scripted reader: the real daemon pairs a pty whose far end the
//! test drives frame by frame, so the test decides exactly what the reader got. A sale the
//! reader never received (its START never acknowledged, the link then lost) is settled "not
//! processed" once the reader says it holds every operation since before the START (its
//! version 3 result window) and not this one. A sale whose START the reader did acknowledge,
//! or about which it once answered IN_PROGRESS, is never settled "not processed" by a later
//! RESULT_NOT_FOUND: the outcome stays unknown (a contradiction, checked on).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use posbridge::device::link::{Frame, Hello, Message, ResultWindow, Role};
use posbridge::device::scripted::ScriptedDevice;
use serde_json::Value;
use tokio_serial::{SerialPort, SerialStream};

use common::{lifepay_daemon, Daemon};

struct Reader {
    dev: ScriptedDevice<SerialStream>,
    _host_end: SerialStream,
    version: u8,
}

/// A reader at `link` (replacing what was plugged there before) speaking `version`.
fn plug(link: &Path, version: u8) -> Reader {
    let (device, host_end) = SerialStream::pair().unwrap();
    let target = PathBuf::from(host_end.name().unwrap());
    let tmp = link.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
    Reader {
        dev: ScriptedDevice::new(device),
        _host_end: host_end,
        version,
    }
}

/// The reader's window in these tests: nothing ever evicted, next number 5.
const WINDOW: ResultWindow = ResultWindow {
    store: 0x5EED,
    oldest: 0,
    next: 5,
};

impl Reader {
    /// The host's next request, not yet acknowledged; HELLOs are answered, keep-alives ACKed.
    async fn next_unacked(&mut self) -> (Frame, Message) {
        loop {
            let (frame, msg) = self.dev.message().await;
            match msg {
                Message::KeepAlive => self.dev.ack(frame.seq()).await,
                Message::Hello(_) => {
                    self.dev.ack(frame.seq()).await;
                    self.dev.seq = 0;
                    let hello = Hello {
                        protocol_version: self.version,
                        role: Role::CardReader,
                        model: "scripted".into(),
                        firmware: "3".into(),
                        serial: "WIN1".into(),
                    };
                    self.dev.send(&Message::Hello(hello)).await;
                }
                Message::Ack { .. } => {}
                other => return (frame, other),
            }
        }
    }

    async fn next(&mut self) -> Message {
        let (frame, msg) = self.next_unacked().await;
        self.dev.ack(frame.seq()).await;
        msg
    }
}

async fn paired(dir: &Path, version: u8) -> (Daemon, Reader) {
    let link = dir.join("reader");
    let mut reader = plug(&link, version);
    let d = lifepay_daemon(dir, "pw-window");
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

/// What the reader does with the sale's START.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// It never gets it: no ACK, and the link is lost.
    NeverReceived,
    /// It ACKs it (it has the request), then the link is lost before any answer.
    Acknowledged,
}

/// One sale through a scripted reader of `version`: the START handled as `start`, the link
/// lost, the reader plugged back; it answers GET_RESULT with IN_PROGRESS `in_progress` times,
/// then RESULT_NOT_FOUND, and GET_RESULT_WINDOW with [`WINDOW`] (unchanged: nothing evicted).
/// Returns the daemon's settled answer for the sale.
async fn sale(version: u8, start: Start, in_progress: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (d, mut reader) = paired(dir.path(), version).await;
    let paying = d.cli_in_thread(&[
        "pay",
        "--provider",
        "lifepay",
        "--amount",
        "2500",
        "--request-id",
        "win-1",
        "--json",
    ]);
    if version >= 3 {
        assert_eq!(reader.next().await, Message::GetResultWindow, "asked first");
        reader.dev.send(&Message::ResultWindow(WINDOW)).await;
    }
    let (frame, msg) = reader.next_unacked().await;
    let Message::StartSale(req) = msg else {
        panic!("expected START_SALE, got {msg:?}")
    };
    let id = req.request_id;
    if start == Start::Acknowledged {
        reader.dev.ack(frame.seq()).await;
        // The daemon journals the ACK before it waits for the answer: let it.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(reader); // the link is lost
    let out = tokio::task::spawn_blocking(move || paying.join().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}\n{}", d.log());

    let mut reader = plug(&dir.path().join("reader"), version);
    let d = std::sync::Arc::new(d);
    let asking = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            d.await_result("win-1", Duration::from_secs(60), |a| {
                a["code"] != 2 || a["reason"] == "contradiction"
            })
        })
    };
    tokio::pin!(asking);
    let mut in_progress = in_progress;
    loop {
        let msg = tokio::select! {
            answer = &mut asking => return answer.unwrap(),
            msg = reader.next() => msg,
        };
        let answer = match msg {
            Message::GetResult { request_id } if request_id == id && in_progress > 0 => {
                in_progress -= 1;
                Message::InProgress { request_id }
            }
            Message::GetResult { request_id } if request_id == id => {
                Message::ResultNotFound { request_id }
            }
            Message::GetResultWindow => Message::ResultWindow(WINDOW),
            other => panic!("unexpected {other:?}\n{}", d.log()),
        };
        reader.dev.send(&answer).await;
    }
}

fn within(test: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), test)
            .await
            .expect("the scripted exchange finished")
    });
}

/// (b) A version 3 reader that never received the START, and still holds every operation
/// since before it: not processed, nothing charged.
#[test]
fn a_sale_a_version_3_reader_never_received_is_not_processed() {
    within(async {
        let r = sale(3, Start::NeverReceived, 0).await;
        assert_eq!(r["code"], 1, "{r}");
        assert_eq!(r["reason"], "not_processed", "{r}");
        assert!(
            r["message"].as_str().unwrap().contains("never received"),
            "{r}"
        );
    });
}

/// (b) The same with a version 2 reader (no window): as before, not processed.
#[test]
fn a_sale_a_version_2_reader_never_received_is_not_processed() {
    within(async {
        let r = sale(2, Start::NeverReceived, 0).await;
        assert_eq!(r["code"], 1, "{r}");
        assert_eq!(r["reason"], "not_processed", "{r}");
    });
}

/// The reader ACKed the START (it had the request), then says it never got it and holds
/// everything since: it contradicts itself, so the outcome stays unknown.
#[test]
fn a_sale_whose_start_the_reader_acknowledged_is_never_not_processed() {
    within(async {
        let r = sale(3, Start::Acknowledged, 0).await;
        assert_eq!(r["error_type"], "unknown_result_error", "{r}");
        assert_eq!(r["reason"], "contradiction", "{r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("acknowledged START_SALE"),
            "{r}"
        );
    });
}

/// The reader's IN_PROGRESS to GET_RESULT is evidence too: a later RESULT_NOT_FOUND (a
/// version 2 reader, no window) leaves the outcome unknown.
#[test]
fn a_sale_the_reader_once_reported_in_progress_is_never_not_processed() {
    within(async {
        let r = sale(2, Start::NeverReceived, 1).await;
        assert_eq!(r["error_type"], "unknown_result_error", "{r}");
        assert_eq!(r["reason"], "contradiction", "{r}");
        assert!(
            r["message"].as_str().unwrap().contains("IN_PROGRESS"),
            "{r}"
        );
    });
}
