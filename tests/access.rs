//! Socket access control: peers are checked with SO_PEERCRED against api.allowed_groups and
//! api.admin_groups. The "other user" is `nobody` (group `nogroup`), made with `setpriv`, which
//! needs root: without root these tests fail on CI and say SKIPPED elsewhere (common::skip).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::{Daemon, BIN};
use serde_json::Value;

use common::skip::is_root;

/// Runs the CLI as nobody:nogroup against `d`, after opening the path to its socket.
fn as_nobody(d: &Daemon, args: &[&str]) -> Output {
    for p in [d.dir.path(), d.socket.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .arg("--json")
        .env("POSBRIDGE_SOCKET", &d.socket)
        .output()
        .expect("run setpriv")
}

fn answer(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON answer ({e}): {text} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_peer_outside_the_allowed_groups_gets_one_unauthorized_answer() {
    if !is_root() {
        return common::skip::cannot_run("needs root to act as another user");
    }
    let d = Daemon::start_with(Some("[api]\nallowed_groups = [\"root\"]\n"), &[]);
    let out = as_nobody(
        &d,
        &["pay", "--amount", "100", "--request-id", "intruder-1"],
    );
    let a = answer(&out);
    assert_eq!(a["reason"], "unauthorized", "{a}");
    assert_eq!(out.status.code(), Some(1));
    // Nothing was journaled or charged, and the daemon serves its own users as before.
    let r = d.request(serde_json::json!({"action": "get_result", "request_id": "intruder-1"}));
    assert_eq!(r["error_type"], "result_not_found_error");
    assert!(
        d.log().contains("refused a connection from uid 65534"),
        "{}",
        d.log()
    );
    assert_eq!(
        d.request(serde_json::json!({"action": "status"}))["code"],
        0
    );
}

#[test]
fn a_member_of_an_allowed_group_may_pay() {
    if !is_root() {
        return common::skip::cannot_run("needs root to act as another user");
    }
    let d = Daemon::start_with(Some("[api]\nallowed_groups = [\"nogroup\"]\n"), &[]);
    let a = answer(&as_nobody(&d, &["pay", "--amount", "100"]));
    assert_eq!(a["code"], 0, "{a}");
}

#[test]
fn admin_groups_limit_money_operations_but_not_reading() {
    if !is_root() {
        return common::skip::cannot_run("needs root to act as another user");
    }
    let config = "[api]\nallowed_groups = [\"nogroup\"]\nadmin_groups = [\"root\"]\n";
    let d = Daemon::start_with(Some(config), &[]);
    let pay = answer(&as_nobody(
        &d,
        &["pay", "--amount", "100", "--request-id", "np-1"],
    ));
    assert_eq!(pay["reason"], "unauthorized", "{pay}");
    assert!(
        pay["message"].as_str().unwrap().contains("admin_groups"),
        "{pay}"
    );
    let status = answer(&as_nobody(&d, &["status"]));
    assert_eq!(status["code"], 0, "{status}");
    let r = d.request(serde_json::json!({"action": "get_result", "request_id": "np-1"}));
    assert_eq!(r["error_type"], "result_not_found_error", "{r}");
    // Pairing is an admin operation too; listing devices is reading.
    let pair = answer(&as_nobody(
        &d,
        &["pair", "serial:/dev/ttyACM0", "--role", "card-reader"],
    ));
    assert_eq!(pair["reason"], "unauthorized", "{pair}");
    let unpair = answer(&as_nobody(&d, &["unpair", "card-reader-X"]));
    assert_eq!(unpair["reason"], "unauthorized", "{unpair}");
    let devices = answer(&as_nobody(&d, &["devices"]));
    assert_eq!(devices["code"], 0, "{devices}");
}

#[test]
fn a_peer_outside_the_allowed_groups_asking_the_contract_way_is_refused_in_that_shape() {
    if !is_root() {
        return common::skip::cannot_run("needs root to act as another user");
    }
    let d = Daemon::start_with(Some("[api]\nallowed_groups = [\"root\"]\n"), &[]);
    for p in [d.dir.path(), d.socket.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // A POS speaking the LIFE POS contract sends its request at once and reads one answer.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"action":"ru.lifepay.checkout.payment_terminal.transaction.pay","request_id":"in-1","amount":5}\n')
print(s.makefile().readline(), end="")
"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(script)
        .arg(&d.socket)
        .output()
        .expect("run setpriv");
    let a = answer(&out);
    assert_eq!(common::keys_of(&a), common::CONTRACT_ERROR_KEYS, "{a}");
    assert_eq!(a["request_id"], "in-1", "{a}");
    assert_eq!(
        a["action"], "ru.lifepay.checkout.payment_terminal.transaction.pay",
        "{a}"
    );
    assert_eq!(a["log"], "reason: unauthorized", "{a}");
    let r = d.request(serde_json::json!({"action": "get_result", "request_id": "in-1"}));
    assert_eq!(
        r["error_type"], "result_not_found_error",
        "nothing ran: {r}"
    );
}
