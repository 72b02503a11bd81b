//! Pairing as a technician does it: the real daemon, `posbridge emulate` on a pty, and the CLI
//! (`pair`, `devices`, `unpair`). Devices come and go; the daemon keeps serving and reconnects
//! by itself, also after its own restart.

mod common;

use std::time::{Duration, Instant};

use common::emulator::Emulator;
use common::{json_of, Daemon};
use serde_json::{json, Value};

fn devices(d: &Daemon) -> Vec<Value> {
    let out = d.cli(&["devices", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    json_of(&out)["data"]["devices"].as_array().unwrap().clone()
}

/// Polls `devices` until the one device satisfies `want`; panics with the logs otherwise.
fn wait_device(d: &Daemon, emu: &Emulator, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let list = devices(d);
        if let Some(dev) = list.first().filter(|dev| want(dev)) {
            return dev.clone();
        }
        assert!(
            Instant::now() < deadline,
            "device never {what}: {list:?}\ndaemon log:\n{}\nemulator log:\n{}",
            d.log(),
            emu.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pair_list_lose_and_regain_the_reader_then_unpair() {
    let mut daemon = Daemon::start();
    let mut emu = Emulator::start(
        "card-reader",
        daemon.dir.path(),
        "reader",
        &["--serial", "R42"],
    );
    let out = daemon.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", daemon.log());
    let paired = json_of(&out);
    assert_eq!(paired["code"], 0);
    assert_eq!(paired["data"]["id"], "card-reader-R42");
    assert_eq!(paired["data"]["connected"], true);
    let again = daemon.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(
        json_of(&again)["data"]["id"],
        "card-reader-R42",
        "pairing twice is harmless"
    );

    let list = devices(&daemon);
    assert_eq!(list.len(), 1);
    let dev = &list[0];
    assert_eq!(dev["id"], "card-reader-R42");
    assert_eq!(dev["role"], "card-reader");
    assert_eq!(dev["transport"], "serial");
    assert_eq!(dev["address"], emu.link.display().to_string());
    assert_eq!(dev["connected"], true);
    assert_eq!(dev["model"], "posbridge-emu");
    assert_eq!(dev["firmware"], env!("CARGO_PKG_VERSION"));
    assert_eq!(dev["serial"], "R42");
    assert_eq!(dev["last_error"], Value::Null);
    let table = daemon.cli(&["devices"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("card-reader-R42") && text.contains(" connected"),
        "{text}"
    );
    let registry = std::fs::read_to_string(daemon.state.join("devices.json")).unwrap();
    assert!(registry.contains("\"paired_at\""), "{registry}");

    // The reader goes away: shown as such, and sales on other providers go on.
    emu.kill9();
    let down = wait_device(&daemon, &emu, "disconnected", |d| d["connected"] == false);
    assert!(down["last_error"].is_string(), "{down}");
    let pay = daemon.cli(&["pay", "--amount", "2500", "--json"]);
    assert_eq!(pay.status.code(), Some(0), "{pay:?}");
    assert_eq!(json_of(&pay)["data"]["status"], "approved");

    // It comes back by itself.
    emu.restart();
    wait_device(&daemon, &emu, "reconnected", |d| d["connected"] == true);

    // A daemon restart: the paired reader reconnects without a technician.
    assert!(daemon.terminate().success());
    daemon.restart();
    let back = wait_device(&daemon, &emu, "reconnected after restart", |d| {
        d["connected"] == true
    });
    assert_eq!(back["serial"], "R42");

    let out = daemon.cli(&["unpair", "card-reader-R42", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_of(&out)["data"]["id"], "card-reader-R42");
    assert!(devices(&daemon).is_empty());
    let out = daemon.cli(&["unpair", "card-reader-R42", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["reason"], "not_found");
}

#[test]
fn a_display_paired_as_a_card_reader_is_refused_with_a_clear_message() {
    let daemon = Daemon::start();
    let emu = Emulator::start(
        "dqr-display",
        daemon.dir.path(),
        "display",
        &["--serial", "D7"],
    );
    let out = daemon.cli(&["pair", &emu.address(), "--role", "card-reader"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("answered as a dqr-display, not a card-reader"),
        "{text}"
    );
    let out = daemon.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    let refused = json_of(&out);
    assert_eq!(refused["reason"], "wrong_role");
    assert!(
        refused["message"].as_str().unwrap().starts_with("role: "),
        "{refused}"
    );
    assert!(devices(&daemon).is_empty(), "nothing was paired");

    // As what it is, it pairs.
    let out = daemon.cli(&["pair", &emu.address(), "--role", "dqr-display", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", daemon.log());
    assert_eq!(json_of(&out)["data"]["id"], "dqr-display-D7");
}

#[test]
fn unusable_addresses_are_refused_naming_the_field() {
    let daemon = Daemon::start();
    let pair =
        |addr: &str| json_of(&daemon.cli(&["pair", addr, "--role", "card-reader", "--json"]));
    let bad = pair("serial:ttyUSB0");
    assert_eq!(bad["reason"], "invalid_request");
    assert!(
        bad["message"].as_str().unwrap().starts_with("address: "),
        "{bad}"
    );
    let bad = pair("usb:1234");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("serial:PATH or ble:ADDRESS"),
        "{bad}"
    );
    let missing = daemon.dir.path().join("no-such-tty");
    let gone = pair(&format!("serial:{}", missing.display()));
    assert_eq!(gone["reason"], "device_unavailable");
    assert!(
        gone["message"].as_str().unwrap().contains("does not exist"),
        "{gone}"
    );
    // No BlueZ here (tests/ble_pairing.rs pairs over a mock one): the CLI cannot bond, and
    // says it cannot reach BlueZ.
    let radio = pair("ble:AA:BB:CC:DD:EE:FF");
    assert_eq!(radio["reason"], "bluetooth_unavailable", "{radio}");
    assert!(
        radio["message"].as_str().unwrap().contains("D-Bus")
            || radio["message"].as_str().unwrap().contains("BlueZ"),
        "{radio}"
    );
    // The daemon asked directly: it cannot reach the device, and names it.
    let direct = daemon.request(json!({"action": "pair", "address": "ble:AA:BB:CC:DD:EE:FF",
        "role": "card-reader", "bond": "numeric_comparison"}));
    assert_eq!(direct["reason"], "device_unavailable", "{direct}");
    assert!(
        direct["message"]
            .as_str()
            .unwrap()
            .starts_with("ble:AA:BB:CC:DD:EE:FF: "),
        "{direct}"
    );

    // A tty where nothing answers: not paired, and said so.
    let emu_dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let (_device_end, host_end) = tokio_serial::SerialStream::pair().unwrap();
    let name = tokio_serial::SerialPort::name(&host_end).unwrap();
    let link = emu_dir.path().join("silent");
    std::os::unix::fs::symlink(&name, &link).unwrap();
    let silent = pair(&format!("serial:{}", link.display()));
    assert_eq!(silent["reason"], "device_unavailable");
    assert!(
        silent["message"]
            .as_str()
            .unwrap()
            .contains("not answering"),
        "{silent}"
    );
    assert!(devices(&daemon).is_empty());
}

#[test]
fn a_replugged_reader_is_connected_as_soon_as_its_device_node_appears() {
    let daemon = Daemon::start();
    let mut emu = Emulator::start(
        "card-reader",
        daemon.dir.path(),
        "reader",
        &["--serial", "HP1"],
    );
    let out = daemon.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", daemon.log());

    // Unplugged: its device node is gone (udev removes the name; the pty number behind the old
    // link may be reused by another test at once), and the reconnect pauses grow.
    emu.kill9();
    std::fs::remove_file(&emu.link).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("next try in 4s") {
        assert!(Instant::now() < deadline, "no backoff:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Plugged back in: noticed by its device node appearing, not by the next backoff step.
    emu.restart();
    wait_device(&daemon, &emu, "reconnected", |d| d["connected"] == true);
    assert!(
        daemon.log().contains(&format!(
            "card-reader-HP1: serial:{} appeared",
            emu.link.display()
        )),
        "{}",
        daemon.log()
    );
}
