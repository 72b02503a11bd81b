//! `posbridge doctor` and the daemon's `devices` answer (DESIGN.md §4, being built with the
//! device layer): a stand-in daemon on a temp socket answers `status` and `devices` as that
//! action is specified, so the checks on paired devices, their udev names and the daemons
//! that grab serial ports run against the real binary now.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{doctor_check as check, BIN};
use serde_json::{json, Value};

/// Answers `status` and `devices` on `socket` with `devices`, until the test ends.
fn stand_in_daemon(socket: &Path, state: &Path, devices: Value) {
    let listener = UnixListener::bind(socket).unwrap();
    let journal = state.join("journal.sqlite");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut writer = stream.try_clone().unwrap();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let req: Value = serde_json::from_str(&line).unwrap();
                let answer = match req["action"].as_str() {
                    Some("status") => json!({"code": 0, "request_id": null, "metadata": {},
                        "data": {"version": "stand-in", "uptime_s": 1, "running": 0,
                                 "journal": {"path": journal}}}),
                    Some("devices") => json!({"code": 0, "request_id": null, "metadata": {},
                        "data": {"devices": devices}}),
                    _ => json!({"code": 1, "request_id": null, "metadata": {},
                        "error_type": "default_error", "reason": "invalid_request",
                        "message": "action: unknown"}),
                };
                writeln!(writer, "{answer}").unwrap();
            }
        }
    });
}

/// A pseudo-terminal's slave side, standing in for a reader's serial port.
fn pty() -> (std::fs::File, PathBuf) {
    // SAFETY: plain libc pty calls on a descriptor we own; ptsname_r writes into `name`.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0);
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_owned();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        // The master stays open for the test's life (leaked on purpose), so the slave lives.
        (slave, PathBuf::from(path))
    }
}

/// A process whose name is `brltty`, holding `port` open, as brltty does with a port it grabs.
struct Grabber(Child);

impl Grabber {
    fn start(dir: &Path, port: std::fs::File) -> Grabber {
        let exe = dir.join("brltty");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let child = Command::new(&exe)
            .arg("60")
            .stdin(Stdio::from(port))
            .spawn()
            .unwrap();
        Grabber(child)
    }
}

impl Drop for Grabber {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn paired_devices_are_checked_by_connection_udev_name_and_who_holds_their_port() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let socket = dir.path().join("api.sock");
    let (slave, port) = pty();
    let devices = json!([
        {"id": "reader-1", "role": "card-reader", "transport": "serial",
         "address": port, "connected": true, "model": "R1", "firmware": "1.0.3",
         "serial": "PBR0001", "last_error": null},
        {"id": "display-1", "role": "dqr-display", "transport": "serial",
         "address": "/dev/posbridge/dqr-display-GONE", "connected": false, "model": "D1",
         "firmware": "0.9.0", "serial": "GONE", "last_error": "no answer to HELLO"},
        {"id": "reader-2", "role": "card-reader", "transport": "ble",
         "address": "C0:FF:EE:00:00:02", "connected": false, "model": null,
         "firmware": null, "serial": null, "last_error": "not found in scan"},
    ]);
    stand_in_daemon(&socket, &state, devices);
    let _brltty = Grabber::start(dir.path(), slave);
    std::thread::sleep(std::time::Duration::from_millis(200));

    let out = Command::new(BIN)
        .args(["doctor", "--json", "--config", "/dev/null", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(out.status.code(), Some(1), "{report:#}");

    let devices = check(&report, "devices");
    assert_eq!(devices["status"], "ok");
    assert!(
        devices["detail"].as_str().unwrap().starts_with("3 paired"),
        "{devices}"
    );
    assert_eq!(check(&report, "device.reader-1")["status"], "ok");
    let display = check(&report, "device.display-1");
    assert_eq!(display["status"], "fail");
    assert!(display["detail"]
        .as_str()
        .unwrap()
        .contains("no answer to HELLO"));
    let ble = check(&report, "device.reader-2");
    assert_eq!(ble["status"], "fail");
    assert!(ble["fix"].as_str().unwrap().contains("bluetoothctl"));

    let udev = check(&report, "udev");
    assert_eq!(udev["status"], "fail", "{udev}");
    assert!(udev["detail"]
        .as_str()
        .unwrap()
        .contains("dqr-display-GONE"));

    let grabbers = check(&report, "other_daemons");
    assert_eq!(grabbers["status"], "fail", "{grabbers}");
    let detail = grabbers["detail"].as_str().unwrap();
    assert!(
        detail.contains("brltty") && detail.contains(port.to_str().unwrap()),
        "{detail}"
    );
    assert!(detail.contains("reader-1"), "{detail}");
    assert!(grabbers["fix"]
        .as_str()
        .unwrap()
        .contains("systemctl disable --now brltty"));

    // A paired BLE device makes an unreachable BlueZ a failure here, or ok on a counter.
    let ble_adapter = check(&report, "ble");
    assert!(matches!(
        ble_adapter["status"].as_str(),
        Some("fail" | "warn" | "ok")
    ));
    // The journal is found where the daemon's status says it is (not yet created: warn).
    assert_eq!(check(&report, "journal")["status"], "warn");
    assert!(check(&report, "journal")["detail"]
        .as_str()
        .unwrap()
        .contains(state.to_str().unwrap()));
}
