//! `posbridge emulate` end to end: the real binary on a pty, driven by posbridge's own serial
//! transport, link session and card-reader / display APIs, as the daemon will drive it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::emulator::Emulator;
use posbridge::device::link::{
    Currency, Hello, Message, Outcome, PaymentRequest, Role, SaleResult, ShiftTotals,
};
use posbridge::device::reader::{Answer, CardReader, ShiftAnswer};
use posbridge::device::serial::SerialTransport;
use posbridge::device::session::Session;
use posbridge::device::transport::Transport;

const WAIT: Duration = Duration::from_secs(10);

async fn open(link: &Path, role: Role) -> (Session, Hello) {
    let conn = SerialTransport::new(link, 115_200).connect().await.unwrap();
    Session::open(conn, role).await.unwrap()
}

async fn reader(link: &Path) -> CardReader {
    CardReader::new(
        "card-reader-test".into(),
        Arc::new(open(link, Role::CardReader).await.0),
    )
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

fn done(answer: Answer) -> SaleResult {
    match answer {
        Answer::Done(r) => r,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test]
async fn hello_names_the_emulator_and_a_sale_is_approved_with_masked_card_data() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "reader", &["--serial", "R-1"]);
    let (session, hello) = open(&emu.link, Role::CardReader).await;
    assert_eq!(hello.role, Role::CardReader);
    assert_eq!(hello.model, "posbridge-emu");
    assert_eq!(hello.firmware, env!("CARGO_PKG_VERSION"));
    assert_eq!(hello.serial, "R-1");
    let reader = CardReader::new("card-reader-test".into(), Arc::new(session));
    let r = done(reader.sale(sale("emu-ok", 2500), WAIT).await.unwrap());
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(r.rrn.as_deref().map(str::len), Some(12));
    assert!(r.approval_code.is_some());
    assert_eq!(r.masked_pan.as_deref(), Some("411111******1111"));
    assert_eq!(r.scheme.as_deref(), Some("VISA"));
    let declined = done(reader.sale(sale("emu-no", 2551), WAIT).await.unwrap());
    assert_eq!(declined.outcome, Outcome::Declined);
    assert!(declined.approval_code.is_none());
    assert_eq!(
        reader.close_shift(WAIT).await.unwrap(),
        ShiftAnswer::Totals(ShiftTotals {
            pay_count: 1,
            pay_total: 2500,
            ..ShiftTotals::default()
        })
    );
}

#[tokio::test]
async fn a_repeated_id_is_a_duplicate_answered_by_get_result_and_no_second_charge() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "reader", &[]);
    let reader = reader(&emu.link).await;
    let first = done(reader.sale(sale("idem-1", 4200), WAIT).await.unwrap());
    // As the LIFE POS document's reader: a repeated id is a duplicate request, not an answer.
    assert_eq!(
        reader.sale(sale("idem-1", 4200), WAIT).await.unwrap(),
        Answer::Duplicate
    );
    assert!(emu
        .log_text()
        .contains("idem-1: known request, answering DUPLICATE"));
    assert_eq!(
        done(reader.get_result("idem-1", WAIT).await.unwrap()),
        first
    );
    assert_eq!(
        reader.get_result("never", WAIT).await.unwrap(),
        Answer::NotFound
    );
    assert_eq!(emu.charges("idem-1"), (1, 1));
}

#[tokio::test]
async fn a_slow_sale_is_in_progress_and_another_start_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "reader", &[]);
    let (session, _) = open(&emu.link, Role::CardReader).await;
    session
        .send(Message::StartSale(sale("slow-1", 1093)))
        .await
        .unwrap();
    session
        .send(Message::StartSale(sale("other-1", 100)))
        .await
        .unwrap();
    assert_eq!(
        session.recv().await.unwrap(),
        Message::Busy {
            request_id: "slow-1".into()
        }
    );
    session
        .send(Message::GetResult {
            request_id: "slow-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        session.recv().await.unwrap(),
        Message::InProgress {
            request_id: "slow-1".into()
        }
    );
    match session.recv().await.unwrap() {
        Message::SaleResult(r) => {
            assert_eq!(r.request_id, "slow-1");
            assert_eq!(r.outcome, Outcome::Approved);
        }
        other => panic!("expected the slow sale's result, got {other:?}"),
    }
    assert_eq!(
        emu.charges("other-1"),
        (0, 1),
        "the busy start charged nothing"
    );
}

