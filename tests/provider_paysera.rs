//! The Paysera provider end to end: the real daemon over its socket, `base_url` pointed at the
//! Paysera replica (`posbridge replica paysera`), which checks every MAC and counts the
//! money-moving calls (order create, confirm) per request-derived key. Covers approve, decline
//! (amount ..52), expiry (..51, the customer never pays), cancel, refund (not supported), every
//! fault before/after the money-moving calls, kill -9 mid-sale, and a wrong key.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::replica::Replica;
use common::Daemon;
use posbridge::provider::paysera::derived_key;
use serde_json::{json, Value};

const KEY: &str = "ps-test-mac-key-9f3b1c77";

struct Rig {
    d: Daemon,
    r: Replica,
    _dir: tempfile::TempDir,
}

/// A replica verifying with `replica_key` and a daemon signing with `daemon_key`.
fn rig_keys(daemon_key: &str, replica_key: &str, window_ms: u64, opts: &[(&str, &str)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut options = vec![("client_id", "till-test")];
    options.extend_from_slice(opts);
    let r = Replica::start(dir.path(), "paysera", replica_key, &options);
    let key_file = dir.path().join("mac_key");
    std::fs::write(&key_file, format!("{daemon_key}\n")).unwrap();
    let config = format!(
        r#"default_provider = "paysera"
[providers.paysera]
base_url = "{}"
client_id = "till-test"
mac_key_file = "{}"
spot_id = "7"
currency = "EUR"
timeout_ms = {window_ms}
status_poll_ms = [100]
"#,
        r.url,
        key_file.display()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    Rig { d, r, _dir: dir }
}

fn rig(window_ms: u64, opts: &[(&str, &str)]) -> Rig {
    rig_keys(KEY, KEY, window_ms, opts)
}

impl Rig {
    fn pay(&self, id: &str, amount: u64) -> Value {
        self.d
            .request(json!({"action": "pay", "request_id": id, "amount": amount}))
    }

    /// Money-moving calls the replica saw for sale `id`: (creates, confirms).
    fn calls(&self, id: &str) -> (u64, u64) {
        let c = &self.r.state()["calls"][derived_key(id)];
        (
            c["create"].as_u64().unwrap_or(0),
            c["confirm"].as_u64().unwrap_or(0),
        )
    }

    /// The replica's order for sale `id`.
    fn order(&self, id: &str) -> Value {
        let state = self.r.state();
        let key = derived_key(id);
        let orders = state["orders"].as_object().unwrap();
        let found: Vec<&Value> = orders
            .values()
            .filter(|o| o["order_id"] == key.as_str())
            .collect();
        assert_eq!(found.len(), 1, "one order for {id}: {state}");
        found[0].clone()
    }

    /// get_result until the outcome is no longer unknown.
    fn settled(&self, id: &str) -> Value {
        self.d.await_result(id, Duration::from_secs(20), |v| {
            v["error_type"] != "unknown_result_error"
        })
    }

    /// Every test ends here: the MAC key never reached the log.
    fn finish(self) {
        let log = self.d.log();
        assert!(!log.contains(KEY), "the MAC key is in the daemon log");
        assert!(
            !log.contains("mac=\""),
            "an Authorization header is in the log"
        );
    }
}

fn approved(v: &Value) {
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(v["data"]["provider"], "paysera", "{v}");
}

fn failed(v: &Value, reason: &str) {
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}

#[test]
fn pay_is_confirmed_after_the_customer_reserves() {
    let rig = rig(3000, &[]);
    let v = rig.pay("ps-ok", 1299);
    approved(&v);
    let order = rig.order("ps-ok");
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(
        v["data"]["provider_reference"], order["transaction_key"],
        "{v}"
    );
    assert_eq!(v["data"]["qr_payload"], "PAYSERA*1001:spot-7", "{v}");
    assert_eq!(v["data"]["currency"], "EUR", "{v}");
    assert_eq!(order["price"], 1299);
    assert_eq!(rig.calls("ps-ok"), (1, 1));
    // The spot code a DQR display would show is in the debug log.
    assert!(rig.d.log().contains("PAYSERA*1001:spot-7"));
    // Replayed byte for byte.
    let again = rig
        .d
        .request(json!({"action": "get_result", "request_id": "ps-ok"}));
    assert_eq!(again, v);
    rig.finish();
}

#[test]
fn a_rejected_reservation_is_declined_and_never_confirmed() {
    let rig = rig(3000, &[]);
    let v = rig.pay("ps-52", 1252);
    failed(&v, "declined");
    assert_eq!(rig.calls("ps-52"), (1, 0));
    rig.finish();
}

#[test]
fn a_customer_who_never_pays_is_revoked_and_expired() {
    let rig = rig(1500, &[]);
    let started = Instant::now();
    let v = rig.pay("ps-51", 1251);
    failed(&v, "expired");
    assert!(started.elapsed() >= Duration::from_millis(1400), "{v}");
    let order = rig.order("ps-51");
    assert_eq!(order["status"], "closed", "{order}");
    assert_eq!(order["transaction_status"], "revoked", "{order}");
    assert_eq!(rig.calls("ps-51"), (1, 0));
    rig.finish();
}

/// Sends `req` from a thread; the answer line, or `None` if the daemon died first.
fn send_in_thread(d: &Daemon, req: Value) -> JoinHandle<Option<String>> {
    let stream = UnixStream::connect(&d.socket).expect("connect");
    std::thread::spawn(move || {
        let mut w = stream.try_clone().ok()?;
        w.write_all(format!("{req}\n").as_bytes()).ok()?;
        let mut line = String::new();
        match BufReader::new(stream).read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim_end().to_owned()),
            _ => None,
        }
    })
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cancel_revokes_an_open_sale_and_refuses_a_paid_one() {
    let rig = rig(4000, &[]);
    // ..51: the customer does not pay; the cashier cancels while the sale waits.
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-open", "amount": 851}),
    );
    wait_until("the order exists", || rig.calls("ps-open").0 == 1);
    let primary = json!({"request_id": "ps-open", "provider": "paysera", "amount": 851});
    let c = rig
        .d
        .request(json!({"action": "cancel", "request_id": "ps-open-c",
        "amount": 851, "primary_transaction": primary}));
    assert_eq!(c["code"], 0, "{c}");
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    let pay: Value = serde_json::from_str(&pending.join().unwrap().unwrap()).unwrap();
    failed(&pay, "expired");
    assert_eq!(rig.order("ps-open")["transaction_status"], "revoked");

    let paid = rig.pay("ps-paid", 900);
    approved(&paid);
    let c = rig
        .d
        .request(json!({"action": "cancel", "request_id": "ps-paid-c",
        "amount": 900, "primary_transaction": paid["data"]}));
    failed(&c, "already_completed");
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    assert_eq!(rig.order("ps-paid")["status"], "confirmed");
    rig.finish();
}

