//! The technician's one-command BLE pairing (issue 22), end to end: `posbridge pair ble:...`
//! runs its BlueZ agent against the mock BlueZ (tests/fixtures/bluez_bonds.py: the reader's
//! pairing method, the agent calls, the bond's kind), the technician's answers come on stdin,
//! then the real daemon checks HELLO and records the bond; a lifepay sale shows whether the
//! acquirer's credentials went over the link. `unpair` removes the bond.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::bluez::MockBluez;
use common::emulator::Emulator;
use common::{json_of, lifepay_account, lifepay_daemon, Daemon, BIN};
use serde_json::{json, Value};

const ADDR: &str = "C0:FF:EE:00:00:22";

/// Mock BlueZ with an emulated reader behind NUS device ADDR, not bonded, whose NUS
/// characteristics require an authenticated link (as the posbridge readers do); a daemon with
/// lifepay.
fn rig(dir: &Path, serial: &str) -> (MockBluez, Emulator, Daemon) {
    let bluez = MockBluez::start();
    let account = lifepay_account(dir, "pair-s3cret");
    let emu = Emulator::start(
        "card-reader",
        dir,
        "reader",
        &["--serial", serial, "--account", &account],
    );
    bluez.add_nus_device(ADDR, "posbridge-emu", -61, &emu.link, 23);
    bluez.set_paired(ADDR, false);
    bluez.set_requires_authentication(ADDR, true);
    let d = lifepay_daemon(dir, "pair-s3cret");
    (bluez, emu, d)
}

/// `posbridge ARGS` with `input` on stdin (the technician's answers).
fn cli_answering(d: &Daemon, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("POSBRIDGE_SOCKET", &d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run posbridge CLI");
    // The CLI may end before reading (a refusal): a broken pipe is no error here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn pair(d: &Daemon, extra: &[&str], input: &str) -> (Output, Value) {
    let address = format!("ble:{ADDR}");
    let mut args = vec!["pair", &address, "--role", "card-reader", "--json"];
    args.extend_from_slice(extra);
    let out = cli_answering(d, &args, input);
    let answer = json_of(&out);
    (out, answer)
}

/// Pairs the rig's reader, the technician answering yes; it must succeed.
fn pair_confirmed(d: &Daemon) {
    let (out, _) = pair(d, &[], "y\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn devices(d: &Daemon) -> Vec<Value> {
    d.request(json!({"action": "devices"}))["data"]["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (60 s at most) until the reader is connected again with no bond recorded; the listing.
fn reconnected_without_its_bond(d: &Daemon) -> Vec<Value> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = devices(d);
        if listed[0]["bond"].is_null() && listed[0]["connected"] == true {
            return listed;
        }
        assert!(std::time::Instant::now() < end, "{listed:?}\n{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A lifepay sale over the reader's link is refused (`insecure_link`) and the reader charges
/// nothing: the acquirer's credentials were not sent.
fn no_credentials_sent(d: &Daemon, emu: &Emulator, request_id: &str) {
    let (code, sale) = d.lifepay_pay(request_id, 2500);
    assert_eq!(code, Some(1), "{sale}");
    assert_eq!(sale["reason"], "insecure_link", "{sale}");
    assert_eq!(emu.charges(&d.backend_id(request_id)), (0, 0));
}

#[test]
fn one_command_bonds_by_numeric_comparison_and_the_reader_sells() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "PAIR1");
    bluez.set_pairing_method(ADDR, "numeric_comparison", 4821);
    let (out, answer) = pair(&d, &[], "y\n");
    let steps = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{answer}\n{steps}\n{}", d.log());
    // The code the reader shows (zero-padded) is the one the technician was asked about.
    assert!(steps.contains("Is it 004821? [y/N]"), "{steps}");
    assert!(
        steps.contains("pair: bonded by numeric comparison (authenticated)"),
        "{steps}"
    );
    assert!(steps.contains("pair: trusted"), "{steps}");
    let bond = &answer["data"]["bond"];
    assert_eq!(bond["method"], "numeric_comparison", "{answer}");
    assert_eq!(bond["authenticated"], true, "{answer}");
    assert_eq!(bond["allowed_unauthenticated"], false, "{answer}");
    assert_eq!(answer["data"]["bonded"], true, "{answer}");
    assert_eq!(answer["data"]["rssi"], -61, "{answer}");
    let held = bluez.bond(ADDR);
    assert!(
        held.paired && held.authenticated && held.trusted,
        "{held:?}"
    );
    let calls = bluez.agent_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "RequestConfirmation", "{calls:?}");

    // The credentials go over the authenticated link: the reader approves.
    let (code, sale) = d.lifepay_pay("pair-sale-1", 2500);
    assert_eq!(code, Some(0), "{sale}\n{}", d.log());
    assert_eq!(sale["data"]["status"], "approved", "{sale}");
    assert_eq!(emu.charges(&d.backend_id("pair-sale-1")), (1, 1));

    // Pairing it again finds the bond recorded: no second bond, no question.
    let (again, answer) = pair(&d, &[], "");
    assert_eq!(again.status.code(), Some(0), "{answer}\n{}", stderr(&again));
    assert!(stderr(&again).contains("already bonded (numeric_comparison)"));
    assert_eq!(bluez.agent_calls().len(), 1);
    // What the daemon recorded survives a restart of it.
    let mut d = d;
    d.terminate();
    d.restart();
    assert_eq!(devices(&d)[0]["bond"]["method"], "numeric_comparison");
}

#[test]
fn a_no_at_the_code_leaves_no_bond_and_nothing_paired() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, _emu, d) = rig(dir.path(), "PAIR2");
    for input in ["n\n", "", "maybe\n"] {
        let (out, answer) = pair(&d, &[], input);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {answer}");
        assert_eq!(answer["reason"], "bond_rejected", "{input:?}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("the codes were not confirmed"),
            "{answer}"
        );
        let held = bluez.bond(ADDR);
        assert!(!held.paired, "{input:?}: a bond was left: {held:?}");
        assert!(devices(&d).is_empty(), "{input:?}: {:?}", devices(&d));
    }
}

