//! PhonePe while the counter's wall clock steps (src/clock.rs): "not found" is believed only
//! once the sale request could no longer come alive, counted on the monotonic clock, so a
//! clock NTP sets in the middle of a sale never turns a sale PhonePe is still taking into
//! "nothing charged".

use std::time::Duration;

use serde_json::json;

use super::common::clock::SteppedClock;
use super::common::replica::Replica;
use super::common::Daemon;
use super::{config, in_background, salt_file, wait_for, Setup, SALT};

/// PhonePe acts on an init 3 s after it arrives; we give up on the init after 1 s, so the
/// first status checks answer "not found" while the sale is still on its way.
fn late_phonepe(clock: &SteppedClock, dir: tempfile::TempDir) -> Setup {
    let replica = Replica::start(dir.path(), "phonepe", SALT, &[("init_delay_ms", "3000")]);
    let salt = salt_file(&dir, SALT);
    let (k, v) = clock.env();
    let d = Daemon::start_with(Some(&config(&replica.url, &salt, &[])), &[(k, &v)]);
    Setup { dir, replica, d }
}

/// Starts sale `id`, waits until PhonePe has the init, steps the clock by `then` seconds (from
/// wherever it stood), and returns the sale's answer.
fn sale_across_a_step(s: &Setup, clock: &SteppedClock, id: &str, then: i64) -> serde_json::Value {
    let inits = s.inits();
    let sale = in_background(
        &s.d,
        json!({"action": "pay", "request_id": id, "amount": 1000}),
    );
    wait_for("PhonePe to get the init", Duration::from_secs(5), || {
        s.inits() > inits
    });
    clock.offset(then);
    sale.join().unwrap().expect("an answer")
}

#[test]
fn ntp_setting_a_1970_clock_mid_sale_does_not_make_not_found_final() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    clock.to_1970();
    let s = late_phonepe(&clock, dir);
    // The counter booted at 1970; NTP sets the real time (56 years forward) mid-sale.
    let a = sale_across_a_step(&s, &clock, "boot-1970", 0);
    assert_eq!(a["data"]["status"], "approved", "{a}");
    // The stamp was taken before the step: it says 1970, and decides nothing.
    assert!(
        a["data"]["created_at"]
            .as_str()
            .unwrap()
            .starts_with("1970-"),
        "{a}"
    );
    assert_eq!(s.calls("boot-1970"), 1);
    assert_eq!(s.inits(), 1, "never re-sent");
    s.no_secret_in_log();
}

#[test]
fn a_clock_stepped_a_day_back_or_forward_mid_sale_still_finds_the_sale() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    let s = late_phonepe(&clock, dir);
    for (id, step) in [("back-1d", -86_400), ("fwd-1d", 86_400)] {
        let a = sale_across_a_step(&s, &clock, id, step);
        assert_eq!(a["data"]["status"], "approved", "{id}: {a}");
        assert_eq!(s.calls(id), 1, "{id}");
        clock.offset(0);
    }
    assert_eq!(s.inits(), 2, "never re-sent");
    s.no_secret_in_log();
}

#[test]
fn a_refusal_while_the_clock_is_far_off_names_the_clock() {
    // PhonePe's clock (its Date) is a day ahead and it refuses our X-VERIFY: the cashier is
    // told the clock is off, and nothing was charged.
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "phonepe-clock");
    clock.offset(86_400);
    let (k, v) = clock.env();
    let replica = Replica::start_env(
        &dir.path().join("phonepe-replica.json"),
        "127.0.0.1:0",
        "phonepe",
        SALT,
        &[],
        &[(k, &v)],
    );
    let salt = salt_file(&dir, "not-the-salt");
    let d = Daemon::start_with(Some(&config(&replica.url, &salt, &[])), &[]);
    let s = Setup { dir, replica, d };
    let a = s.pay("refused-skew", 1000, json!({}));
    assert_eq!(a["error_type"], "default_error", "{a}");
    assert_eq!(a["reason"], "clock_skew", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("s behind PhonePe's"),
        "{a}"
    );
    assert!(s.txn("refused-skew").is_null(), "nothing created");
}
