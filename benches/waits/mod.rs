//! What the cashier waits for (issue 20), measured beside its floor: system calls per pay
//! (counted with strace, split into the daemon's own and the `sim` backend's ledger), the
//! time from exec to READY (empty journal, full ring, unknown outcomes to reconcile), the
//! daemon's RSS after many sales, the stripped binary's size, and (`reader`) the time from a
//! pay to its amount on a card reader on a serial pty.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Conn, Daemon, BIN};

pub mod reader;
pub mod sqlite_floor;

/// System calls the daemon made over `pays` pays, by name, and how many of them named the
/// sim backend's ledger file (`sim-backend.sqlite*`: the backend's work, not the daemon's).
pub struct Syscalls {
    pub pays: usize,
    pub by_name: Vec<(String, usize)>,
    pub total: usize,
    pub sim_ledger: usize,
}

impl Syscalls {
    pub fn per_pay(&self, n: usize) -> f64 {
        n as f64 / self.pays as f64
    }
}

/// Attaches strace to the daemon (all threads), makes `pays` pays on one connection, detaches.
/// `None` when strace is not on the machine or cannot attach.
pub fn count_syscalls(d: &Daemon, pays: usize, prefix: &str) -> Option<Syscalls> {
    let out = std::env::temp_dir().join(format!("posbridge-bench-strace-{}", d.pid()));
    let mut strace = Command::new("strace")
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&out)
        .args(["-p", &d.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // strace has no "attached" signal to wait for: wait until it has written its first line
    // (the daemon's idle threads' pending calls), then a little longer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Conn::open(&d.socket);
    for i in 0..pays {
        c.pay("sim", &format!("{prefix}-{i}"), 100);
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child (strace detaches on SIGINT).
    unsafe { libc::kill(strace.id() as i32, libc::SIGINT) };
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).ok()?;
    let _ = std::fs::remove_file(&out);
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let (mut total, mut sim_ledger) = (0, 0);
    for line in text.lines() {
        // "PID name(args" or "PID <... name resumed>": count each call once, at its start.
        let Some((_, call)) = line.split_once(' ') else {
            continue;
        };
        if call.starts_with("<...") || call.starts_with("+++") || call.starts_with("---") {
            continue;
        }
        let Some((name, _)) = call.split_once('(') else {
            continue;
        };
        *counts.entry(name.to_owned()).or_default() += 1;
        total += 1;
        if call.contains("sim-backend.sqlite") {
            sim_ledger += 1;
        }
    }
    // The idle threads' calls pending at attach and the client's connect add a few; the
    // connection's accept and close are not a pay's either, but they are counted (1 per run).
    let mut by_name: Vec<_> = counts.into_iter().collect();
    by_name.sort_by_key(|b| std::cmp::Reverse(b.1));
    Some(Syscalls {
        pays,
        by_name,
        total,
        sim_ledger,
    })
}

/// From exec to READY (sd_notify) and, with unknown outcomes, until none is left.
pub struct Start {
    pub ready: Duration,
    pub reconciled: Option<Duration>,
    pub daemon: Daemon,
}

/// Starts the daemon on `dir` with a notify socket and times its READY; then, if `unknown`,
/// asks `status` until the journal holds no unknown outcome.
pub fn start_until_ready(dir: &Path, config: Option<&Path>, unknown: bool) -> Start {
    let notify_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = notify.recv(&mut buf).expect("read the notify socket");
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                return Instant::now();
            }
        }
    });
    let daemon = Daemon::start_notifying(dir, config, Some(&notify_path));
    let ready = waiter.join().expect("READY") - started;
    let reconciled = unknown.then(|| {
        let mut c = Conn::open(&daemon.socket);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status: serde_json::Value =
                serde_json::from_str(c.call("{\"action\":\"status\"}\n")).expect("status");
            if status["data"]["journal"]["unknown"].as_u64() == Some(0) {
                break started.elapsed();
            }
            assert!(Instant::now() < deadline, "unknown outcomes left: {status}");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Start {
        ready,
        reconciled,
        daemon,
    }
}

/// Pays `n` times with an amount the sim backend answers with a timeout (ending in 91): each
/// stays an unknown outcome while the config's status checks are an hour apart.
pub fn make_unknown(d: &Daemon, n: usize) {
    let mut c = Conn::open(&d.socket);
    for i in 0..n {
        let answer = c.call(&format!(
            "{{\"action\":\"pay\",\"request_id\":\"unknown-{i}\",\"amount\":191,\"provider\":\"sim\"}}\n"
        ));
        assert!(!answer.starts_with("{\"code\":0"), "{answer}");
    }
}

/// The floor of any start: exec of the same binary to its exit (`posbridge --version`).
pub fn exec_floor(n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let ok = Command::new(BIN)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "posbridge --version");
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// The release binary's size as built and stripped (`strip` on a copy).
pub fn binary_sizes() -> (u64, Option<u64>) {
    let built = std::fs::metadata(BIN).map_or(0, |m| m.len());
    let copy: PathBuf =
        std::env::temp_dir().join(format!("posbridge-stripped-{}", std::process::id()));
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(BIN)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    (built, stripped)
}

/// VmRSS, RssAnon and RssFile (the binary's and libraries' pages) in KiB.
pub fn rss_split(d: &Daemon) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

/// The config the benchmark's first daemon runs with: the metrics page on a free local port, so
/// that SQLite's own memory counters can be read beside the RSS.
pub const METRICS_CONFIG: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

/// The daemon's metrics page; the address is the one the daemon logged in `dir`. `None` when
/// the page cannot be read.
fn metrics_page(dir: &Path) -> Option<String> {
    use std::io::{Read, Write};
    let log = std::fs::read_to_string(dir.join("daemon.log")).ok()?;
    let addr = log
        .split("metrics on http://")
        .nth(1)?
        .split("/metrics")
        .next()?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .ok()?;
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    Some(page)
}

/// SQLite's heap in the daemon (`posbridge_sqlite_memory_bytes`) and each connection's page
/// cache (`posbridge_sqlite_cache_bytes`), in KiB, read from its metrics page.
pub fn sqlite_memory(dir: &Path) -> Option<(u64, Vec<(String, u64)>)> {
    let page = metrics_page(dir)?;
    let kib = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .map(|b| (b / 1024.0).round() as u64)
    };
    let mut total = None;
    let mut caches = Vec::new();
    for line in page.lines() {
        if let Some(v) = line.strip_prefix("posbridge_sqlite_memory_bytes ") {
            total = kib(v);
        } else if let Some(rest) = line.strip_prefix("posbridge_sqlite_cache_bytes{connection=\"") {
            let (name, v) = rest.split_once("\"} ")?;
            caches.push((name.to_owned(), kib(v)?));
        }
    }
    Some((total?, caches))
}

