//! BLE end to end, as a technician and a POS would use it: the real daemon, the mock BlueZ on a
//! private system bus, and `posbridge emulate card-reader` as the peripheral's firmware (the
//! mock carries NUS writes and notifications to and from the emulator's pty). `scan`, `pair
//! ble:...`, a lifepay sale over NUS notifications, and a device-side disconnect mid-sale that
//! is reconciled from the reader's memory — one charge, never a second START_SALE.

mod common;

use std::path::Path;
use std::time::Duration;

use common::bluez::MockBluez;
use common::emulator::Emulator;
use common::{json_of, lifepay_account, lifepay_daemon, send_in_thread, Daemon};
use serde_json::{json, Value};

const ADDR: &str = "C0:FF:EE:00:00:42";

/// Mock BlueZ, an emulated reader behind NUS device ADDR, and a daemon with lifepay.
fn rig(dir: &Path, serial: &str) -> (MockBluez, Emulator, Daemon) {
    let bluez = MockBluez::start();
    let account = lifepay_account(dir, "ble-s3cret");
    let emu = Emulator::start(
        "card-reader",
        dir,
        "reader",
        &["--serial", serial, "--account", &account],
    );
    bluez.add_nus_device(ADDR, "posbridge-emu", -48, &emu.link, 23);
    let d = lifepay_daemon(dir, "ble-s3cret");
    (bluez, emu, d)
}

/// Pairs ADDR over the socket as the CLI does once it has bonded the reader by numeric
/// comparison (tests/ble_pairing.rs drives that part).
fn pair(d: &Daemon) -> Value {
    let paired = d.request(json!({"action": "pair", "address": format!("ble:{ADDR}"),
        "role": "card-reader", "bond": "numeric_comparison"}));
    assert_eq!(paired["code"], 0, "{paired}\n{}", d.log());
    paired
}

fn scan(d: &Daemon) -> Vec<Value> {
    let out = d.cli(&["scan", "--seconds", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    json_of(&out)["data"]["found"].as_array().unwrap().clone()
}

#[test]
fn ble_scan_pair_and_sell_on_an_emulated_reader_over_nus() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "BLE1");

    let found = scan(&d);
    let ours = found
        .iter()
        .find(|f| f["address"] == ADDR)
        .unwrap_or_else(|| panic!("{ADDR} not found: {found:?}"));
    assert_eq!(ours["rssi"], -48);
    assert_eq!(ours["name"], "posbridge-emu");
    assert_eq!(ours["paired"], false);

    let paired = pair(&d);
    assert_eq!(paired["data"]["transport"], "ble", "{paired}");
    assert_eq!(paired["data"]["serial"], "BLE1", "{paired}");
    let listed = d.request(json!({"action": "devices"}));
    assert_eq!(listed["data"]["devices"][0]["connected"], true, "{listed}");

    let (code, sale) = d.lifepay_pay("ble-sale", 2500);
    assert_eq!(code, Some(0), "{sale}\n{}", d.log());
    assert_eq!(sale["data"]["status"], "approved", "{sale}");
    assert_eq!(sale["data"]["card"]["masked_pan"], "411111******1111");
    assert_eq!(emu.charges(&d.backend_id("ble-sale")), (1, 1));
    // The frames really went over NUS: the host wrote to RX in chunks of at most MTU - 3.
    let writes = bluez.writes(ADDR);
    assert!(writes.len() > 3, "{} writes", writes.len());
    assert!(writes.iter().all(|(w, _)| w.len() <= 20));

    assert_eq!(
        scan(&d).iter().find(|f| f["address"] == ADDR).unwrap()["paired"],
        true
    );
    assert!(
        !d.log().contains("ble-s3cret"),
        "the password must never be logged"
    );
}

#[test]
fn ble_device_side_disconnect_mid_sale_is_reconciled_with_one_charge() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "BLE2");
    pair(&d);

    // Amount ..93 takes 3 s on the reader; the radio link drops once the charge is under way.
    let paying = d.slow_reader_sale_in_thread("ble-cut");
    emu.wait_started(&d.backend_id("ble-cut"));
    bluez.disconnect_from_device(ADDR);
    let out = paying.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}\n{}", d.log());
    let cut = json_of(&out);
    assert_eq!(cut["error_type"], "unknown_result_error", "{cut}");

    // The daemon reconnects by itself and asks the reader; the reader finished the sale.
    let settled = d.await_result("ble-cut", Duration::from_secs(60), |a| a["code"] != 2);
    assert_eq!(settled["code"], 0, "{settled}\n{}", d.log());
    assert_eq!(settled["data"]["status"], "approved");
    emu.assert_charged_once_never_restarted(&d.backend_id("ble-cut"));
}

/// Abort from the POS over BLE (link protocol version 4, ABORT): the emulated reader's sale
/// (..95: the customer takes 30 s) stops, nothing is charged, and both answers say so.
#[test]
fn ble_an_abort_from_the_pos_stops_the_running_sale_over_nus() {
    let dir = tempfile::tempdir().unwrap();
    let (_bluez, emu, d) = rig(dir.path(), "BLE5");
    pair(&d);
    let paying = send_in_thread(
        &d,
        json!({"action": "pay", "provider": "lifepay", "request_id": "ble-ab", "amount": 2595}),
    );
    emu.wait_started(&d.backend_id("ble-ab"));
    let c = d.request(
        json!({"action": "cancel", "request_id": "ble-ab-c", "amount": 2595,
        "primary_transaction": {"request_id": "ble-ab", "provider": "lifepay", "amount": 2595}}),
    );
    assert_eq!(c["data"]["status"], "cancelled", "{c}\n{}", d.log());
    let sale: Value = serde_json::from_str(&paying.join().unwrap().expect("an answer")).unwrap();
    assert_eq!(sale["reason"], "cancelled", "{sale}");
    assert_eq!(
        emu.charges(&d.backend_id("ble-ab")),
        (0, 0),
        "nothing charged"
    );
}

