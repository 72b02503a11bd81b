//! The customer's screen in every flow: with a DQR display paired (`posbridge emulate
//! dqr-display`, which prints what it shows, a line each), each sale shows its amount and then
//! its outcome; a Paysera sale shows the spot's QR code while it waits for the customer. A
//! display that goes away never costs a sale.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::emulator::Emulator;
use common::replica::Replica;
use common::Daemon;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// A display emulator whose printed lines arrive on the receiver.
fn display(dir: &std::path::Path) -> (Emulator, Receiver<String>) {
    let mut emu = Emulator::start_piped("dqr-display", dir, "display", &["--serial", "SCR1"]);
    let rx = lines_of(&mut emu);
    (emu, rx)
}

/// What the (piped) display emulator prints from now on, a line at a time.
fn lines_of(emu: &mut Emulator) -> Receiver<String> {
    let out = emu.stdout();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn pair(d: &Daemon, emu: &Emulator) {
    let out = d.cli(&["pair", &emu.address(), "--role", "dqr-display", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
}

/// The next `n` lines the display printed.
fn next_lines(lines: &Receiver<String>, n: usize, d: &Daemon) -> Vec<String> {
    (0..n)
        .map(|i| {
            lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("display line {i} never came\n{}", d.log()))
        })
        .collect()
}

fn pay(d: &Daemon, id: &str, amount: u64) -> Value {
    d.request(json!({"action": "pay", "request_id": id, "amount": amount}))
}

#[test]
fn the_paired_display_shows_each_sale_amount_then_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (mut emu, lines) = display(dir.path());
    let d = Daemon::start();
    pair(&d, &emu);

    let ok = pay(&d, "scr-ok", 2500);
    assert_eq!(ok["code"], 0, "{ok}");
    let currency = ok["data"]["currency"].as_str().unwrap().to_owned();
    assert_eq!(
        next_lines(&lines, 2, &d),
        [format!("amount 2500 {currency}"), "status approved".into()]
    );

    let no = pay(&d, "scr-no", 151);
    assert_eq!(no["reason"], "declined", "{no}");
    assert_eq!(
        next_lines(&lines, 2, &d),
        [format!("amount 151 {currency}"), "status declined".into()]
    );

    // Reading results shows nothing new.
    d.request(json!({"action": "get_result", "request_id": "scr-ok"}));

    // The display goes away: sales go on, and are shown again once it is back.
    emu.kill9();
    let without = pay(&d, "scr-away", 300);
    assert_eq!(without["code"], 0, "{without}");
    emu.restart_piped();
    let lines = lines_of(&mut emu);
    let deadline = std::time::Instant::now() + WAIT * 2;
    loop {
        let v = d.request(json!({"action": "devices"}));
        if v["data"]["devices"][0]["connected"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "display never came back: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let back = pay(&d, "scr-back", 400);
    assert_eq!(back["code"], 0, "{back}");
    assert_eq!(
        next_lines(&lines, 2, &d),
        [format!("amount 400 {currency}"), "status approved".into()]
    );
}

#[test]
fn a_paysera_sale_shows_the_spot_qr_while_the_customer_pays() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, lines) = display(dir.path());
    let r = Replica::start(dir.path(), "paysera", "k", &[("client_id", "till-test")]);
    let key_file = dir.path().join("mac_key");
    std::fs::write(&key_file, "k\n").unwrap();
    let config = format!(
        "default_provider = \"paysera\"\n[providers.paysera]\nbase_url = \"{}\"\n\
         client_id = \"till-test\"\nmac_key_file = \"{}\"\nspot_id = \"7\"\ncurrency = \"EUR\"\n\
         timeout_ms = 5000\nstatus_poll_ms = [100]\n",
        r.url,
        key_file.display()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    pair(&d, &emu);

    let v = pay(&d, "scr-ps", 1299);
    assert_eq!(v["code"], 0, "{v}\n{}", d.log());
    assert_eq!(
        next_lines(&lines, 3, &d),
        [
            "amount 1299 EUR",
            "qr PAYSERA*1001:spot-7",
            "status approved"
        ]
    );
}
