//! The counter's wall clock steps (issue 11, part 4), through the real binary: the daemon's
//! wall clock is stepped with the test seam `POSBRIDGE_TEST_CLOCK_OFFSET_FILE` (src/clock.rs).
//! Paysera refuses a MAC whose `ts` is stale, and the sale says `clock_skew` (before anything
//! is charged: final; mid-sale: unknown until the clock is right, then the real outcome);
//! `posbridge doctor` measures the skew against a backend's `Date`; the journal's order and
//! eviction do not follow the wall clock. PhonePe and IOT Pay windows: their own test files.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::clock::SteppedClock;
use common::paysera::{approved, failed, rig_with, Setup};
use common::replica::Replica;
use common::{Daemon, BIN};
use serde_json::{json, Value};

#[test]
fn paysera_refuses_a_counter_a_day_behind_as_clock_skew_and_nothing_is_charged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    let (k, v) = clock.env();
    clock.offset(-86_400);
    let rig = rig_with(Setup {
        env: &[(k, &v)],
        ..Default::default()
    });
    let a = rig.pay("skew-1", 1200);
    failed(&a, "clock_skew");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("s behind Paysera's"), "{a}");
    assert!(msg.contains("Nothing was charged"), "{a}");
    assert!(rig.transactions("skew-1").is_empty(), "nothing created");
    // NTP sets the clock: the next sale goes through.
    clock.offset(0);
    approved(&rig.pay("skew-2", 1200));
    assert_eq!(rig.calls("skew-2"), (1, 1));
    rig.finish();
}

#[test]
fn paysera_refusing_a_stale_ts_mid_sale_leaves_it_unknown_then_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    let (k, v) = clock.env();
    // The customer pays 1 s after the order appears; the window is 2 s.
    let rig = rig_with(Setup {
        window_ms: 2000,
        replica_options: &[("reserve_after_ms", "1000")],
        env: &[(k, &v)],
        ..Default::default()
    });
    let socket = rig.d.socket.clone();
    let sale = std::thread::spawn(move || {
        let mut c = common::Client::connect(&socket).unwrap();
        c.request(&json!({"action": "pay", "request_id": "mid-1", "amount": 1300}))
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rig
        .transactions("mid-1")
        .first()
        .map(|t| t["order_creates"].as_u64())
        != Some(Some(1))
    {
        assert!(std::time::Instant::now() < deadline, "no order appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The clock steps a day back while the customer is paying: every call is refused now.
    clock.offset(-86_400);
    let a = sale.join().unwrap();
    assert_eq!(a["error_type"], "unknown_result_error", "{a}");
    assert_eq!(a["reason"], "clock_skew", "{a}");
    // Never a final answer from a refusal: still unknown while the clock is off.
    let again = rig
        .d
        .request(json!({"action": "get_result", "request_id": "mid-1"}));
    assert_eq!(again["error_type"], "unknown_result_error", "{again}");
    // The clock is set right: the reservation is found only now, after the sale's 2 s
    // deadline (the POS was told "unknown"): it is revoked, never confirmed late.
    clock.offset(0);
    let last = rig.settled("mid-1");
    failed(&last, "expired");
    assert_eq!(rig.calls("mid-1"), (1, 0));
    assert_eq!(rig.transaction("mid-1")["status"], "revoked");
    rig.finish();
}

fn doctor(config: &Path, state: &Path, socket: &Path) -> Value {
    let out: Output = Command::new(BIN)
        .args(["doctor", "--json", "--timeout", "3", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .arg("--socket")
        .arg(socket)
        .env_remove("POSBRIDGE_SOCKET")
        .env_remove("POSBRIDGE_CONFIG")
        .env_remove("POSBRIDGE_STATE_DIR")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn doctor_says_by_how_much_the_clock_is_off_each_backend() {
    let dir = tempfile::tempdir().unwrap();
    // The backend's clock (its Date header) runs 30 s, then 400 s, ahead of the counter's.
    let clock = SteppedClock::new(dir.path(), "backend-clock");
    let (k, v) = clock.env();
    let r = Replica::start_env(
        &dir.path().join("iotpay-replica.json"),
        "127.0.0.1:0",
        "iotpay",
        "k",
        &[("mch_id", "1")],
        &[(k, &v)],
    );
    let key = dir.path().join("iotpay.key");
    std::fs::write(&key, "k").unwrap();
    let config = format!(
        "default_provider = \"iotpay\"\n[providers.iotpay]\nbase_url = \"{}/v1/\"\nmch_id = \"1\"\n\
         key_file = \"{}\"\njob_no = \"c1\"\ncurrency = \"CAD\"\n",
        r.url,
        key.display()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    let check = |report: &Value| common::doctor_check(report, "backend.iotpay.clock").clone();
    let config_path = d.config.clone().unwrap();
    let run = || doctor(&config_path, &d.state, &d.socket);

    let ok = check(&run());
    assert_eq!(ok["status"], "ok", "{ok}");
    clock.offset(30);
    let warn = check(&run());
    assert_eq!(warn["status"], "warn", "{warn}");
    let detail = warn["detail"].as_str().unwrap();
    assert!(detail.contains("behind"), "{warn}");
    let secs: u64 = detail
        .split("clock is ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {detail:?}"));
    eprintln!("doctor measured {secs} s against a backend 30 s ahead");
    assert!((29..=31).contains(&secs), "{warn}");
    clock.offset(400);
    let fail = check(&run());
    assert_eq!(fail["status"], "fail", "{fail}");
    assert!(
        fail["fix"].as_str().unwrap().contains("timedatectl"),
        "{fail}"
    );
}

#[test]
fn journal_order_and_eviction_ignore_a_wall_clock_that_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    let (k, v) = clock.env();
    let d = Daemon::start_with(Some("[journal]\ncapacity = 3\n"), &[(k, &v)]);
    // Each sale is stamped earlier than the one before: now, a day back, 1970, a year back.
    let steps: [(&str, Option<i64>); 4] = [
        ("j-1", Some(0)),
        ("j-2", Some(-86_400)),
        ("j-3", None),
        ("j-4", Some(-86_400 * 365)),
    ];
    for (id, offset) in steps {
        match offset {
            Some(s) => clock.offset(s),
            None => clock.to_1970(),
        }
        let a = d.request(json!({"action": "pay", "request_id": id, "amount": 100}));
        assert_eq!(a["code"], 0, "{a}");
    }
    let listed = d.request(json!({"action": "results", "limit": 10}));
    let ids = common::result_ids(&listed);
    // Newest first by sequence, and the first sale (with the latest stamp) evicted.
    assert_eq!(ids, ["j-4", "j-3", "j-2"], "{listed}");
    let gone = d.request(json!({"action": "get_result", "request_id": "j-1"}));
    assert_eq!(gone["error_type"], "result_not_found_error", "{gone}");
}
