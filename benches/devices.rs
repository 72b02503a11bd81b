//! Device round trips over a pty, against the release binary's emulators:
//!
//! - **(b) DQR display**: in-process host side (`SerialTransport` + `Session` + `Display`, on a
//!   2-worker tokio runtime like the daemon's) against `posbridge emulate dqr-display --pty
//!   LINK`. One round trip = `show_qr` with a 300-byte payload, from the call until the
//!   display's ACK; the same for `show_amount` (a short frame) for comparison. p50/p99/mean and
//!   payload bytes/s, sequential.
//! - **(c) sale via posbridge**: the release daemon (lifepay provider: login + password_file)
//!   with `posbridge emulate card-reader` on a pty paired over the socket; sequential `pay`
//!   (`"provider":"lifepay"`) through one connection, request line written to answer read.
//! - **(c') sale direct**: the same sale through the reader API in-process (`SerialTransport`,
//!   `Session`, `CardReader::sale`) against a second emulated reader, no daemon; (c) and (c')
//!   alternate in blocks (ABBA) like `benches/providers.rs`. After each pair of blocks the same
//!   daemon also pays with `sim` (no device): its own cost on the same load, for reference.
//!
//! The emulated reader answers an ordinary sale after a fixed delay of its own
//! (`SHORT` = 200 ms in src/emulate/card_reader.rs, "card tap, PIN, acquirer"); the link and
//! posbridge overhead is the round trip minus that delay.
//!
//! A pty does not pace bytes like a serial line: the figures here are the software's cost, not
//! a wire's. The table also prints what the frames alone would take at 115200 baud 8N1.
//!
//! `cargo bench --bench devices`; `POSBRIDGE_BENCH_QUICK=1` for a short run;
//! `POSBRIDGE_BENCH_KEEP=1` keeps the temporary directory (daemon and emulator logs).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge::device::display::Display;
use posbridge::device::link::{encode, Credentials, Currency, Message, PaymentRequest, Role};
use posbridge::device::reader::{Answer, CardReader};
use posbridge::device::serial::{SerialTransport, DEFAULT_BAUD};
use posbridge::device::session::Session;
use posbridge::device::transport::Transport;

mod common;

use common::{lifepay_config, Conn, Daemon, Dist, BIN};

/// The emulated reader's own delay for an ordinary sale (src/emulate/card_reader.rs `SHORT`).
const READER_DELAY: Duration = Duration::from_millis(200);
/// Ends in neither 51 (declined) nor 93 (3 s): approved after `READER_DELAY`.
const AMOUNT: u64 = 2500;
const LOGIN: &str = "bench-shop";
const PASSWORD: &str = "bench-pass-5c1e";
/// Serial line: 8N1 is 10 bit times per byte.
const BAUD: f64 = 115_200.0;

/// `posbridge emulate KIND --pty LINK` (no state file: the reader keeps its results in memory
/// and does not fsync per sale), logging at info to a file; SIGKILL on drop.
struct Emulator {
    child: Child,
    link: PathBuf,
}