#[test]
fn just_works_is_refused_and_removed_without_the_flag_and_flagged_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "PAIR3");
    // A reader with no display or keys: Just Works; it asks for encryption only.
    bluez.set_pairing_method(ADDR, "just_works", 0);
    bluez.set_requires_authentication(ADDR, false);
    let (out, answer) = pair(&d, &[], "y\n");
    assert_eq!(out.status.code(), Some(1), "{answer}");
    assert_eq!(answer["reason"], "unauthenticated_bond", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("The bond was removed"),
        "{answer}"
    );
    assert!(!bluez.bond(ADDR).paired, "{:?}", bluez.bond(ADDR));
    assert!(bluez.agent_calls().is_empty(), "Just Works asks no agent");
    assert!(devices(&d).is_empty());

    let (out, answer) = pair(&d, &["--allow-unauthenticated"], "");
    assert_eq!(out.status.code(), Some(0), "{answer}\n{}", stderr(&out));
    let bond = &answer["data"]["bond"];
    assert_eq!(bond["method"], "just_works", "{answer}");
    assert_eq!(bond["authenticated"], false, "{answer}");
    assert_eq!(bond["allowed_unauthenticated"], true, "{answer}");
    assert!(d
        .log()
        .contains("bond not authenticated (just_works), allowed by the operator"));
    // The operator allowed it for this device: the credentials go, the reader approves.
    let (code, sale) = d.lifepay_pay("pair-sale-3", 2500);
    assert_eq!(code, Some(0), "{sale}\n{}", d.log());
    assert_eq!(emu.charges(&d.backend_id("pair-sale-3")), (1, 1));
    // doctor flags it for as long as it lives.
    let doctor = Command::new(BIN)
        .args(["doctor", "--json"])
        .env("POSBRIDGE_SOCKET", &d.socket)
        .output()
        .unwrap();
    let report = json_of(&doctor);
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bond.card-reader-PAIR3")
        .cloned()
        .unwrap_or_else(|| panic!("no bond check: {report}"));
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("not authenticated"),
        "{check}"
    );
}

#[test]
fn a_bond_posbridge_did_not_make_is_refused_until_rebonded_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, _emu, d) = rig(dir.path(), "PAIR4");
    bluez.set_paired(ADDR, true); // as `bluetoothctl pair` leaves it
    let (out, answer) = pair(&d, &[], "y\n");
    assert_eq!(out.status.code(), Some(1), "{answer}");
    assert_eq!(answer["reason"], "unauthenticated_bond", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("--rebond"),
        "{answer}"
    );
    assert!(
        bluez.bond(ADDR).paired,
        "a refusal does not remove someone's bond"
    );
    let (out, answer) = pair(&d, &["--rebond"], "yes\n");
    assert_eq!(out.status.code(), Some(0), "{answer}\n{}", stderr(&out));
    assert_eq!(answer["data"]["bond"]["authenticated"], true, "{answer}");
    assert!(bluez.bond(ADDR).authenticated);
    // Bonded again by the same method: the new bond is recorded (its time), not the old kept.
    let first = answer["data"]["bond"]["bonded_at"].clone();
    let (out, again) = pair(&d, &["--rebond"], "y\n");
    assert_eq!(out.status.code(), Some(0), "{again}\n{}", stderr(&out));
    assert_eq!(
        again["data"]["bond"]["method"], "numeric_comparison",
        "{again}"
    );
    assert_ne!(again["data"]["bond"]["bonded_at"], first, "{again}");
    assert_eq!(
        devices(&d)[0]["bond"]["bonded_at"],
        again["data"]["bond"]["bonded_at"]
    );
}

