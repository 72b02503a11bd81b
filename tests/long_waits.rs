//! Long waits stay healthy (issue 19 item 6), against the real binary: while a sale waits for
//! its customer (the sim's `params.delay_ms` at its 10-minute maximum, and a PhonePe sale
//! whose customer never pays, checked on PhonePe's published schedule), and while a paired
//! BLE card reader is asleep (it stops answering and its link drops: the daemon tries again
//! with backoff), the daemon burns next to no CPU, its memory stays put, and the watchdog
//! keeps pinging.
//!
//! The bound is on a resource, not on time: CPU seconds used over a window of 50 watchdog
//! pings (~25 s at WATCHDOG_USEC=1 s) must stay under 10% of the window's wall time. A busy
//! loop on one thread uses close to 100% of a core, and still over 20% when this machine's two
//! cores are shared by five builders; a waiting daemon wakes for a watchdog tick (a journal
//! commit) every 500 ms and for a PhonePe status check every few seconds, well under 1%.
//! The 24-hour reconciler case runs on tokio's paused clock: src/engine/reconcile_tests.rs.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::bluez::MockBluez;
use common::emulator::Emulator;
use common::replica::Replica;
use common::Daemon;
use serde_json::json;

const SALT: &str = "pp-salt-long-wait";

/// utime + stime of `pid`, in seconds (/proc/PID/stat, fields 14 and 15, clock ticks).
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}

/// Resident memory of `pid` in kB (VmRSS).
fn rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Counts WATCHDOG=1 datagrams on `sock` until `n` have come (or 180 s: a bound for a daemon
/// that stopped pinging, not a speed requirement).
fn pings(sock: &UnixDatagram, n: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(180);
    let mut seen = 0;
    let mut buf = [0u8; 4096];
    while seen < n && Instant::now() < end {
        if let Ok(len) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..len])
                .lines()
                .any(|l| l == "WATCHDOG=1")
            {
                seen += 1;
            }
        }
    }
    seen
}

/// A notification socket, and a daemon with `config` sending to it with a 1 s watchdog.
fn watched_daemon(dir: &std::path::Path, config: &str) -> (UnixDatagram, Daemon) {
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let d = Daemon::start_with(
        Some(config),
        &[
            ("NOTIFY_SOCKET", notify.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
            ("RUST_LOG", "info"),
        ],
    );
    (sock, d)
}

/// Over 50 watchdog pings: prints the daemon's CPU time and resident memory over the window
/// and checks the resource bounds (see the top of this file).
fn quiet_over_fifty_pings(d: &Daemon, sock: &UnixDatagram, what: &str) {
    let pid = d.pid();
    let (cpu0, rss0, t0) = (cpu_seconds(pid), rss_kb(pid), Instant::now());
    let seen = pings(sock, 50);
    let (cpu1, rss1, wall) = (cpu_seconds(pid), rss_kb(pid), t0.elapsed());
    let cpu = cpu1 - cpu0;
    let share = cpu / wall.as_secs_f64();
    println!(
        "{what}: {wall:.1?} window, {seen} watchdog pings, CPU {cpu:.2} s \
         ({:.2}% of the window; bound 10%), RSS {rss0} kB -> {rss1} kB",
        share * 100.0
    );
    assert_eq!(seen, 50, "{what}: the watchdog stopped pinging");
    assert!(
        share < 0.10,
        "{what}: CPU {cpu:.2} s over {wall:.1?}: a busy loop"
    );
    // A window this short cannot show a slow leak; it does show growth per wake-up (a buffer
    // kept per status check or per tick), which 16 MiB bounds generously.
    assert!(
        rss1 < rss0 + 16 * 1024,
        "{what}: resident memory grew from {rss0} kB to {rss1} kB"
    );
}

#[test]
fn a_sale_waiting_ten_minutes_for_its_customer_costs_no_cpu_and_the_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let salt = dir.path().join("salt_key");
    std::fs::write(&salt, SALT).unwrap();
    // The customer pays after 10 minutes: the sale waits all through this test.
    let replica = Replica::start(dir.path(), "phonepe", SALT, &[("pay_after_ms", "600000")]);
    let config = format!(
        "[providers.sim]\ntimeout_ms = 3600000\n\
         [providers.phonepe]\nbase_url = {:?}\nmerchant_id = \"MERCH1\"\nstore_id = \"STORE1\"\n\
         terminal_id = \"TERM1\"\nprovider_id = \"PROV1\"\nsalt_index = 1\n\
         salt_key_file = {:?}\ntimeout_ms = 3600000\n",
        replica.url,
        salt.display().to_string()
    );
    let (sock, d) = watched_daemon(dir.path(), &config);
    let _sim = common::send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "slow-sim", "amount": 1000,
               "params": {"delay_ms": 600000}}),
    );
    let _phonepe = common::send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "slow-phonepe", "amount": 1000,
               "provider": "phonepe"}),
    );
    d.wait_in_flight(2, "the two waiting sales");

    quiet_over_fifty_pings(&d, &sock, "two sales waiting");
    let status = d.request(json!({"action": "status"}));
    assert_eq!(
        status["data"]["running"], 2,
        "both sales still wait: {status}"
    );
    let checks = replica.requests();
    println!("PhonePe calls while the customer had not paid: {checks}");
}

#[test]
fn a_paired_ble_reader_asleep_costs_no_cpu_and_the_watchdog_pings() {
    const ADDR: &str = "C0:FF:EE:00:00:5E";
    let dir = tempfile::tempdir().unwrap();
    let bluez = MockBluez::start();
    let account = common::lifepay_account(dir.path(), "ble-s3cret");
    let emu = Emulator::start(
        "card-reader",
        dir.path(),
        "reader",
        &["--serial", "SLEEPY", "--account", &account],
    );
    bluez.add_nus_device(ADDR, "posbridge-emu", -48, &emu.link, 23);
    let config = format!(
        "[providers.lifepay]\nlogin = \"shop-17\"\npassword_file = {:?}\ncurrency = \"INR\"\n",
        dir.path().join("lifepay.password").display().to_string()
    );
    let (sock, d) = watched_daemon(dir.path(), &config);
    // As the CLI pairs it once it has bonded it by numeric comparison (tests/ble_pairing.rs).
    let paired = d.request(json!({"action": "pair", "address": format!("ble:{ADDR}"),
        "role": "card-reader", "bond": "numeric_comparison"}));
    assert_eq!(paired["code"], 0, "{paired}\n{}", d.log());

    // The reader falls asleep: it answers nothing and its link drops.
    emu.pause();
    bluez.disconnect_from_device(ADDR);
    let end = Instant::now() + Duration::from_secs(60);
    while d.request(json!({"action": "devices"}))["data"]["devices"][0]["connected"] != false {
        assert!(Instant::now() < end, "the link never dropped:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The first 25 s of its sleep hold the fastest retries (0.5 s doubling to 30 s).
    quiet_over_fifty_pings(&d, &sock, "a paired BLE reader asleep");
    let listed = d.request(json!({"action": "devices"}));
    assert_eq!(listed["data"]["devices"][0]["connected"], false, "{listed}");
    emu.resume();
}