#[tokio::test]
async fn results_survive_a_kill9_and_restart_on_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start("card-reader", dir.path(), "reader", &[]);
    let first = {
        let reader = reader(&emu.link).await;
        let hello = reader.session().hello().clone();
        assert!(hello.serial.starts_with("EMU"), "{hello:?}");
        done(reader.sale(sale("keep-1", 777), WAIT).await.unwrap())
    };
    let serial = emu.state_json()["serial"].as_str().unwrap().to_owned();
    emu.kill9();
    emu.restart();
    let (session, hello) = open(&emu.link, Role::CardReader).await;
    assert_eq!(
        hello.serial, serial,
        "the serial number is kept in the state file"
    );
    let reader = CardReader::new("card-reader-test".into(), Arc::new(session));
    assert_eq!(
        done(reader.get_result("keep-1", WAIT).await.unwrap()),
        first
    );
    assert_eq!(
        reader.sale(sale("keep-1", 777), WAIT).await.unwrap(),
        Answer::Duplicate
    );
    assert_eq!(emu.charges("keep-1"), (1, 1));
}

/// What the daemon does with a sale on a bad line: on a lost link, reconnect and ask
/// GET_RESULT; start only what the reader says it never saw, under the same request_id.
async fn sale_on_a_noisy_line(link: &Path, id: &str, amount: u64) -> (SaleResult, u32) {
    let mut links_lost = 0;
    let mut started = false;
    for _ in 0..20 {
        let conn = match SerialTransport::new(link, 115_200).connect().await {
            Ok(c) => c,
            Err(_) => {
                // The previous session's port is still closing.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok((session, _)) = Session::open(conn, Role::CardReader).await else {
            links_lost += 1;
            continue;
        };
        let reader = CardReader::new("card-reader-test".into(), Arc::new(session));
        let answer = if started {
            match reader.get_result(id, WAIT).await {
                Ok(Answer::NotFound) => reader.sale(sale(id, amount), WAIT).await,
                other => other,
            }
        } else {
            started = true;
            reader.sale(sale(id, amount), WAIT).await
        };
        match answer {
            Ok(Answer::Done(r)) => return (r, links_lost),
            Ok(Answer::InProgress) => tokio::time::sleep(Duration::from_millis(100)).await,
            // The start had reached it before the link went: ask GET_RESULT next round.
            Ok(Answer::Duplicate) => {}
            Ok(other) => panic!("{id}: unexpected {other:?}"),
            Err(_) => links_lost += 1,
        }
    }
    panic!("{id}: no result after 20 links");
}

#[tokio::test]
async fn with_20_percent_noise_20_sales_complete_each_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        "card-reader",
        dir.path(),
        "reader",
        &["--noise", "20", "--noise-seed", "20261123"],
    );
    let mut lost = 0;
    for i in 0..20 {
        let id = format!("noisy-{i}");
        let (r, l) = sale_on_a_noisy_line(&emu.link, &id, 1000 + i).await;
        assert_eq!(r.request_id, id);
        assert_eq!(r.outcome, Outcome::Approved);
        lost += l;
    }
    assert_eq!(emu.state_json()["charges"], 20, "one charge per sale");
    let log = emu.log_text();
    assert!(log.contains("noise 20% with seed 20261123"), "{log}");
    // The line really was noisy: the emulator logs each frame it damaged. A noise option that
    // did nothing passed this test before.
    let damaged = log.matches("noise: damaged a frame").count();
    let garbage = log.matches("garbage bytes before a frame").count();
    eprintln!(
        "20 noisy sales done; {damaged} frames damaged, {garbage} bursts of garbage, \
         {lost} links lost on the way"
    );
    assert!(damaged >= 10, "only {damaged} frames damaged: {log}");
    assert!(garbage >= 5, "only {garbage} bursts of garbage: {log}");
}

#[tokio::test]
async fn the_display_prints_each_thing_it_shows_as_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start_piped("dqr-display", dir.path(), "display", &[]);
    let lines = {
        let out = emu.stdout();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        rx
    };
    let (session, hello) = open(&emu.link, Role::DqrDisplay).await;
    assert_eq!(hello.role, Role::DqrDisplay);
    let display = posbridge::device::display::Display::new(Arc::new(session));
    display
        .show_amount(2500, Currency::new("INR").unwrap())
        .await
        .unwrap();
    display
        .show_qr("upi://pay?pa=shop@bank&am=25.00")
        .await
        .unwrap();
    display.show_status("approved").await.unwrap();
    display.clear().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(lines.recv_timeout(WAIT).expect("a display line"));
    }
    assert_eq!(
        got,
        [
            "amount 2500 INR",
            "qr upi://pay?pa=shop@bank&am=25.00",
            "status approved",
            "clear"
        ]
    );
}

#[tokio::test]
async fn a_display_is_refused_when_a_reader_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("dqr-display", dir.path(), "display", &[]);
    let conn = SerialTransport::new(&emu.link, 115_200)
        .connect()
        .await
        .unwrap();
    let err = Session::open(conn, Role::CardReader).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the device answered as a dqr-display, but it was expected to be a card-reader"
    );
}

