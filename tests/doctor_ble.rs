//! `posbridge doctor`'s BLE check against the mock BlueZ on a private system bus: a powered
//! adapter is ok, a switched-off one is reported with the command that powers it on.

mod common;

use std::process::Command;

use common::bluez::MockBluez;
use common::{doctor_check, json_of, BIN};
use serde_json::Value;

/// The `ble` check of one `doctor --json` run (whatever the other checks say without a daemon).
fn ble_check(dir: &std::path::Path) -> Value {
    let out = Command::new(BIN)
        .args(["doctor", "--json", "--timeout", "3", "--socket"])
        .arg(dir.join("api.sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("POSBRIDGE_CONFIG")
        .output()
        .expect("run posbridge doctor");
    doctor_check(&json_of(&out), "ble").clone()
}

#[test]
fn doctor_ble_check_sees_the_powered_adapter_then_the_switched_off_one() {
    let bluez = MockBluez::start();
    let dir = tempfile::tempdir().unwrap();

    let on = ble_check(dir.path());
    assert_eq!(on["status"], "ok", "{on}");
    assert!(on["detail"].as_str().unwrap().contains("hci0"), "{on}");

    let off = Command::new("busctl")
        .args(["--system", "set-property", "org.bluez", "/org/bluez/hci0"])
        .args(["org.bluez.Adapter1", "Powered", "b", "false"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bluez.bus_address())
        .status()
        .expect("run busctl");
    assert!(off.success());
    let off = ble_check(dir.path());
    // No BLE device is paired, so a dark adapter is a warning, with the way to power it on.
    assert_eq!(off["status"], "warn", "{off}");
    assert!(
        off["detail"].as_str().unwrap().contains("hci0 is off"),
        "{off}"
    );
    assert!(off["fix"].as_str().unwrap().contains("power on"), "{off}");
}
