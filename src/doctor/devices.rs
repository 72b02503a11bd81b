//! The checks on devices: what the daemon reports as paired (`devices` action) and whether each
//! is connected, and the /dev/posbridge names udev makes. Then, with the ports found here, the
//! checks in `host.rs` (other daemons holding those ports, the BLE adapter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Check, Context};
use crate::cli::ClientArgs;
use crate::exchange::Body;

const RULES: [&str; 3] = [
    "/etc/udev/rules.d/70-posbridge.rules",
    "/lib/udev/rules.d/70-posbridge.rules",
    "/usr/lib/udev/rules.d/70-posbridge.rules",
];
const NAMES_DIR: &str = "/dev/posbridge";

/// The daemon's `devices` answer: the list, or why there is none.
pub fn ask(socket: &Path, timeout: Duration) -> Result<Vec<Value>, String> {
    let args = ClientArgs {
        socket: Some(socket.to_owned()),
        json: false,
        timeout: timeout.as_secs().max(1),
    };
    let resp = crate::client::request(&args, &json!({"action": "devices"}))
        .map_err(|e| format!("{e:#}"))?;
    let refusal = match resp.body {
        Body::Done(data) => {
            let data = data.to_value();
            return Ok(data["devices"].as_array().cloned().unwrap_or_default());
        }
        Body::Refused(r) => r,
    };
    if refusal.reason == "invalid_request" {
        return Err("unsupported".into());
    }
    Err(format!("{}: {}", refusal.reason, refusal.message))
}

pub fn checks(cx: &Context) -> Vec<Check> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let paired = match (&cx.status, &cx.devices) {
        (None, _) => {
            out.push(Check::skip(
                "devices",
                "the daemon did not answer: paired devices unknown",
            ));
            &empty
        }
        (Some(_), Err(why)) if why == "unsupported" => {
            out.push(Check::warn(
                "devices",
                "this daemon does not report devices (no `devices` action)",
                "upgrade posbridge to a version with the device layer",
            ));
            &empty
        }
        (Some(_), Err(why)) => {
            out.push(Check::warn(
                "devices",
                format!("the daemon did not list its devices: {why}"),
                "see `journalctl -u posbridge`",
            ));
            &empty
        }
        (Some(_), Ok(list)) => {
            let names: Vec<String> = list.iter().map(describe).collect();
            out.push(Check::ok(
                "devices",
                if list.is_empty() {
                    "none paired".to_owned()
                } else {
                    format!("{} paired: {}", list.len(), names.join("; "))
                },
            ));
            list
        }
    };
    out.extend(paired.iter().map(device));
    out.extend(
        paired
            .iter()
            .filter(|d| text(d, "transport") == "ble")
            .map(bond),
    );
    out.push(udev_names(paired));
    out.push(super::host::other_daemons(&our_ports(paired)));
    out.push(super::host::ble(
        paired.iter().any(|d| text(d, "transport") == "ble"),
    ));
    out
}

fn text<'a>(d: &'a Value, key: &str) -> &'a str {
    d[key].as_str().unwrap_or("?")
}

fn describe(d: &Value) -> String {
    format!(
        "{} ({} over {} at {})",
        text(d, "id"),
        text(d, "role"),
        text(d, "transport"),
        text(d, "address")
    )
}

fn device(d: &Value) -> Check {
    let name = format!("device.{}", text(d, "id"));
    if d["connected"].as_bool() == Some(true) {
        return Check::ok(
            name,
            format!(
                "connected: {} {} firmware {} serial {}",
                describe(d),
                text(d, "model"),
                text(d, "firmware"),
                text(d, "serial")
            ),
        );
    }
    let why = d["last_error"].as_str().unwrap_or("no error reported");
    let fix = if text(d, "transport") == "ble" {
        format!(
            "check it is switched on, charged and near the counter; `bluetoothctl info {}`",
            text(d, "address")
        )
    } else {
        format!(
            "check its USB cable and power, and that {} exists (`ls -l /dev/posbridge/`)",
            text(d, "address")
        )
    };
    Check::fail(name, format!("not connected: {}: {why}", describe(d)), fix)
}

