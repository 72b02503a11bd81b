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
mod waits;

use common::{Conn, Daemon, Dist};

const CLIENTS: usize = 16;
const RING: usize = 500;
/// What one journal commit writes to the WAL for a lone pay: about 6 frames of a 4 KiB page
/// and its 24-byte header (the intent 4, the outcome with the eviction of the oldest result
/// 5-11; counted with strace -y).
const COMMIT_BYTES: usize = 6 * (4096 + 24);

struct Sizes {
    pays: usize,
    throughput_for: Duration,
    gets: usize,
    fsyncs: usize,
    traced_pays: usize,
    sales: usize,
    reader_pays: usize,
}

/// Pays made before the timed ones in `single_client_pays`.
const WARM_UP: usize = 50;

fn single_client_pays(d: &Daemon, n: usize, prefix: &str) -> Dist {
    let mut c = Conn::open(&d.socket);
    for i in 0..WARM_UP {
        c.pay("sim", &format!("warm-{prefix}-{i}"), 100);
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        times.push(c.pay("sim", &format!("{prefix}-{i}"), 100));
    }
    Dist::new(times)
}

/// `total` pays from `CLIENTS` clients (for the RSS after many sales), round `round`.
fn sell(d: &Daemon, total: usize, round: usize) {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(&socket);
                for i in 0..total / CLIENTS {
                    c.pay("sim", &format!("sale-{round}-{client}-{i}"), 100);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("a paying client failed");
    }
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

/// write(100 bytes) + fsync of a small file in `dir`: the floor of one durable journal commit.
fn fsync_latency(dir: &Path, n: usize) -> Dist {
    fsync_after(dir, n, 100)
}

/// write(`bytes`) + fsync, over and over the same place of a file in `dir` (as the WAL is
/// rewritten in place): what a commit of that many bytes costs the disk.
fn fsync_after(dir: &Path, n: usize, bytes: usize) -> Dist {
    use std::io::{Seek, SeekFrom};
    let mut f = File::create(dir.join("fsync-probe")).unwrap();
    let block = vec![b'x'; bytes];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        f.seek(SeekFrom::Start(0)).unwrap();
        let t = Instant::now();
        f.write_all(&block).unwrap();
        f.sync_all().unwrap();
        times.push(t.elapsed());
    }
    Dist::new(times)
}

fn row(m: &str, v: String, floor: String, goal: &str, ok: Option<bool>) {
    let verdict = ok.map_or("", |met| if met { "met" } else { "NOT met" });
    println!("{m:<46} {v:>18} {floor:>22} {goal:>18} {verdict:>8}");
}

/// The floor of a pay: two fsyncs, p50 / p99.
fn two_fsyncs(fsync: &Dist) -> String {
    format!(
        "2 fsync {:.0} / {:.0} µs",
        2.0 * fsync.pct(50),
        2.0 * fsync.pct(99)
    )
}

/// "p50 / p99 µs" of `d`.
fn p50_p99(d: &Dist) -> String {
    format!("{:.0} / {:.0} µs", d.pct(50), d.pct(99))
}