/// The reader drops the link and, when the daemon comes back, answers nothing (as a reader
/// that requires encryption ignores an unbonded host); the `last_error` in `devices` once the
/// reconnect's HELLO went unanswered.
fn last_error_of_a_silent_reader(bonded: bool, serial: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), serial);
    bluez.set_paired(ADDR, bonded);
    pair(&d);
    emu.pause();
    bluez.disconnect_from_device(ADDR);
    let error = last_error_once(&d, |e| e.contains("HELLO"));
    emu.resume();
    error
}

/// The reader's `last_error` in `devices`, once `wanted` holds for it (bounded: 60 s).
fn last_error_once(d: &Daemon, wanted: impl Fn(&str) -> bool) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = d.request(json!({"action": "devices"}));
        let error = listed["data"]["devices"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if wanted(&error) {
            return error;
        }
        assert!(std::time::Instant::now() < end, "{listed}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ble_a_later_failure_to_connect_still_names_the_missing_bond() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "BLE9");
    bluez.set_paired(ADDR, false);
    pair(&d);
    emu.pause();
    bluez.disconnect_from_device(ADDR);
    last_error_once(&d, |e| e.contains("HELLO"));
    // The next try fails before any HELLO (as a half-open link left by the hang-up makes it
    // fail at a counter): what the technician reads still says why the reader is silent.
    bluez.fail_next("Connect", "org.bluez.Error.Failed", "Input/output error");
    let error = last_error_once(&d, |e| e.contains("Input/output error"));
    emu.resume();
    assert!(
        error.contains("its last link was not bonded") && error.contains("posbridge pair"),
        "{error}"
    );
}

#[test]
fn ble_a_silent_reader_over_an_unbonded_link_is_reported_as_not_bonded() {
    let error = last_error_of_a_silent_reader(false, "BLE7");
    assert!(
        error.contains("the link is not bonded") && error.contains("posbridge pair"),
        "{error}"
    );
}

#[test]
fn ble_a_silent_bonded_reader_is_not_blamed_on_the_bond() {
    let error = last_error_of_a_silent_reader(true, "BLE8");
    assert!(!error.contains("not bonded"), "{error}");
}

#[test]
fn ble_an_unbonded_reader_is_never_sent_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "BLE3");
    bluez.set_paired(ADDR, false);
    pair(&d);

    let (code, refused) = d.lifepay_pay("ble-open", 2500);
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["reason"], "insecure_link", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Nothing was sent or charged"),
        "{refused}"
    );
    assert_eq!(
        emu.state_json()["charges"],
        0,
        "nothing may reach the reader"
    );
    let sent: Vec<u8> = bluez
        .writes(ADDR)
        .into_iter()
        .flat_map(|(w, _)| w)
        .collect();
    assert!(
        !sent
            .windows(b"ble-s3cret".len())
            .any(|w| w == b"ble-s3cret"),
        "the password went over an unencrypted link"
    );
}

#[test]
fn ble_a_restart_of_the_system_bus_is_survived_without_restarting_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bluez, emu, mut d) = rig(dir.path(), "BLE4");
    pair(&d);
    let (code, sale) = d.lifepay_pay("ble-before-bus", 2500);
    assert_eq!(code, Some(0), "{sale}\n{}", d.log());
    let pid = d.pid();

    // `systemctl restart dbus`: every connection to the old bus is dead; BlueZ comes back on the
    // new bus and finds the reader again.
    bluez.restart_bus();
    bluez.add_nus_device(ADDR, "posbridge-emu", -48, &emu.link, 23);

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = d.request(json!({"action": "devices"}));
        if listed["data"]["devices"][0]["connected"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reader was not connected again within 60 s of the bus restart: {listed}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, sale) = d.lifepay_pay("ble-after-bus", 2600);
    assert_eq!(code, Some(0), "{sale}\n{}", d.log());
    assert_eq!(sale["data"]["status"], "approved", "{sale}");
    assert_eq!(d.pid(), pid, "the daemon must not have restarted");
    assert!(
        d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the daemon exited"
    );
    assert_eq!(emu.state_json()["charges"], 2);
}

/// Progress events from a reader over BLE (NUS notifications through the mock BlueZ): the
/// version 4 emulator's STAGE frames reach the POS as events after `on_terminal`, before the
/// answer, and nothing comes after it.
#[test]
fn ble_a_reader_sale_tells_its_stages_over_nus() {
    let dir = tempfile::tempdir().unwrap();
    let (_bluez, emu, d) = rig(dir.path(), "BLE7");
    pair(&d);
    let mut c = d.client();
    let (events, answer) = c.request_with_events(&json!({"action": "pay",
        "request_id": "ble-ev", "amount": 2500, "provider": "lifepay", "progress": true}));
    assert_eq!(answer["code"], 0, "{answer}\n{}", d.log());
    assert_eq!(
        common::stages(&events),
        ["on_terminal", "card_read", "pin_entry", "authorising"],
        "{events:?}"
    );
    let again = c.request(&json!({"action": "get_result", "request_id": "ble-ev"}));
    assert_eq!(again, answer);
    assert_eq!(emu.charges(&d.backend_id("ble-ev")), (1, 1));
}