/// `bond.<id>`, for a BLE device: whether its bond is authenticated, since when, whether
/// BlueZ still holds it, the signal last seen.
fn bond(d: &Value) -> Check {
    let id = text(d, "id");
    let name = format!("bond.{id}");
    let again = format!(
        "`posbridge pair ble:{} --role {} --rebond` bonds it again with a code to compare \
         (docs/operations.md, \"Bluetooth LE\")",
        text(d, "address"),
        text(d, "role")
    );
    let signal = match d["rssi"].as_i64() {
        Some(rssi) => format!("; signal {rssi} dBm when it last connected"),
        None => String::new(),
    };
    let b = &d["bond"];
    if d["bonded"] == false {
        return Check::fail(
            name,
            format!("{id}: BlueZ holds no bond with it: nothing secret goes over its link"),
            again,
        );
    }
    let method = b["method"].as_str().unwrap_or("unknown");
    let since = b["bonded_at"].as_str().unwrap_or("?");
    match (b.is_null(), b["authenticated"] == true, b["allowed_unauthenticated"] == true) {
        (true, _, _) => Check::warn(
            name,
            format!("{id}: no bond recorded (paired before bonds were recorded, or BlueZ lost it): the acquirer's credentials are not sent over its link{signal}"),
            again,
        ),
        (false, true, _) => Check::ok(
            name,
            format!("{id}: bond authenticated ({method}) since {since}{signal}"),
        ),
        (false, false, true) => Check::warn(
            name,
            format!("{id}: bond not authenticated ({method}) since {since}, allowed by the operator: a device in radio range while it was made could sit in the middle{signal}"),
            format!("use a reader that shows a code, then {again}"),
        ),
        (false, false, false) => Check::warn(
            name,
            format!("{id}: bond not authenticated ({method}): the acquirer's credentials are not sent over its link{signal}"),
            again,
        ),
    }
}

/// The /dev/posbridge entries and the device each points to.
fn names() -> BTreeMap<String, PathBuf> {
    let Ok(dir) = std::fs::read_dir(NAMES_DIR) else {
        return BTreeMap::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let target = std::fs::canonicalize(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), target))
        })
        .collect()
}

fn udev_names(paired: &[Value]) -> Check {
    let rules = RULES.iter().find(|p| Path::new(p).exists());
    let found = names();
    let serial: Vec<&Value> = paired
        .iter()
        .filter(|d| text(d, "transport") == "serial")
        .collect();
    let missing: Vec<&str> = serial
        .iter()
        .map(|d| text(d, "address"))
        .filter(|a| a.starts_with("/dev/posbridge/") && !Path::new(a).exists())
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            "udev",
            format!("paired but missing: {}", missing.join(", ")),
            "plug the device in; if it is in, add its model to the udev rules \
             (docs/operations.md) and `udevadm control --reload && udevadm trigger`",
        );
    }
    let by_kernel_name: Vec<&str> = serial
        .iter()
        .map(|d| text(d, "address"))
        .filter(|a| a.starts_with("/dev/tty"))
        .collect();
    if !by_kernel_name.is_empty() {
        return Check::warn(
            "udev",
            format!("paired by kernel name, which can change on replug: {}", by_kernel_name.join(", ")),
            "re-pair it by its /dev/posbridge/ name (`posbridge unpair ID`, `posbridge pair serial:/dev/posbridge/...`)",
        );
    }
    let Some(rules) = rules else {
        return Check::warn(
            "udev",
            "70-posbridge.rules is not installed: no /dev/posbridge names",
            "install the posbridge package, or copy udev/70-posbridge.rules to /etc/udev/rules.d/",
        );
    };
    if found.is_empty() {
        return Check::skip(
            "udev",
            format!(
                "{rules} installed; /dev/posbridge is empty: no supported USB device is plugged in"
            ),
        );
    }
    let listed: Vec<String> = found
        .iter()
        .map(|(n, t)| format!("{n} -> {}", t.display()))
        .collect();
    let wrong: Vec<String> = found
        .iter()
        .filter_map(|(n, t)| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(t).ok()?;
            let group = super::local::group_name(m.gid()).unwrap_or_default();
            (group != "posbridge" || m.mode() & 0o777 != 0o660)
                .then(|| format!("{n} ({group}, {:04o})", m.mode() & 0o777))
        })
        .collect();
    if !wrong.is_empty() {
        return Check::warn(
            "udev",
            format!("not group posbridge, mode 0660: {}", wrong.join(", ")),
            "another rule overrides ours: `udevadm info --query=all --name=/dev/posbridge/NAME`; replug",
        );
    }
    Check::ok("udev", listed.join(", "))
}