/// The sim backend's pay calls so far (`posbridge_provider_call_duration_seconds`): their
/// total time in seconds and their count; (0, 0) before the first.
pub fn sim_pay_calls(dir: &Path) -> Option<(f64, f64)> {
    let page = metrics_page(dir)?;
    if !page.contains("# TYPE posbridge_provider_call_duration_seconds histogram") {
        return None;
    }
    let value = |what: &str| {
        let key = format!(
            "posbridge_provider_call_duration_seconds_{what}{{provider=\"sim\",action=\"pay\"}} "
        );
        page.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((value("sum").unwrap_or(0.0), value("count").unwrap_or(0.0)))
}

/// Lines in the daemon's log so far.
pub fn log_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("daemon.log")).map_or(0, |s| s.lines().count())
}

/// The filesystem type and source `dir` is on.
pub fn fs_of(dir: &Path) -> String {
    Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE,SOURCE", "-T"])
        .arg(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// What the scheduler has counted for all of `pid`'s threads so far
/// (`/proc/PID/task/*/schedstat`): time on a CPU, time runnable but waiting for one (both in
/// ns), and slices (times put on a CPU). `None` without schedstat.
pub fn sched(pid: u32) -> Option<[u64; 3]> {
    let mut sum = [0u64; 3];
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue; // a thread that ended meanwhile
        };
        for (total, field) in sum.iter_mut().zip(text.split_whitespace()) {
            *total += field.parse::<u64>().ok()?;
        }
    }
    Some(sum)
}

/// The 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().next().unwrap_or("?").to_owned())
        .unwrap_or_else(|_| "?".into())
}