#[test]
fn refund_is_not_supported_and_nothing_is_sent() {
    let rig = rig(3000, &[]);
    let paid = rig.pay("ps-r", 700);
    approved(&paid);
    let before = rig.r.requests();
    let v = rig
        .d
        .request(json!({"action": "refund", "request_id": "ps-r-1",
        "amount": 100, "primary_transaction": paid["data"]}));
    failed(&v, "not_supported");
    assert_eq!(rig.r.requests(), before);
    rig.finish();
}

/// Runs one sale with `fault` armed; returns the first answer and the settled one.
fn with_fault(id: &str, fault: Value) -> (Rig, Value, Value) {
    let rig = rig(3000, &[]);
    rig.r.arm(fault);
    let first = rig.pay(id, 1000);
    let settled = rig.settled(id);
    (rig, first, settled)
}

#[test]
fn error_before_the_order_is_created_ends_not_processed() {
    let fault = json!({"path": "/rest/v1/spot/7/order", "kind": "error", "after": false});
    let (rig, first, settled) = with_fault("ps-f1", fault);
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    failed(&settled, "not_processed");
    assert_eq!(rig.calls("ps-f1"), (0, 0));
    rig.finish();
}

#[test]
fn faults_after_the_order_is_created_are_found_and_approved_at_once() {
    for (i, kind) in ["error", "drop", "timeout", "garbage"].iter().enumerate() {
        let id = format!("ps-f2-{i}");
        let fault = json!({"path": "/rest/v1/spot/7/order", "kind": kind, "after": true});
        let (rig, first, settled) = with_fault(&id, fault);
        approved(&first);
        assert_eq!(first, settled, "{kind}");
        assert_eq!(rig.calls(&id), (1, 1), "{kind}");
        rig.finish();
    }
}