/// The ports we care about: /dev/posbridge targets and paired serial devices.
fn our_ports(paired: &[Value]) -> BTreeMap<PathBuf, String> {
    let mut ports: BTreeMap<PathBuf, String> = names()
        .into_iter()
        .map(|(n, t)| (t, format!("/dev/posbridge/{n}")))
        .collect();
    for d in paired.iter().filter(|d| text(d, "transport") == "serial") {
        if let Ok(t) = std::fs::canonicalize(text(d, "address")) {
            ports.insert(t, text(d, "id").to_owned());
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn reader(connected: bool, transport: &str, address: &str) -> Value {
        json!({"id": "reader-1", "role": "card-reader", "transport": transport,
               "address": address, "connected": connected, "model": "R1", "firmware": "1.2.0",
               "serial": "PBR1A2B3C", "last_error": if connected { Value::Null } else { json!("no HELLO within 3 s") }})
    }

    #[test]
    fn a_connected_device_is_ok_and_a_lost_one_fails_with_its_last_error() {
        let ok = device(&reader(
            true,
            "serial",
            "/dev/posbridge/card-reader-PBR1A2B3C",
        ));
        assert_eq!(
            (ok.name.as_str(), ok.status),
            ("device.reader-1", Status::Ok)
        );
        assert!(ok.detail.contains("firmware 1.2.0"), "{}", ok.detail);
        let lost = device(&reader(false, "ble", "C0:FF:EE:00:00:01"));
        assert_eq!(lost.status, Status::Fail);
        assert!(
            lost.detail.contains("no HELLO within 3 s"),
            "{}",
            lost.detail
        );
        assert!(lost
            .fix
            .unwrap()
            .contains("bluetoothctl info C0:FF:EE:00:00:01"));
    }

    #[test]
    fn a_ble_bond_is_ok_only_when_authenticated_and_flagged_while_it_is_allowed() {
        let with = |bond: Value, bonded: Value| {
            let mut d = reader(true, "ble", "C0:FF:EE:00:00:01");
            d["bond"] = bond;
            d["bonded"] = bonded;
            d["rssi"] = json!(-52);
            super::bond(&d)
        };
        let at = "2026-12-07T07:00:00Z";
        let ok = with(
            json!({"method": "numeric_comparison", "authenticated": true,
                   "allowed_unauthenticated": false, "bonded_at": at}),
            json!(true),
        );
        assert_eq!((ok.name.as_str(), ok.status), ("bond.reader-1", Status::Ok));
        assert!(
            ok.detail.contains("authenticated (numeric_comparison)"),
            "{}",
            ok.detail
        );
        assert!(ok.detail.contains("-52 dBm"), "{}", ok.detail);
        let allowed = with(
            json!({"method": "just_works", "authenticated": false,
                   "allowed_unauthenticated": true, "bonded_at": at}),
            json!(true),
        );
        assert_eq!(allowed.status, Status::Warn);
        assert!(
            allowed.detail.contains("not authenticated (just_works)"),
            "{}",
            allowed.detail
        );
        assert!(
            allowed.detail.contains("allowed by the operator"),
            "{}",
            allowed.detail
        );
        let none = with(Value::Null, json!(true));
        assert_eq!(none.status, Status::Warn);
        assert!(none.fix.unwrap().contains("--rebond"));
        let gone = with(Value::Null, json!(false));
        assert_eq!(gone.status, Status::Fail);
        assert!(
            gone.detail.contains("BlueZ holds no bond"),
            "{}",
            gone.detail
        );
    }

    #[test]
    fn a_paired_udev_name_that_is_gone_fails_and_a_kernel_name_warns() {
        let gone = udev_names(&[reader(true, "serial", "/dev/posbridge/card-reader-NOPE")]);
        assert_eq!(gone.status, Status::Fail);
        assert!(gone.detail.contains("card-reader-NOPE"));
        let kernel = udev_names(&[reader(true, "serial", "/dev/ttyUSB7")]);
        assert_eq!(kernel.status, Status::Warn);
        assert!(kernel.fix.unwrap().contains("/dev/posbridge/"));
    }
}
