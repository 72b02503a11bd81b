//! The checks on this machine around posbridge: other daemons (ModemManager, brltty, gpsd)
//! holding serial ports, found in /proc, and the BLE adapter, asked of BlueZ with `busctl` on
//! the system bus. Kept to small functions so a D-Bus library can replace `busctl` later.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::Check;

/// Daemons known to open USB serial ports on their own.
const GRABBERS: [&str; 3] = ["ModemManager", "brltty", "gpsd"];

/// `other_daemons`: ModemManager, brltty or gpsd holding one of `ports` (device -> our name).
pub fn other_daemons(ports: &BTreeMap<PathBuf, String>) -> Check {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Check::skip("other_daemons", "no /proc to look at");
    };
    let mut running = Vec::new();
    let mut holding = Vec::new();
    let mut foreign = Vec::new();
    let mut unseen = Vec::new();
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim();
        if !GRABBERS.iter().any(|g| comm.eq_ignore_ascii_case(g)) {
            continue;
        }
        running.push(format!("{comm} (pid {pid})"));
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(_) => {
                unseen.push(format!("{comm} (pid {pid})"));
                continue;
            }
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(ours) = ports.get(&target) {
                holding.push(format!(
                    "{comm} (pid {pid}) holds {} ({ours})",
                    target.display()
                ));
            } else if target.to_string_lossy().starts_with("/dev/ttyUSB")
                || target.to_string_lossy().starts_with("/dev/ttyACM")
            {
                foreign.push(format!("{comm} (pid {pid}) holds {}", target.display()));
            }
        }
    }
    if !holding.is_empty() {
        return Check::fail(
            "other_daemons",
            holding.join("; "),
            "stop it (`systemctl disable --now brltty` / `gpsd` / `ModemManager`), make sure \
             70-posbridge.rules is installed, then replug the device",
        );
    }
    if !unseen.is_empty() {
        return Check::warn(
            "other_daemons",
            format!(
                "running, open ports not visible to this user: {}",
                unseen.join(", ")
            ),
            "run doctor as root",
        );
    }
    if !foreign.is_empty() {
        return Check::warn(
            "other_daemons",
            format!(
                "{} (not a posbridge device now, but it may take one)",
                foreign.join("; ")
            ),
            "if that is a reader or display, add its model to the udev rules (docs/operations.md)",
        );
    }
    if running.is_empty() {
        Check::ok(
            "other_daemons",
            "none of ModemManager, brltty, gpsd is running",
        )
    } else {
        Check::ok(
            "other_daemons",
            format!("{} running, holding no USB serial port", running.join(", ")),
        )
    }
}

/// Runs `busctl` on the system bus; `Err` says why it could not answer.
fn busctl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("busctl")
        .args(["--system", "--timeout=3"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run busctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `ble`: a powered adapter, asked of BlueZ; `needed` when a BLE device is paired.
pub fn ble(needed: bool) -> Check {
    // Without a paired BLE device a missing adapter is worth a warning, not a failure.
    let bad = |detail: String, fix: &str| {
        if needed {
            Check::fail("ble", detail, fix)
        } else {
            Check::warn("ble", detail, fix)
        }
    };
    let tree = match busctl(&["tree", "--list", "org.bluez"]) {
        Ok(t) => t,
        Err(e) if e.starts_with("cannot run busctl") => {
            return Check::warn(
                "ble",
                format!("cannot check: {e}"),
                "install systemd's busctl, or check by hand with `bluetoothctl show`",
            )
        }
        Err(e) if e.contains("connect to bus") || e.contains("No such file") => {
            return Check::warn(
                "ble",
                format!("cannot check: no D-Bus system bus ({e})"),
                "on a counter, dbus runs by default: `systemctl status dbus`",
            )
        }
        Err(e) => {
            return bad(
                format!("BlueZ is not on the system bus: {e}"),
                "`apt install bluez`, then `systemctl enable --now bluetooth`",
            )
        }
    };
    let adapters: Vec<&str> = tree
        .lines()
        .map(str::trim)
        .filter(|p| {
            p.strip_prefix("/org/bluez/hci")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    if adapters.is_empty() {
        return bad(
            "BlueZ runs but sees no Bluetooth adapter".into(),
            "plug in or enable the adapter; `rfkill list` shows whether it is blocked",
        );
    }
    let mut on = Vec::new();
    let mut off = Vec::new();
    for a in &adapters {
        let name = a.trim_start_matches("/org/bluez/");
        match busctl(&[
            "get-property",
            "org.bluez",
            a,
            "org.bluez.Adapter1",
            "Powered",
        ]) {
            Ok(v) if v.trim() == "b true" => on.push(name.to_owned()),
            Ok(_) => off.push(format!("{name} is off")),
            Err(e) => off.push(format!("{name}: {e}")),
        }
    }
    if on.is_empty() {
        return bad(
            off.join(", "),
            "`bluetoothctl power on`; if it will not, `rfkill unblock bluetooth`",
        );
    }
    Check::ok("ble", format!("powered: {}", on.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn without_a_paired_ble_device_an_unreachable_bluez_is_never_a_failure() {
        let check = ble(false);
        assert_ne!(check.status, Status::Fail, "{check:?}");
    }
}