#[test]
fn slow_and_failing_reads_are_waited_out() {
    let rig = rig(3000, &[]);
    rig.r
        .arm(json!({"path": "/rest/v1/spot/7", "kind": "slow", "delay_ms": 400}));
    rig.r
        .arm(json!({"path": "/rest/v1/order/", "kind": "error", "count": 2}));
    let v = rig.pay("ps-f3", 1000);
    approved(&v);
    assert_eq!(rig.calls("ps-f3"), (1, 1));
    rig.finish();
}

#[test]
fn a_lost_confirm_answer_is_read_back_as_approved() {
    let fault = json!({"path": "/rest/v1/transaction/", "kind": "drop", "after": true});
    let (rig, first, _) = with_fault("ps-f4", fault);
    approved(&first);
    assert_eq!(rig.calls("ps-f4"), (1, 1));
    rig.finish();
}

#[test]
fn a_confirm_that_never_arrived_is_sent_by_reconciliation_once() {
    let fault = json!({"path": "/rest/v1/transaction/", "kind": "error", "after": false});
    let (rig, first, settled) = with_fault("ps-f5", fault);
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    approved(&settled);
    assert_eq!(rig.order("ps-f5")["status"], "confirmed");
    assert_eq!(rig.calls("ps-f5"), (1, 1));
    rig.finish();
}

#[test]
fn kill9_while_the_customer_scans_is_confirmed_once_after_restart() {
    let mut rig = rig(6000, &[("reserve_after_ms", "1500")]);
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-k1", "amount": 2500}),
    );
    wait_until("the order exists", || rig.calls("ps-k1").0 == 1);
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    let v = rig.settled("ps-k1");
    approved(&v);
    assert_eq!(rig.calls("ps-k1"), (1, 1));
    assert_eq!(
        v["data"]["provider_reference"],
        rig.order("ps-k1")["transaction_key"]
    );
    rig.finish();
}

#[test]
fn kill9_between_reserve_and_confirm_confirms_once_after_restart() {
    let mut rig = rig(6000, &[]);
    // The confirm hangs without reaching the backend; the daemon dies meanwhile.
    rig.r
        .arm(json!({"path": "/rest/v1/transaction/", "kind": "timeout", "after": false}));
    let pending = send_in_thread(
        &rig.d,
        json!({"action": "pay", "request_id": "ps-k2", "amount": 2600}),
    );
    wait_until("the confirm is on its way", || {
        rig.r
            .requests()
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.ends_with("/confirm"))
    });
    assert_eq!(rig.order("ps-k2")["status"], "reserved");
    rig.d.kill9();
    assert_eq!(pending.join().unwrap(), None);
    rig.d.restart();
    let v = rig.settled("ps-k2");
    approved(&v);
    assert_eq!(rig.calls("ps-k2"), (1, 1));
    rig.finish();
}

#[test]
fn a_wrong_key_is_unauthorized_and_creates_nothing() {
    let rig = rig_keys("not-the-key", KEY, 3000, &[]);
    let v = rig.pay("ps-key", 1000);
    failed(&v, "unauthorized");
    assert!(v["message"].as_str().unwrap().contains("mac_key"), "{v}");
    assert_eq!(rig.r.state()["orders"], json!({}));
    assert!(!rig.d.log().contains("not-the-key"));
    rig.finish();
}

#[test]
fn the_replica_refuses_unsigned_requests_like_paysera() {
    let rig = rig(3000, &[]);
    let resp = unsigned_get(&format!("{}/rest/v1/spot/7", rig.r.url));
    assert_eq!(resp.0, 401);
    assert_eq!(resp.1["error"], "unauthorized", "{}", resp.1);
    rig.finish();
}

/// A plain unsigned GET: (status, JSON body).
fn unsigned_get(url: &str) -> (u16, Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json().await.unwrap())
        })
}
