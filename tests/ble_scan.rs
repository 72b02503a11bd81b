//! `scan` as a technician sees it (issue 22): the real daemon over the real socket, the mock
//! BlueZ (tests/fixtures/bluez_nus.py) on a private system bus. A scan sent with
//! `"progress": true` tells each NUS device as it is heard, with its signal and whether BlueZ
//! holds a bond with it, and again when that changes, all before its one answer; a client that
//! does not ask, or does not read, still gets its answer; the CLI prints the event lines only
//! with `--json --progress`. Every line read is checked against schema/ by tests/common.
//! One mock per process: run with cargo nextest.

mod common;

use std::collections::HashMap;

use common::bluez::MockBluez;
use common::{json_of, Daemon};
use serde_json::{json, Value};

const NEAR: &str = "C0:FF:EE:00:00:11";
const FAR: &str = "C0:FF:EE:00:00:12";
/// BlueZ learns of it only when the scan starts discovery.
const NEW: &str = "C0:FF:EE:00:00:13";

/// The mock with three NUS readers: NEAR bonded at -48 dBm, FAR without a bond at -80, NEW at
/// -60 (bonded, heard only once discovery starts), and a device that is no reader.
fn rig() -> (MockBluez, Daemon) {
    let bluez = MockBluez::start();
    // The endpoints are only opened at a connect, which a scan never makes.
    let nowhere = bluez.dir().join("nowhere.sock");
    bluez.add_nus_device(NEAR, "QPOS-near", -48, &nowhere, 23);
    bluez.set_paired(NEAR, true);
    bluez.add_nus_device(FAR, "QPOS-far", -80, &nowhere, 23);
    bluez.set_paired(FAR, false);
    bluez.add_nus_device_on_scan(NEW, "QPOS-new", -60, &nowhere, 23);
    bluez.add_plain_device("11:22:33:44:55:66", "headphones");
    (bluez, Daemon::start())
}

fn addresses(found: &Value) -> Vec<&str> {
    found
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {found}"))
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect()
}

#[test]
fn a_scan_with_progress_tells_each_reader_as_heard_and_again_when_bonded() {
    let (bluez, d) = rig();
    let mut c = d.client();
    c.send_raw(
        format!(
            "{}\n",
            json!({"action": "scan", "request_id": "sc-1", "seconds": 4, "progress": true})
        )
        .as_bytes(),
    );
    // Read as the lines come; once FAR is told without a bond, it gets one mid-scan.
    let mut events: Vec<Value> = Vec::new();
    let mut bonded_mid_scan = false;
    let answer = loop {
        let line: Value = serde_json::from_str(&c.read_line().expect("a line")).unwrap();
        if line.get("code").is_some() {
            break line;
        }
        assert_eq!(line["event"], "found", "{line}");
        assert_eq!(line["request_id"], "sc-1", "{line}");
        if line["device"]["address"] == FAR && !bonded_mid_scan {
            assert_eq!(line["device"]["bonded"], false, "{line}");
            bluez.set_paired(FAR, true);
            bonded_mid_scan = true;
        }
        events.push(line);
    };
    assert_eq!(answer["code"], 0, "{answer}\n{}", d.log());
    assert_eq!(answer["request_id"], "sc-1");

    // What each reader was told as, in order; no event for the device that is no reader.
    let mut told: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
    for e in &events {
        let dev = &e["device"];
        assert_eq!(dev["paired"], false, "{e}");
        told.entry(dev["address"].as_str().unwrap())
            .or_default()
            .push((dev["rssi"].as_i64().unwrap(), dev["bonded"] == true));
    }
    let mut heard: Vec<&str> = told.keys().copied().collect();
    heard.sort();
    assert_eq!(heard, [NEAR, FAR, NEW], "{events:#?}");
    assert_eq!(told[NEAR], [(-48, true)], "told once: nothing changed");
    assert_eq!(told[NEW], [(-60, true)], "told once: nothing changed");
    assert_eq!(told[FAR], [(-80, false), (-80, true)], "again once bonded");

    // The answer lists them all again, strongest first, as they were at the end.
    let found = &answer["data"]["found"];
    assert_eq!(addresses(found), [NEAR, NEW, FAR], "{answer}");
    assert_eq!(found[2]["bonded"], true, "{answer}");
    assert_eq!(found[0]["rssi"], -48, "{answer}");
}

