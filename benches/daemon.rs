//! End-to-end benchmark of the release daemon: the real binary on a temporary state directory,
//! driven through its real Unix socket with the `sim` provider and the durable journal.
//!
//! `cargo bench --bench daemon`; `POSBRIDGE_BENCH_QUICK=1` for a short run. Prints a table of
//! pay latency, throughput with 16 clients, get_result latency on a full ring, the daemon's
//! RSS, and the raw fsync latency of the state directory's filesystem for reference.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{Conn, Daemon, Dist};

const CLIENTS: usize = 16;
const RING: usize = 500;

struct Sizes {
    pays: usize,
    throughput_for: Duration,
    gets: usize,
    fsyncs: usize,
}

fn single_client_pays(d: &Daemon, n: usize) -> Dist {
    let mut c = Conn::open(&d.socket);
    for i in 0..50 {
        c.pay("sim", &format!("warm-{i}"), 100);
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        times.push(c.pay("sim", &format!("one-{i}"), 100));
    }
    Dist::new(times)
}

/// Pays per second with `CLIENTS` clients paying back to back for `span`.
fn throughput(d: &Daemon, span: Duration) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (done, stop, socket) = (done.clone(), stop.clone(), d.socket.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(&socket);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    c.pay("sim", &format!("many-{client}-{i}"), 100);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(span);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().expect("a paying client failed");
    }
    let total = done.load(Ordering::Relaxed);
    (total as f64 / t.elapsed().as_secs_f64(), total)
}

/// get_result of the newest results, all still in the ring.
fn get_results(d: &Daemon, n: usize, pays_before: usize) -> Dist {
    let mut c = Conn::open(&d.socket);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("one-{}", pays_before - 1 - (i * 7) % (RING / 2));
        let request = format!("{{\"action\":\"get_result\",\"request_id\":\"{id}\"}}\n");
        let t = Instant::now();
        let answer = c.call(&request);
        times.push(t.elapsed());
        assert!(answer.starts_with("{\"code\":0"), "get_result: {answer}");
    }
    Dist::new(times)
}

/// write(100 bytes) + fsync of a small file in `dir`, as one durable journal commit costs.
fn fsync_latency(dir: &Path, n: usize) -> Dist {
    let mut f = File::create(dir.join("fsync-probe")).unwrap();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&[b'x'; 100]).unwrap();
        f.sync_all().unwrap();
        times.push(t.elapsed());
    }
    Dist::new(times)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn main() {
    let quick = std::env::var("POSBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let sizes = if quick {
        Sizes {
            pays: 300,
            throughput_for: Duration::from_secs(1),
            gets: 300,
            fsyncs: 50,
        }
    } else {
        Sizes {
            pays: 2000,
            throughput_for: Duration::from_secs(5),
            gets: 2000,
            fsyncs: 300,
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), None);
    std::thread::sleep(Duration::from_millis(300));
    let rss_start = d.rss_kib();

    // Fill the ring for phase 3 with single-client pays "one-*" last.
    let (per_s, total) = throughput(&d, sizes.throughput_for);
    // Measured right before the pays, so both see the same load on this shared machine.
    let fsync = fsync_latency(dir.path(), sizes.fsyncs);
    let pay = single_client_pays(&d, sizes.pays.max(RING));
    let get = get_results(&d, sizes.gets, sizes.pays.max(RING));
    std::thread::sleep(Duration::from_millis(300));
    let rss_full = d.rss_kib();

    let overhead = pay.pct(50) - 2.0 * fsync.pct(50);
    let fs = std::process::Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE,SOURCE", "-T"])
        .arg(dir.path())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "posbridge daemon benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    println!("state dir {} ({fs}), {cores} cores\n", dir.path().display());
    println!(
        "{:<44} {:>12} {:>22} {:>8}",
        "measure", "value", "target", ""
    );
    let row = |m: &str, v: String, target: &str, ok: Option<bool>| {
        println!("{m:<44} {v:>12} {target:>22} {:>8}", ok.map_or("", verdict));
    };
    row(
        &format!("pay round-trip p50 ({} pays, 1 client)", pay.0.len()),
        format!("{:.0} µs", pay.pct(50)),
        "",
        None,
    );
    row(
        "pay round-trip p99",
        format!("{:.0} µs", pay.pct(99)),
        "",
        None,
    );
    row(
        "pay round-trip mean",
        format!("{:.0} µs", pay.mean()),
        "",
        None,
    );
    row(
        "fsync p50 (write 100 B + fsync)",
        format!("{:.0} µs", fsync.pct(50)),
        "",
        None,
    );
    row("fsync p99", format!("{:.0} µs", fsync.pct(99)), "", None);
    let one_fsync = fsync.pct(50) + 200.0;
    row(
        "pay p50 vs one fsync + 200 µs",
        format!("{:.0} µs", pay.pct(50)),
        &format!("<= {one_fsync:.0} µs"),
        Some(pay.pct(50) <= one_fsync),
    );
    row(
        "daemon overhead: pay p50 - 2 x fsync p50",
        format!("{overhead:.0} µs"),
        "<= 200 µs",
        Some(overhead <= 200.0),
    );
    row(
        &format!("throughput, {CLIENTS} clients ({total} pays)"),
        format!("{per_s:.0} /s"),
        ">= 2000 /s",
        Some(per_s >= 2000.0),
    );
    row(
        "get_result p50 (full ring)",
        format!("{:.0} µs", get.pct(50)),
        "",
        None,
    );
    row(
        "get_result p99 (full ring)",
        format!("{:.0} µs", get.pct(99)),
        "< 300 µs",
        Some(get.pct(99) < 300.0),
    );
    row(
        "RSS after start",
        format!("{:.1} MB", rss_start as f64 / 1024.0),
        "< 15 MB",
        Some(rss_start < 15 * 1024),
    );
    row(
        &format!("RSS with a full ring ({RING})"),
        format!("{:.1} MB", rss_full as f64 / 1024.0),
        "< 15 MB",
        Some(rss_full < 15 * 1024),
    );
    println!(
        "\nNote: every pay makes two durable journal writes, each a SQLite WAL commit with \
         synchronous=FULL (one fsync): the intent before the backend is contacted and the \
         outcome before the answer is sent. So a pay's floor is about 2 x fsync; what is left \
         (\"daemon overhead\") is posbridge's own work plus the sim backend. With {CLIENTS} \
         clients the journal writer commits concurrent writes together (group commit), which \
         is why throughput can exceed 1 / (2 x fsync). The daemon logs at info to a file here."
    );
}
