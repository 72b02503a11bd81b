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

/// Debian's python3 (a user's own, e.g. under pyenv in root's home, is not nobody's to run).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// One raw request line sent as nobody:nogroup (the CLI's `pair ble:` bonds through BlueZ
/// first; a POS client can send the line itself).
fn raw_as_nobody(d: &Daemon, line: &str) -> Value {
    for p in [d.dir.path(), d.socket.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
                  s.sendall(sys.argv[2].encode()+b'\\n')\nprint(s.makefile().readline(),end='')";
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SYSTEM_PYTHON,
            "-c",
            script,
        ])
        .arg(&d.socket)
        .arg(line)
        .output()
        .expect("run setpriv");
    answer(&out)
}

#[test]
fn only_root_or_the_daemons_user_may_say_how_a_bluetooth_bond_was_made() {
    if !is_root() {
        return common::skip::cannot_run("needs root to act as another user");
    }
    // nobody may pair (no admin_groups), but not claim the bond's method nor allow Just Works:
    // with that a POS client could have credentials sent over a Just Works bond.
    let d = Daemon::start_with(Some("[api]\nallowed_groups = [\"nogroup\"]\n"), &[]);
    for extra in [
        r#""bond":"numeric_comparison""#,
        r#""bond":"passkey_entry""#,
        r#""allow_unauthenticated":true"#,
    ] {
        let line = format!(
            r#"{{"action":"pair","address":"ble:C0:FF:EE:00:00:01","role":"card-reader",{extra}}}"#
        );
        let a = raw_as_nobody(&d, &line);
        assert_eq!(a["reason"], "unauthorized", "{extra}: {a}");
        assert!(
            a["message"]
                .as_str()
                .unwrap()
                .contains("sudo posbridge pair"),
            "{a}"
        );
    }
    assert!(
        d.log()
            .contains("only root or the daemon's user may record a bond"),
        "{}",
        d.log()
    );
    // Without a claim the request reaches the device manager, which refuses the unknown bond
    // for what it is; and the daemon's own user may claim it (there is no BlueZ here).
    let plain = raw_as_nobody(
        &d,
        r#"{"action":"pair","address":"ble:C0:FF:EE:00:00:01","role":"card-reader"}"#,
    );
    assert_eq!(plain["reason"], "unauthenticated_bond", "{plain}");
    let own = d.request(
        serde_json::json!({"action": "pair", "address": "ble:C0:FF:EE:00:00:01",
        "role": "card-reader", "bond": "numeric_comparison"}),
    );
    assert_ne!(own["reason"], "unauthorized", "{own}");
}