#[test]
fn a_client_that_does_not_ask_or_does_not_read_still_gets_its_answer() {
    let (_bluez, d) = rig();
    // Not asked: no event line, the answer first, with each reader's bond.
    let mut plain = d.client();
    let (events, answer) =
        plain.request_with_events(&json!({"action": "scan", "request_id": "sc-2", "seconds": 1}));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        addresses(&answer["data"]["found"]),
        [NEAR, NEW, FAR],
        "{answer}"
    );
    let bonds: Vec<&Value> = answer["data"]["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["bonded"])
        .collect();
    assert_eq!(bonds, [true, true, false], "{answer}");

    // Asked, then gone before anything is written: the daemon carries on.
    let mut gone = d.client();
    gone.send_raw(b"{\"action\":\"scan\",\"seconds\":1,\"progress\":true}\n");
    drop(gone);

    // Asked, and not read until long after the scan: its events, then its answer, then
    // nothing more (the next line on the connection answers the next request).
    let mut quiet = d.client();
    quiet.send_raw(b"{\"action\":\"scan\",\"seconds\":1,\"progress\":true}\n");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (events, answer) = quiet.read_with_events();
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(answer["request_id"], Value::Null, "{answer}");
    assert_eq!(events.len(), 3, "{events:?}");
    let next = quiet.request(&json!({"action": "devices"}));
    assert_eq!(next["data"]["devices"], json!([]), "{next}");
}

#[test]
fn the_cli_prints_found_events_only_with_json_and_progress() {
    let (_bluez, d) = rig();
    let out = d.cli(&["scan", "--seconds", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    let answer = json_of(&out);
    assert_eq!(
        addresses(&answer["data"]["found"]),
        [NEAR, NEW, FAR],
        "{answer}"
    );

    let out = d.cli(&["scan", "--seconds", "1", "--json", "--progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            common::schema::check_answer(l);
            serde_json::from_str(l).unwrap()
        })
        .collect();
    let (answer, events) = lines.split_last().expect("lines");
    assert_eq!(answer["code"], 0, "{text}");
    assert_eq!(events.len(), 3, "{text}");
    assert!(events.iter().all(|e| e["event"] == "found"), "{text}");

    // For a person (not a terminal here): the table, with the bond beside the pairing.
    let out = d.cli(&["scan", "--seconds", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ADDRESS"), "{text}");
    assert!(text.contains("BONDED PAIRED NAME"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(FAR) && l.contains("-80 dBm  no     no     QPOS-far")),
        "{text}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a terminal `scan` shows the readers as they are heard, as a list that is redrawn in
/// place (cursor up over it, erase down) and taken off before the table is printed: the
/// terminal is left with the table alone. stderr is a pty here; stdout is piped.
#[test]
fn on_a_terminal_the_list_updates_in_place_and_leaves_the_table() {
    use std::io::Read;
    let (_bluez, d) = rig();
    let (mut master, slave) = common::pty();
    let out = std::process::Command::new(common::BIN)
        .args(["scan", "--seconds", "2"])
        .env("POSBRIDGE_SOCKET", &d.socket)
        .stderr(slave)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    // The child has exited and the parent's copy of the slave went into the Command: reading
    // the master ends (EIO) once what the child wrote is read.
    let mut shown = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.starts_with("listening 2 s for readers"), "{shown:?}");
    for (address, row) in [
        (NEAR, "-48 dBm  yes"),
        (FAR, "-80 dBm  no"),
        (NEW, "-60 dBm  yes"),
    ] {
        let heard = shown
            .lines()
            .any(|l| l.starts_with(address) && l.contains(row));
        assert!(heard, "{address} not shown as {row:?}: {shown:?}");
    }
    // Redrawn in place: after the first device, each redraw moves up over the list drawn.
    assert!(shown.contains("\x1b[3A\r\x1b[J"), "{shown:?}");
    let erase = "\r\x1b[J";
    assert!(
        shown.ends_with(erase),
        "taken off before the table: {shown:?}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ADDRESS"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
}