impl Emulator {
    fn start(kind: &str, dir: &Path, name: &str) -> Emulator {
        let link = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BIN)
            .args(["emulate", kind, "--pty"])
            .arg(&link)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start posbridge emulate");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("linked at")
        {
            assert!(Instant::now() < deadline, "emulator {name} not up in 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        Emulator { child, link }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An in-process host session on `link` (the pty behind it), as the device manager opens one.
async fn open(link: &Path, role: Role) -> Arc<Session> {
    let transport = SerialTransport::new(link, DEFAULT_BAUD);
    let conn = transport.connect().await.expect("open the pty");
    let (session, _hello) = Session::open(conn, role).await.expect("HELLO");
    Arc::new(session)
}

/// Times `n` sequential `show()` calls, each until the display's ACK; returns the distribution
/// and the wall time of the timed loop.
fn display_rounds<F, Fut>(
    rt: &tokio::runtime::Runtime,
    n: usize,
    warm: usize,
    show: F,
) -> (Dist, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), posbridge::device::session::LinkError>>,
{
    rt.block_on(async {
        for _ in 0..warm {
            show().await.expect("display ACK");
        }
        let mut times = Vec::with_capacity(n);
        let all = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            show().await.expect("display ACK");
            times.push(t.elapsed());
        }
        (Dist::new(times), all.elapsed())
    })
}

fn sale_request(id: &str) -> PaymentRequest {
    PaymentRequest {
        request_id: id.to_owned(),
        amount: AMOUNT,
        currency: Currency::new("INR").unwrap(),
        primary_reference: None,
        credentials: Some(Credentials {
            login: LOGIN.into(),
            password: PASSWORD.into(),
        }),
        details: None,
    }
}

fn direct_sale(rt: &tokio::runtime::Runtime, reader: &CardReader, id: &str) -> Duration {
    let t = Instant::now();
    let answer = rt
        .block_on(reader.sale(sale_request(id), Duration::from_secs(10)))
        .expect("direct sale");
    let took = t.elapsed();
    match answer {
        Answer::Done(r) if r.outcome == posbridge::device::link::Outcome::Approved => {}
        other => panic!("direct sale {id}: {other:?}"),
    }
    took
}

/// Time on a 115200-baud 8N1 wire for `bytes`, in ms.
fn wire_ms(bytes: usize) -> f64 {
    bytes as f64 * 10.0 / BAUD * 1e3
}

fn frame_len(msg: &Message) -> usize {
    encode(&msg.to_frame(0).unwrap()).len()
}

fn main() {
    let quick = std::env::var("POSBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
    // (b) sends per message kind; (c)/(c') sales per side, in alternating blocks.
    let (shows, show_warm) = if quick { (200, 20) } else { (2000, 100) };
    let (sales, block, sale_warm) = if quick { (20, 5, 2) } else { (100, 10, 5) };

    // POSBRIDGE_BENCH_KEEP=1 keeps the directory (daemon and emulator logs) for a look after.
    let keep = std::env::var("POSBRIDGE_BENCH_KEEP").is_ok_and(|v| v == "1");
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // (b) DQR display.
    let qr_payload =
        "upi://pay?pa=merchant@ybl&pn=Shop&am=25.00&tr=".to_string() + &"x".repeat(254);
    assert_eq!(qr_payload.len(), 300);
    let qr_msg = Message::ShowQr {
        payload: qr_payload.clone(),
    };
    let amount_msg = Message::ShowAmount {
        amount: AMOUNT,
        currency: Currency::new("INR").unwrap(),
    };
    let ack_len = frame_len(&Message::Ack { seq: 0 });
    let (qr_dist, qr_wall, amount_dist, amount_wall) = {
        let emu = Emulator::start("dqr-display", dir.path(), "display");
        let display = Display::new(rt.block_on(open(&emu.link, Role::DqrDisplay)));
        let inr = Currency::new("INR").unwrap();
        let (qr, qr_wall) = display_rounds(&rt, shows, show_warm, || display.show_qr(&qr_payload));
        let (amount, amount_wall) =
            display_rounds(&rt, shows, show_warm, || display.show_amount(AMOUNT, inr));
        (qr, qr_wall, amount, amount_wall)
    };

    // (c) and (c'): one reader paired to the daemon, another opened here.
    let daemon_reader = Emulator::start("card-reader", dir.path(), "reader-daemon");
    let direct_emu = Emulator::start("card-reader", dir.path(), "reader-direct");
    let config = lifepay_config(dir.path(), LOGIN, PASSWORD);
    let daemon = Daemon::start(dir.path(), Some(&config));
    let mut conn = Conn::open(&daemon.socket);
    let paired = conn
        .call(&format!(
            "{{\"action\":\"pair\",\"address\":\"serial:{}\",\"role\":\"card-reader\"}}\n",
            daemon_reader.link.display()
        ))
        .to_owned();
    assert!(paired.starts_with("{\"code\":0"), "pair failed: {paired}");
    let reader = CardReader::new(
        "card-reader-bench".into(),
        rt.block_on(open(&direct_emu.link, Role::CardReader)),
    );
    for i in 0..sale_warm {
        direct_sale(&rt, &reader, &format!("warm-direct-{i}"));
        conn.pay("lifepay", &format!("warm-via-{i}"), AMOUNT);
        conn.pay("sim", &format!("warm-sim-{i}"), AMOUNT);
    }
    let (mut direct, mut via) = (Vec::with_capacity(sales), Vec::with_capacity(sales));
    let mut sim = Vec::with_capacity(sales);
    for round in 0..sales / block {
        for side in [round % 2, 1 - round % 2] {
            for j in 0..block {
                let i = round * block + j;
                if side == 0 {
                    direct.push(direct_sale(&rt, &reader, &format!("direct-{i}")));
                } else {
                    via.push(conn.pay("lifepay", &format!("via-{i}"), AMOUNT));
                }
            }
        }
        // The same daemon's own cost without a device (socket, JSON, engine, two fsyncs).
        for j in 0..block {
            let i = round * block + j;
            sim.push(conn.pay("sim", &format!("sim-{i}"), AMOUNT));
        }
    }
    let (direct, via, sim) = (Dist::new(direct), Dist::new(via), Dist::new(sim));
    drop(conn);
    drop(daemon);
    drop(reader);

    let start_sale_len = frame_len(&Message::StartSale(sale_request("via-100")));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    println!(
        "posbridge devices benchmark{}: round trips over a pty against `posbridge emulate`",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "{cores} cores, load {load}, Linux {kernel}; dir {}\n",
        dir.path().display()
    );

    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "(b) display, in-process host",
        "frame",
        "p50",
        "p99",
        "mean",
        "round/s",
        "payload B/s",
        "115200 wire"
    );
    for (name, msg, payload, dist, wall) in [
        (
            "show_qr, 300 B payload",
            &qr_msg,
            300usize,
            &qr_dist,
            qr_wall,
        ),
        (
            "show_amount (11 B payload)",
            &amount_msg,
            11,
            &amount_dist,
            amount_wall,
        ),
    ] {
        let n = dist.0.len() as f64;
        let frame = frame_len(msg);
        println!(
            "{:<34} {:>4} B {:>6.0} µs {:>6.0} µs {:>6.0} µs {:>9.0} {:>12.0} {:>9.1} ms",
            name,
            frame,
            dist.pct(50),
            dist.pct(99),
            dist.mean(),
            n / wall.as_secs_f64(),
            payload as f64 * n / wall.as_secs_f64(),
            wire_ms(frame + ack_len),
        );
    }
    println!(
        "{shows} sequential sends each (after {show_warm} warm-up), call until the display's \
         ACK; \"115200 wire\" = frame + {ack_len} B ACK at 115200 baud 8N1 (10 bits/byte), what \
         a real line would add and a pty does not.\n"
    );

    let delay_us = READER_DELAY.as_secs_f64() * 1e6;
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>14}",
        "(c) sale on the emulated reader", "p50", "p99", "mean", "mean − 200 ms"
    );
    for (name, d) in [
        ("(c) via posbridge (daemon, socket)", &via),
        ("(c') direct (reader API)", &direct),
    ] {
        println!(
            "{:<34} {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>11.0} µs",
            name,
            d.pct(50) / 1e3,
            d.pct(99) / 1e3,
            d.mean() / 1e3,
            d.mean() - delay_us
        );
    }
    println!(
        "\n{sales} sales per side (after {sale_warm} warm-up each), alternating blocks of \
         {block}; amount {AMOUNT} INR, approved after the emulator's own {} ms delay \
         (src/emulate/card_reader.rs SHORT).",
        READER_DELAY.as_millis()
    );
    println!(
        "daemon + link overhead (c) = round trip − {} ms: p50 {:.0} µs, mean {:.0} µs; \
         link alone (c'): p50 {:.0} µs, mean {:.0} µs",
        READER_DELAY.as_millis(),
        via.pct(50) - delay_us,
        via.mean() - delay_us,
        direct.pct(50) - delay_us,
        direct.mean() - delay_us
    );
    println!(
        "same daemon, provider sim (no device; socket, JSON, engine, two journal fsyncs): \
         p50 {:.0} µs, p99 {:.0} µs, mean {:.0} µs",
        sim.pct(50),
        sim.pct(99),
        sim.mean()
    );
    println!(
        "what posbridge adds: via − direct = {:.0} µs mean ({:.0} µs p50); ratio via/direct \
         {:.3} mean, {:.3} p50",
        via.mean() - direct.mean(),
        via.pct(50) - direct.pct(50),
        via.mean() / direct.mean(),
        via.pct(50) / direct.pct(50)
    );
    let result_len = frame_len(&sale_result_sample());
    println!(
        "on a 115200-baud wire a sale would add about {:.1} ms of frames (START_SALE \
         {start_sale_len} B, SALE_RESULT {result_len} B, two ACKs of {ack_len} B), which a pty \
         does not.",
        wire_ms(start_sale_len + result_len + 2 * ack_len)
    );
}

fn sale_result_sample() -> Message {
    use posbridge::device::link::{Outcome, SaleResult};
    Message::SaleResult(SaleResult {
        request_id: "via-100".into(),
        outcome: Outcome::Approved,
        rrn: Some("123456789012".into()),
        approval_code: Some("ABCDEF".into()),
        masked_pan: Some("411111******1111".into()),
        scheme: Some("VISA".into()),
        message: "Approved".into(),
    })
}
