//! `posbridge doctor` against the real binary: a good setup (a daemon on temp paths and a
//! backend replica) has no failure and names every check; broken setups (no daemon, a damaged
//! journal, a state directory that cannot exist, a backend on a closed port) fail the right
//! checks, each with a fix. What this machine lacks (BlueZ, /dev/posbridge) is warn or skip.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::replica::Replica;
use common::{doctor_check as check, json_of as json, Daemon, BIN};
use serde_json::Value;

const KEY: &str = "doctor-test-key";

fn doctor(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("doctor").args(args).arg("--timeout").arg("3");
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    cmd.env_remove("POSBRIDGE_SOCKET")
        .env_remove("POSBRIDGE_CONFIG")
        .env_remove("POSBRIDGE_STATE_DIR")
        .output()
        .expect("run posbridge doctor")
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

/// Every check is well formed: a known status, a detail, and a fix exactly when not ok.
fn assert_well_formed(report: &Value) {
    for c in report["checks"].as_array().unwrap() {
        let s = c["status"].as_str().unwrap();
        assert!(matches!(s, "ok" | "warn" | "fail" | "skip"), "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
        let has_fix = c["fix"]
            .as_str()
            .is_some_and(|f| !f.is_empty() && !f.contains('\n'));
        assert_eq!(
            has_fix,
            s == "warn" || s == "fail",
            "a fix, one line, when warn or fail: {c}"
        );
    }
}

fn iotpay_config(base_url: &str, key_file: &Path) -> String {
    format!(
        "[providers.iotpay]\nbase_url = \"{base_url}\"\nmch_id = \"10000701\"\n\
         key_file = \"{}\"\njob_no = \"cashier1\"\ncurrency = \"CAD\"\n",
        key_file.display()
    )
}

#[test]
fn a_good_setup_has_no_failure_and_names_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(dir.path(), "iotpay", KEY, &[("mch_id", "10000701")]);
    let key_file = dir.path().join("iotpay.key");
    std::fs::write(&key_file, KEY).unwrap();
    let d = Daemon::start_with(
        Some(&iotpay_config(&format!("{}/v1/", replica.url), &key_file)),
        &[],
    );
    d.request(serde_json::json!({"action": "pay", "amount": 100, "request_id": "doc-1"}));

    let out = doctor(
        &["--json"],
        &[
            ("--socket", &d.socket),
            ("--state-dir", &d.state),
            ("--config", d.config.as_ref().unwrap()),
        ],
    );
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    assert_well_formed(&report);
    for name in [
        "config",
        "socket",
        "socket.permissions",
        "state_dir",
        "disk",
        "journal",
        "devices",
        "udev",
        "other_daemons",
        "ble",
        "backend.iotpay.dns",
        "backend.iotpay.tls",
        "backend.iotpay.clock",
    ] {
        assert_ne!(status(&report, name), "fail", "{name}: {report:#}");
    }
    for name in [
        "config",
        "socket",
        "state_dir",
        "journal",
        "backend.iotpay.dns",
        "backend.iotpay.tls",
        "backend.iotpay.clock",
    ] {
        assert_eq!(status(&report, name), "ok", "{name}: {report:#}");
    }
    assert!(
        check(&report, "journal")["detail"]
            .as_str()
            .unwrap()
            .contains("1 entries"),
        "{report:#}"
    );
    // Until the daemon reports devices it is a warning, never a failure; afterwards, ok.
    assert!(
        matches!(status(&report, "devices"), "ok" | "warn"),
        "{report:#}"
    );
}

#[test]
fn no_daemon_a_damaged_journal_and_a_closed_backend_port_fail_with_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("journal.sqlite"),
        b"SQLite format 3\0 this is not a database any more".repeat(200),
    )
    .unwrap();
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("posbridge.toml");
    std::fs::write(
        &config,
        iotpay_config(
            &format!("http://127.0.0.1:{port}/v1/"),
            Path::new("/nonexistent"),
        ),
    )
    .unwrap();

    let out = doctor(
        &["--json"],
        &[
            ("--socket", &dir.path().join("api.sock")),
            ("--state-dir", &state),
            ("--config", &config),
        ],
    );
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["ok"], false);
    assert_well_formed(&report);

    assert_eq!(status(&report, "socket"), "fail");
    assert!(check(&report, "socket")["fix"]
        .as_str()
        .unwrap()
        .contains("start"));
    assert_eq!(status(&report, "journal"), "fail", "{report:#}");
    assert!(check(&report, "journal")["fix"]
        .as_str()
        .unwrap()
        .contains("aside"));
    assert_eq!(status(&report, "backend.iotpay.dns"), "ok");
    assert_eq!(status(&report, "backend.iotpay.tls"), "fail", "{report:#}");
    let tls = check(&report, "backend.iotpay.tls");
    assert!(
        tls["detail"].as_str().unwrap().contains(&port.to_string()),
        "{tls}"
    );
    assert!(tls["fix"].as_str().unwrap().contains("base_url"), "{tls}");
    // Without a daemon nothing is known about devices: skipped, with the reason.
    assert_eq!(status(&report, "devices"), "skip");
    assert_eq!(status(&report, "state_dir"), "ok");
}

#[test]
fn a_state_dir_that_cannot_exist_fails_and_plain_output_shows_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let out = doctor(
        &[],
        &[
            ("--socket", &dir.path().join("api.sock")),
            ("--state-dir", &blocker.join("state")),
            ("--config", Path::new("/dev/null")),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("state_dir"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("FAIL") && line.contains("not a directory"),
        "{text}"
    );
    assert!(text.contains("fix: choose another --state-dir"), "{text}");
    assert!(text.lines().last().unwrap().contains("failed"), "{text}");
}

#[test]
fn a_state_dir_the_user_cannot_write_fails() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["doctor", "--json", "--config", "/dev/null", "--socket"])
        .arg(dir.path().join("api.sock"))
        .arg("--state-dir")
        .arg(&state);
    // Root may write anywhere: check as nobody, as a technician without rights would.
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().expect("run posbridge doctor");
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "state_dir"), "fail", "{report:#}");
    let c = check(&report, "state_dir");
    assert!(
        c["detail"].as_str().unwrap().contains("not writable"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("posbridge"), "{c}");
}

#[test]
fn a_daemon_with_a_world_open_socket_is_warned_about() {
    let d = Daemon::start();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = doctor(
        &["--json"],
        &[("--socket", &d.socket), ("--state-dir", &d.state)],
    );
    let report = json(&out);
    assert_eq!(status(&report, "socket"), "ok", "{report:#}");
    assert_eq!(status(&report, "socket.permissions"), "warn");
    assert!(check(&report, "socket.permissions")["fix"]
        .as_str()
        .unwrap()
        .contains("0660"));
}