#[test]
fn passkey_entry_takes_the_six_digits_the_reader_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, _emu, d) = rig(dir.path(), "PAIR5");
    bluez.set_pairing_method(ADDR, "passkey_entry", 31337);
    // Not six digits: the agent's no says why, not that codes were compared.
    let (_, answer) = pair(&d, &[], "31337x\n");
    assert_eq!(answer["reason"], "bond_rejected", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("(no passkey given)"),
        "{answer}"
    );
    assert!(!bluez.bond(ADDR).paired);
    let (out, answer) = pair(&d, &[], "031336\n");
    assert_eq!(
        answer["reason"], "bond_rejected",
        "a wrong passkey: {answer}"
    );
    assert!(!bluez.bond(ADDR).paired);
    assert_eq!(out.status.code(), Some(1));
    let (out, answer) = pair(&d, &[], "031337\n");
    assert_eq!(out.status.code(), Some(0), "{answer}\n{}", stderr(&out));
    assert_eq!(
        answer["data"]["bond"]["method"], "passkey_entry",
        "{answer}"
    );
}

#[test]
fn unpair_asks_then_removes_the_bond_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, _emu, d) = rig(dir.path(), "PAIR6");
    pair_confirmed(&d);
    let id = "card-reader-PAIR6";
    let no = cli_answering(&d, &["unpair", id], "n\n");
    assert_eq!(no.status.code(), Some(1), "{}", stderr(&no));
    assert!(stderr(&no).contains("nothing changed"), "{}", stderr(&no));
    assert_eq!(devices(&d).len(), 1, "a no changes nothing");
    assert!(bluez.bond(ADDR).paired);
    let yes = cli_answering(&d, &["unpair", id, "--json"], "y\n");
    assert_eq!(yes.status.code(), Some(0), "{}", stderr(&yes));
    assert!(devices(&d).is_empty());
    assert!(!bluez.bond(ADDR).paired, "the bond goes with the pairing");

    pair_confirmed(&d);
    let kept = cli_answering(&d, &["unpair", id, "--keep-bond"], "");
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
    assert!(devices(&d).is_empty());
    assert!(bluez.bond(ADDR).paired, "--keep-bond keeps it");
}

#[test]
fn the_daemon_refuses_a_ble_pairing_without_an_authenticated_bond_and_forgets_a_lost_one() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "PAIR7");
    let address = format!("ble:{ADDR}");
    // A client that does not say how the bond was made (bluetoothctl, an old CLI).
    let raw = d.request(json!({"action": "pair", "address": address, "role": "card-reader"}));
    assert_eq!(raw["reason"], "unauthenticated_bond", "{raw}");
    let bad = d.request(
        json!({"action": "pair", "address": address, "role": "card-reader",
        "bond": "by_magic"}),
    );
    assert_eq!(bad["reason"], "invalid_request", "{bad}");
    assert!(
        bad["message"].as_str().unwrap().starts_with("bond: "),
        "{bad}"
    );
    let serial = d.request(json!({"action": "pair", "address": "serial:/dev/null",
        "role": "card-reader", "bond": "numeric_comparison"}));
    assert_eq!(serial["reason"], "invalid_request", "{serial}");

    pair_confirmed(&d);
    // BlueZ loses the bond (removed by another tool) and the link drops: at the reconnect the
    // daemon sees no bond, forgets the recorded one, and sends no credentials.
    bluez.set_requires_authentication(ADDR, false);
    bluez.set_paired(ADDR, false);
    bluez.disconnect_from_device(ADDR);
    let listed = reconnected_without_its_bond(&d);
    assert_eq!(listed[0]["bonded"], false, "{listed:?}");
    assert!(
        d.log().contains("BlueZ no longer holds the bond"),
        "{}",
        d.log()
    );
    no_credentials_sent(&d, &emu, "pair-sale-7");
    // And it stays forgotten after a restart: devices.json no longer has it.
    let mut d = d;
    d.terminate();
    d.restart();
    assert!(devices(&d)[0]["bond"].is_null());
}

#[test]
fn a_bond_bluez_makes_by_itself_while_connecting_is_not_the_one_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let (bluez, emu, d) = rig(dir.path(), "PAIR8");
    pair_confirmed(&d);
    // BlueZ loses the confirmed bond while the reader is away; at the daemon's next connect
    // BlueZ bonds again by itself, by Just Works (a reader that asks only for encryption), so
    // Paired is true again by the time the link is up. That bond is not the confirmed one.
    bluez.set_requires_authentication(ADDR, false);
    bluez.set_paired(ADDR, false);
    bluez.bond_on_next_connect(ADDR);
    bluez.disconnect_from_device(ADDR);
    reconnected_without_its_bond(&d);
    assert!(bluez.bond(ADDR).paired, "the mock bonded at the connect");
    assert!(
        d.log()
            .contains("BlueZ bonded with the device while connecting to it"),
        "{}",
        d.log()
    );
    no_credentials_sent(&d, &emu, "pair-sale-8");
}