/// A version 1 host (posbridge before the LIFE POS details) still gets version 1 answers:
/// its payment requests (no details block) decode, a repeated id is answered with the stored
/// result (a version 1 host does not know DUPLICATE) and CLOSE_SHIFT with SHIFT_SUMMARY.
#[tokio::test]
async fn a_version_1_host_gets_version_1_frames() {
    use posbridge::device::scripted::ScriptedDevice;
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "reader", &[]);
    let conn = SerialTransport::new(&emu.link, 115_200)
        .connect()
        .await
        .unwrap();
    let mut host = ScriptedDevice::new(conn.stream);
    host.send(&Message::Hello(Hello {
        protocol_version: 1,
        role: Role::Host,
        model: "posbridge-0.1".into(),
        firmware: "0.1.0".into(),
        serial: String::new(),
    }))
    .await;
    let mut device_hello = None;
    while device_hello.is_none() {
        match host.message().await {
            (_, Message::Ack { seq: 0 }) => {}
            (frame, Message::Hello(h)) => {
                host.ack(frame.seq()).await;
                device_hello = Some(h);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(device_hello.unwrap().protocol_version, 4);
    let v1_sale = sale("v1-sale", 2500);
    let mut answers = Vec::new();
    for msg in [
        Message::StartSale(v1_sale.clone()),
        Message::StartSale(v1_sale),
        Message::CloseShift,
    ] {
        host.send_acked(&msg).await;
        let (frame, answer) = host.message().await;
        host.ack(frame.seq()).await;
        answers.push(answer);
    }
    let Message::SaleResult(first) = &answers[0] else {
        panic!("{answers:?}")
    };
    assert_eq!(first.outcome, Outcome::Approved);
    assert_eq!(answers[1], answers[0], "the stored result, not DUPLICATE");
    assert_eq!(
        answers[2],
        Message::ShiftSummary {
            count: 1,
            total: 2500
        }
    );
    assert_eq!(emu.charges("v1-sale"), (1, 1));
    assert!(emu.stored("v1-sale").unwrap().get("details").is_none());
}

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Seen in hil/vm (part 3): with a host holding the pty open and saying nothing, the emulator
/// read its end in a busy loop (read() = EAGAIN some 65 000 times a second, half a core) for
/// as long as the host stayed. A reader waiting for its host must sleep; a second host after
/// the first still gets answers.
#[test]
fn an_idle_host_on_the_pty_costs_the_emulator_no_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "idle", &["--serial", "IDLE1"]);
    let pid = emu.child.as_ref().unwrap().id();
    let host = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&emu.link)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    drop(host);
    assert!(
        used < 20,
        "the emulator used {used} ticks of CPU in 3 s with an idle host on its pty"
    );
    // It still serves the next host.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reader(&emu.link).await;
        let got = done(r.sale(sale("idle-1", 100), WAIT).await.unwrap());
        assert_eq!(got.outcome, Outcome::Approved);
    });
}

/// Link protocol version 3: the emulated reader numbers what it stores, keeps only
/// `--keep-results` of them (the oldest go first), and says so in RESULT_WINDOW; a fresh state
/// file is another result store. A version 2 session has no window.
#[tokio::test]
async fn the_reader_reports_its_result_window_and_evicts_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start(
        "card-reader",
        dir.path(),
        "reader",
        &["--keep-results", "2"],
    );
    let first = reader(&emu.link).await;
    let before = first.result_window(WAIT).await.unwrap().unwrap();
    assert_eq!((before.oldest, before.next), (0, 0), "{before:?}");
    for id in ["win-a", "win-b", "win-c"] {
        done(first.sale(sale(id, 100), WAIT).await.unwrap());
    }
    let after = first.result_window(WAIT).await.unwrap().unwrap();
    assert_eq!(after.store, before.store);
    assert_eq!((after.oldest, after.next), (1, 3), "{after:?}");
    assert_eq!(
        first.get_result("win-a", WAIT).await.unwrap(),
        Answer::NotFound,
        "the oldest was evicted"
    );
    assert_eq!(
        done(first.get_result("win-b", WAIT).await.unwrap()).request_id,
        "win-b"
    );
    drop(first);
    emu.kill9();
    std::fs::remove_file(&emu.state).unwrap();
    emu.restart();
    let fresh = reader(&emu.link).await;
    let window = fresh.result_window(WAIT).await.unwrap().unwrap();
    assert_ne!(
        window.store, before.store,
        "a fresh memory is another store"
    );
    drop(fresh);
    emu.kill9();
    emu.extra = vec!["--protocol-version".into(), "2".into()];
    emu.restart();
    let old = reader(&emu.link).await;
    assert_eq!(old.session().version(), 2);
    assert_eq!(old.result_window(WAIT).await.unwrap(), None);
}