fn us(x: f64) -> String {
    format!("{x:.0} µs")
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn main() {
    waits::sqlite_floor::worker_if_asked();
    let quick = std::env::var("POSBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let sizes = if quick {
        Sizes {
            pays: 300,
            throughput_for: Duration::from_secs(1),
            gets: 300,
            fsyncs: 50,
            traced_pays: 100,
            sales: 10_000,
            reader_pays: 20,
        }
    } else {
        Sizes {
            pays: 2000,
            throughput_for: Duration::from_secs(5),
            gets: 2000,
            fsyncs: 300,
            traced_pays: 500,
            sales: 100_000,
            reader_pays: 100,
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut loads = vec![("start", waits::load())];

    // Exec -> READY on an empty journal; the RSS once started.
    let metrics = dir.path().join("metrics.toml");
    std::fs::write(&metrics, waits::METRICS_CONFIG).unwrap();
    let start = waits::start_until_ready(dir.path(), Some(&metrics), false);
    let ready_empty = start.ready;
    let d = start.daemon;
    std::thread::sleep(Duration::from_millis(300));
    let rss_start = waits::rss_split(&d);

    // Fill the ring for the get_results with single-client pays "one-*" last.
    let (per_s, total) = throughput(&d, sizes.throughput_for);
    // Measured right before the pays, so both see the same load on this shared machine.
    let fsync = fsync_latency(dir.path(), sizes.fsyncs);
    let fsync_commit = fsync_after(dir.path(), sizes.fsyncs, COMMIT_BYTES);
    let log_before = waits::log_lines(dir.path());
    let pay = single_client_pays(&d, sizes.pays.max(RING), "one");
    let log_per_pay =
        (waits::log_lines(dir.path()) - log_before) as f64 / (sizes.pays.max(RING) + 50) as f64;
    // The least a daemon could be on the same disk: one thread, the socket and the two commits.
    let least = waits::sqlite_floor::served("server", sizes.pays, dir.path());
    let least_append = waits::sqlite_floor::served("append", sizes.pays, dir.path());
    loads.push(("disk pays", waits::load()));
    let get = get_results(&d, sizes.gets, sizes.pays.max(RING));
    let syscalls = waits::count_syscalls(&d, sizes.traced_pays, "traced");
    std::thread::sleep(Duration::from_millis(300));
    let rss_full = waits::rss_split(&d);
    // In ten rounds, each ending as a counter's day does, with the sim's shift closed (its
    // ledger keeps the calls of its last shifts only): RSS after each round shows whether
    // anything grows with the sales themselves.
    let mut rss_rounds = Vec::new();
    let mut sqlite_rounds = Vec::new();
    let mut closer = Conn::open(&d.socket);
    for round in 0..10 {
        sell(&d, sizes.sales / 10, round);
        let closed = closer.call(&format!(
            "{{\"action\":\"close_shift\",\"provider\":\"sim\",\"request_id\":\"shift-{round}\"}}\n"
        ));
        assert!(closed.contains(r#""code":0"#), "close_shift: {closed}");
        std::thread::sleep(Duration::from_millis(300));
        rss_rounds.push(waits::rss_split(&d).0);
        sqlite_rounds.push(waits::sqlite_memory(dir.path()));
    }
    let rss_sales = waits::rss_split(&d);
    loads.push(("sales", waits::load()));
    drop(d);

    // Exec -> READY with a full ring, then with unknown outcomes to reconcile.
    let full = waits::start_until_ready(dir.path(), None, false);
    let ready_full = full.ready;
    drop(full.daemon);
    let hour = dir.path().join("status-in-an-hour.toml");
    std::fs::write(&hour, "[providers.sim]\nstatus_poll_ms = [3600000]\n").unwrap();
    let d = Daemon::start(dir.path(), Some(&hour));
    waits::make_unknown(&d, 50);
    drop(d);
    let unknown = waits::start_until_ready(dir.path(), None, true);
    let (ready_unknown, reconciled) = (unknown.ready, unknown.reconciled);
    drop(unknown.daemon);
    let exec_floor = waits::exec_floor(20);

    // The same pays with the journal on tmpfs: what is left is the daemon's own cost.
    let shm = Path::new("/dev/shm");
    let tmpfs = shm.is_dir().then(|| {
        let dir = tempfile::tempdir_in(shm).expect("tempdir in /dev/shm");
        let metrics = dir.path().join("metrics.toml");
        std::fs::write(&metrics, waits::METRICS_CONFIG).unwrap();
        let d = Daemon::start(dir.path(), Some(&metrics));
        let fsync = fsync_latency(dir.path(), sizes.fsyncs);
        let calls_before = waits::sim_pay_calls(dir.path());
        let sched_before = waits::sched(d.pid());
        let pay = single_client_pays(&d, sizes.pays, "tmpfs");
        // Per pay (its warm-up pays included): CPU, run-queue wait, slices, all threads.
        let sched = sched_before.zip(waits::sched(d.pid())).map(|(a, b)| {
            let pays = (sizes.pays + WARM_UP) as f64;
            [0, 1, 2].map(|i| (b[i] - a[i]) as f64 / pays)
        });
        // The sim backend's mean call over these pays (its warm-up pays included).
        let backend = calls_before
            .zip(waits::sim_pay_calls(dir.path()))
            .map(|((s0, n0), (s1, n1))| (s1 - s0) / (n1 - n0).max(1.0) * 1e6);
        let least = waits::sqlite_floor::served("server", sizes.pays, dir.path());
        let echo = waits::sqlite_floor::served("echo", sizes.pays, dir.path());
        (fsync, pay, least, echo, backend, sched)
    });
    loads.push(("tmpfs pays", waits::load()));
    // SQLite alone under a pay's two commits: its calls (the journal on the state directory's
    // disk) and its time on tmpfs, in both locking modes.
    let floor_calls: Vec<_> = ["shared", "exclusive"]
        .into_iter()
        .map(|m| waits::sqlite_floor::calls(m, sizes.traced_pays, dir.path()))
        .collect();
    let floor_times: Vec<_> = ["shared", "exclusive"]
        .into_iter()
        .map(|m| {
            let d = tempfile::tempdir_in(shm).ok()?;
            waits::sqlite_floor::times(m, sizes.pays, d.path())
        })
        .collect();
    let on_reader = waits::reader::amount_on_reader(sizes.reader_pays);
    let (built, stripped) = waits::binary_sizes();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "posbridge daemon benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "state dir {} ({}), {cores} cores; load average (1 min) {}\n",
        dir.path().display(),
        waits::fs_of(dir.path()),
        loads
            .iter()
            .map(|(at, l)| format!("{l} at {at}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:<46} {:>18} {:>22} {:>18} {:>8}",
        "measure", "value", "floor", "goal", ""
    );
    let two = 2.0 * fsync.pct(50);
    row(
        &format!("pay -> answer p50 / p99 ({} pays, disk)", pay.0.len()),
        p50_p99(&pay),
        two_fsyncs(&fsync),
        "p50 <= 1.5 x floor",
        Some(pay.pct(50) <= 1.5 * two),
    );
    row(
        "  floor with a commit's bytes (6 pages)",
        "".into(),
        two_fsyncs(&fsync_commit),
        "",
        None,
    );
    row(
        "  daemon's own share: pay p50 - 2 fsync p50",
        us(pay.pct(50) - two),
        format!("fsync p50 {:.0} µs", fsync.pct(50)),
        "",
        None,
    );
    for (what, d) in [
        ("  least daemon: 1 thread, socket + 2 commits", &least),
        ("  the same with 2 records, no SQLite", &least_append),
    ] {
        if let Some(d) = d {
            row(
                what,
                p50_p99(d),
                format!("{:.2} x 2 fsync p50", d.pct(50) / two),
                "",
                None,
            );
        }
    }
    if least.as_ref().is_some_and(|d| d.pct(50) > 1.5 * two) {
        println!(
            "    the least daemon is over 1.5 x 2 fsync on this disk: no daemon making the \
             journal's two commits meets that goal here"
        );
    }
    if let Some((fsync, pay, least, echo, backend, sched)) = &tmpfs {
        row(
            "pay -> answer p50 / p99 (tmpfs)",
            p50_p99(pay),
            two_fsyncs(fsync),
            "",
            None,
        );
        let own = pay.pct(50) - 2.0 * fsync.pct(50);
        row(
            "  daemon's own cost (tmpfs p50 - 2 fsync)",
            us(own),
            "0".into(),
            "<= 100 µs",
            Some(own <= 100.0),
        );
        if let Some(backend) = backend {
            row(
                "  of which the sim backend's call (mean)",
                us(*backend),
                "".into(),
                "",
                None,
            );
            row(
                "  the same without the backend's call",
                us(own - backend),
                "0".into(),
                "<= 100 µs",
                Some(own - backend <= 100.0),
            );
        }
        if let Some([cpu, wait, slices]) = sched {
            row(
                "  daemon's threads a pay: slices, CPU, run-queue wait",
                format!("{slices:.2}, {:.0} µs, {:.1} µs", cpu / 1e3, wait / 1e3),
                "1 slice (one wake-up a request)".into(),
                "",
                None,
            );
        }
        for (what, d) in [
            ("  least daemon, tmpfs: socket + 2 commits", least),
            ("  least daemon, tmpfs: socket only (echo)", echo),
        ] {
            if let Some(d) = d {
                row(what, p50_p99(d), "".into(), "", None);
            }
        }
        if let Some(least) = least {
            row(
                "  daemon above the least daemon (tmpfs p50)",
                us(pay.pct(50) - least.pct(50)),
                format!("goal leaves {}", us(100.0 - least.pct(50))),
                "",
                None,
            );
            // The own cost's floor here: the least daemon's pay, and the backend's call that
            // every sim pay makes on top of it.
            let floor = least.pct(50) - 2.0 * fsync.pct(50) + backend.unwrap_or(0.0);
            if floor > 100.0 {
                println!(
                    "    the least daemon with the backend's call is {} on tmpfs here, over \
                     100 µs: no daemon making the journal's two commits and that call meets \
                     the own-cost goal on this machine",
                    us(floor)
                );
            }
        }
    }
    for (t, what) in floor_times.iter().zip([
        "  SQLite alone, the 2 commits, tmpfs p50 / p99",
        "  the same, locking_mode=EXCLUSIVE",
    ]) {
        if let Some(t) = t {
            row(what, p50_p99(t), "".into(), "", None);
        }
    }
    match &on_reader {
        Some(r) => row(
            &format!("pay -> amount on the reader ({} pays, pty)", r.0.len()),
            p50_p99(r),
            format!("2 fsync {:.0} µs", two),
            "",
            None,
        ),
        None => row(
            "pay -> amount on the reader (serial pty)",
            "failed".into(),
            "".into(),
            "",
            None,
        ),
    }
    row(
        "pay -> amount on the reader (BLE)",
        "in the VM".into(),
        "".into(),
        "",
        None,
    );
    match &syscalls {
        Some(s) => {
            let own = s.total - s.sim_ledger;
            row(
                &format!("system calls per pay ({} pays traced)", s.pays),
                format!("{:.1}", s.per_pay(s.total)),
                "".into(),
                "",
                None,
            );
            row(
                "  the daemon's own (without the sim ledger's)",
                format!("{:.1}", s.per_pay(own)),
                "2 fsync + 2 socket".into(),
                "<= 25",
                Some(s.per_pay(own) <= 25.0),
            );
            let top: Vec<String> = s
                .by_name
                .iter()
                .take(10)
                .map(|(n, c)| format!("{n} {:.1}", s.per_pay(*c)))
                .collect();
            println!("    per pay: {}", top.join(", "));
            println!(
                "    of which on the sim ledger: {:.1}",
                s.per_pay(s.sim_ledger)
            );
        }
        None => row(
            "system calls per pay",
            "no strace".into(),
            "".into(),
            "",
            None,
        ),
    }
    for (calls, what) in floor_calls.iter().zip([
        "  SQLite alone, the pay's 2 commits",
        "  the same, locking_mode=EXCLUSIVE",
    ]) {
        match calls {
            Some(c) => {
                row(what, format!("{:.1}", c.total), "".into(), "", None);
                let top: Vec<String> = c
                    .by_name
                    .iter()
                    .take(6)
                    .map(|(n, k)| format!("{n} {k:.1}"))
                    .collect();
                println!("    per pay: {}", top.join(", "));
            }
            None => row(what, "no strace".into(), "".into(), "", None),
        }
    }
    row(
        "log lines per pay (info)",
        format!("{log_per_pay:.2}"),
        "".into(),
        "",
        None,
    );
    row(
        &format!("throughput, {CLIENTS} clients ({total} pays)"),
        format!("{per_s:.0} /s"),
        format!("1 client: {:.0} /s", 1e6 / two),
        ">= 2000 /s",
        Some(per_s >= 2000.0),
    );
    row(
        "get_result p50 / p99 (full ring)",
        p50_p99(&get),
        "".into(),
        "p99 < 300 µs",
        Some(get.pct(99) < 300.0),
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let floor = format!("exec+exit {}", ms(exec_floor));
    row(
        "exec -> READY, empty journal",
        ms(ready_empty),
        floor.clone(),
        "",
        None,
    );
    row(
        &format!("exec -> READY, full journal ({RING})"),
        ms(ready_full),
        floor.clone(),
        "",
        None,
    );
    row(
        "exec -> READY, 50 unknown outcomes",
        ms(ready_unknown),
        floor,
        "",
        None,
    );
    if let Some(r) = reconciled {
        row(
            "exec -> 50 unknown outcomes reconciled",
            ms(r),
            "".into(),
            "",
            None,
        );
    }
    let rss = |(all, anon, file): (u64, u64, u64)| {
        format!(
            "{} ({:.1}+{:.1})",
            mb(all),
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        )
    };
    println!("    RSS below: total (anonymous + file-backed: the binary's and libraries' pages)");
    row(
        "RSS after start (idle)",
        rss(rss_start),
        "".into(),
        "<= 10 MB",
        Some(rss_start.0 <= 10 * 1024),
    );
    row(
        &format!("RSS with a full ring ({RING})"),
        rss(rss_full),
        "".into(),
        "",
        None,
    );
    row(
        &format!("RSS after {} more sales", sizes.sales),
        rss(rss_sales),
        format!("idle {}", mb(rss_start.0)),
        "<= 10 MB, flat",
        Some(rss_sales.0 <= 10 * 1024),
    );
    // Flat: the last round within 1 MiB of the second (the first fills the caches).
    let flat =
        rss_rounds.last().copied().unwrap_or(0) <= rss_rounds.get(1).copied().unwrap_or(0) + 1024;
    row(
        &format!("  after each {} sales (a shift closed)", sizes.sales / 10),
        rss_rounds
            .iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" "),
        "".into(),
        "flat",
        Some(flat),
    );
    // SQLite's own heap after each round, and what each connection's page cache held last.
    let sqlite_mb = |r: &Option<(u64, Vec<(String, u64)>)>| {
        r.as_ref().map_or("?".into(), |(total, _)| {
            format!("{:.1}", *total as f64 / 1024.0)
        })
    };
    row(
        "  SQLite's heap after each round",
        sqlite_rounds
            .iter()
            .map(sqlite_mb)
            .collect::<Vec<_>>()
            .join(" "),
        "".into(),
        "",
        None,
    );
    if let Some(Some((_, caches))) = sqlite_rounds.last() {
        row(
            "  page cache per connection, last round",
            caches
                .iter()
                .map(|(name, kib)| format!("{name} {:.2}", *kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", "),
            "".into(),
            "",
            None,
        );
    }
    row(
        "binary size as built / stripped",
        format!(
            "{:.1} / {}",
            built as f64 / 1e6,
            stripped.map_or("?".into(), |s| format!("{:.1} MB", s as f64 / 1e6))
        ),
        "".into(),
        "",
        None,
    );
    println!(
        "\nEvery pay makes two durable journal writes, each a SQLite WAL commit with \
         synchronous=FULL (one fsync): the intent before the backend is contacted and the \
         outcome before the answer is sent; so a pay's floor is 2 fsyncs of the same disk, \
         measured right before the pays. The sim backend keeps its own ledger (SQLite, no \
         fsync): its calls are counted apart. pay -> amount on the reader is timed to the \
         emulated reader's log line for the START_SALE it got (a pty does not pace bytes: on a \
         115200-baud line add the frame's wire time, benches/devices.rs); its floor is two \
         fsyncs (the intent, and the reader's result window journaled before the START_SALE \
         is sent) and one link round trip for that window (tens of µs on a pty). BLE is measured in the VM \
         (hil/vm: steps ble.pay-to-amount and ble.back-on-air). With {CLIENTS} clients the journal writer commits concurrent \
         writes together (group commit). The daemon logs at info to a file here."
    );
}
