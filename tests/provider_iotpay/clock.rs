//! IOT Pay after a restart on a stepped wall clock (src/clock.rs): the create_order wait of a
//! sale an earlier process sent is taken to end as late as it could, counted from the new
//! process's start on the monotonic clock, never from `created_at`; so a clock NTP moved a day
//! forward while the counter was down cannot make "no such order" final early.

use super::common::clock::SteppedClock;
use super::*;

#[test]
fn after_a_restart_on_a_clock_a_day_ahead_no_such_order_waits_the_whole_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SteppedClock::new(dir.path(), "clock-offset");
    let (k, v) = clock.env();
    let r = Replica::start(dir.path(), "iotpay", KEY, &with_mch(&[]));
    // The window after a restart: timeout_ms 4 s + 10 s margin + not_found_final_ms 0.5 s.
    let cfg = config(&r.url, dir.path(), KEY, "", "timeout_ms = 4000");
    let d = Daemon::start_with(Some(&cfg), &[(k, &v)]);
    let mut t = Rig { d, r, _dir: dir };
    // The create_order never reaches IOT Pay and never answers; the daemon dies mid-wait.
    t.r.arm(json!({"path": "/v1/create_order", "kind": "timeout", "after": false}));
    let sale =
        t.d.cli_in_thread(&["pay", "--amount", "1000", "--request-id", "step-1"]);
    let sent = || t.r.requests()["/v1/create_order"].as_u64() == Some(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sent() {
        assert!(Instant::now() < deadline, "create_order never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.d.kill9();
    let _ = sale.join();
    // While the counter was down NTP moved its clock a day forward.
    clock.offset(86_400);
    t.d.restart();
    let restarted = Instant::now();
    // The window the new process must wait, counted from its start (which is before
    // `restarted`): timeout_ms 4 s + 10 s margin + not_found_final_ms 0.5 s.
    let window = Duration::from_millis(14_500);
    let queries = || t.r.requests()["/v1/query_order"].as_u64().unwrap_or(0);
    let before = queries();
    // IOT Pay answers "no such order" from the first query on. Event-driven: ask until the
    // replica has answered 3 query_orders of the new process and the daemon was asked after
    // them; every answer until then must be unknown. A final answer is only allowed once the
    // window has passed on our clock (a slow machine only makes that later, never earlier).
    let mut unknown_after_queries = 0;
    loop {
        let seen = queries() - before;
        let a =
            t.d.request(json!({"action": "get_result", "request_id": "step-1"}));
        if a["error_type"] != "unknown_result_error" {
            assert!(
                restarted.elapsed() >= window,
                "final after {:?}, inside the window: {a}",
                restarted.elapsed()
            );
            break;
        }
        if seen >= 1 {
            unknown_after_queries += 1;
        }
        if seen >= 3 {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(120),
            "the restarted daemon never asked query_order 3 times ({seen})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        unknown_after_queries >= 1,
        "never saw the sale unknown after IOT Pay said \"no such order\": checked nothing"
    );
    // Once the window has passed on the monotonic clock: nothing charged.
    let last = t.settled("step-1", Duration::from_secs(40));
    assert_error(&last, "default_error", "not_processed");
    assert!(t.order("step-1").is_null());
    t.assert_no_secret();
}
