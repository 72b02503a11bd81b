//! The technician's `pair` and `unpair` of a BLE device, on the CLI's side: `pair ble:` makes
//! the Bluetooth bond first, with the agent in this process (`device::ble::bond`: the code is
//! compared here, at the technician's terminal), then asks the daemon to pair, telling it how
//! the bond was made; `unpair` removes the bond once the daemon has forgotten the device
//! (asking first). Serial devices go to the daemon as they are. Steps and questions go to
//! stderr, each line starting `pair: ` / `unpair: `; the answer to stdout (`--json`: one line).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use super::{report, request};
use crate::cli::{PairArgs, UnpairArgs};
use crate::device::ble::bond::{Bluez, BondError, Technician};
use crate::exchange::{Answer, Body, BondMethod, ErrorKind, Metadata};

/// How long a question waits for the technician: BlueZ gives its agent 60 s for an answer
/// (src/agent.c), after which the pairing has failed whatever is typed.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// Stdin's lines, read on a thread of their own, so that a question waits a bounded time
/// (`--json` in a script whose stdin stays open must not hang with a pairing in flight).
fn stdin_lines() -> &'static Mutex<mpsc::Receiver<String>> {
    static LINES: OnceLock<Mutex<mpsc::Receiver<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Mutex::new(rx)
    })
}

/// The person at the terminal: steps and questions on stderr, answers from stdin.
struct Terminal;

impl Terminal {
    fn ask(&mut self, question: &str) -> String {
        eprint!("pair: {question} ");
        let _ = std::io::stderr().flush();
        // EOF, an error or no answer within BlueZ's own limit is no answer.
        let line = match stdin_lines()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(ANSWER_LIMIT)
        {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!("(no answer in {} s: taken as no)", ANSWER_LIMIT.as_secs());
                return String::new();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => String::new(),
        };
        let answer = line.trim().to_ascii_lowercase();
        // A script's answer is not echoed by a terminal: show it, so the log reads as a dialogue.
        if !std::io::stdin().is_terminal() {
            eprintln!("{answer}");
        }
        answer
    }
}

impl Technician for Terminal {
    fn step(&mut self, text: &str) {
        eprintln!("pair: {text}");
    }

    fn confirm(&mut self, code: u32) -> bool {
        let answer = self.ask(&format!(
            "the reader shows a six-digit code. Is it {code:06}? [y/N]"
        ));
        matches!(answer.as_str(), "y" | "yes")
    }

    fn enter_passkey(&mut self) -> Option<u32> {
        let answer = self.ask("type the six digits the reader shows, then Enter:");
        answer
            .parse::<u32>()
            .ok()
            .filter(|n| answer.len() == 6 && *n <= 999_999)
    }

    fn show_passkey(&mut self, code: u32) {
        eprintln!("pair: type {code:06} on the reader's keys, then its OK key");
    }
}

/// `posbridge pair`.
pub fn pair(a: &PairArgs) -> Result<i32> {
    let mut req = json!({"action": "pair", "address": a.address, "role": a.role});
    if let Some(baud) = a.baud {
        req["baud"] = json!(baud);
    }
    let Some(address) = a.address.strip_prefix("ble:") else {
        return Ok(report(&a.client, &request(&a.client, &req)?));
    };
    if crate::device::registry::Address::parse(&a.address).is_err() {
        // The daemon says what is wrong with it, in the API's words.
        return Ok(report(&a.client, &request(&a.client, &req)?));
    }
    let refuse = |e: BondError| report(&a.client, &refused(e.reason, e.message));
    let mut tech = Terminal;
    let recorded = recorded_bond(a, address)?;
    let bluez = match Bluez::connect() {
        Ok(b) => b,
        Err(e) => return Ok(refuse(e)),
    };
    let paired = match bluez.known(address) {
        Ok(k) => k.is_some_and(|k| k.paired),
        Err(e) => return Ok(refuse(e)),
    };
    let mut made = false;
    let method = if paired && !a.rebond {
        match recorded {
            Some(m) if m.authenticated() => {
                tech.step(&format!(
                    "already bonded ({m}), as recorded when it was paired"
                ));
                m
            }
            _ if a.allow_unauthenticated => {
                tech.step("BlueZ holds a bond posbridge did not make: kept, as --allow-unauthenticated says");
                recorded.unwrap_or(BondMethod::Unknown)
            }
            _ => {
                return Ok(refuse(BondError {
                    reason: "unauthenticated_bond",
                    message: format!(
                        "BlueZ already holds a bond with {address} that posbridge did not make, \
                         so whether a code was compared is not known. `posbridge pair {} --role \
                         {} --rebond` removes it and bonds again with a code to compare; \
                         --allow-unauthenticated keeps it as it is",
                        a.address, a.role
                    ),
                }))
            }
        }
    } else {
        if paired {
            tech.step("removing the old bond (--rebond)");
            if let Err(e) = bluez.remove(address) {
                return Ok(refuse(e));
            }
        }
        let wait = Duration::from_secs(a.wait);
        match bluez.make(address, wait, a.allow_unauthenticated, &mut tech) {
            Ok(m) => {
                made = true;
                m
            }
            Err(e) => return Ok(refuse(e)),
        }
    };
    req["bond"] = json!(method.as_str());
    if a.allow_unauthenticated {
        req["allow_unauthenticated"] = json!(true);
    }
    tech.step("the daemon connects and checks the reader's HELLO");
    let answer = request(&a.client, &req);
    let failed = !matches!(
        &answer,
        Ok(Answer {
            body: Body::Done(_),
            ..
        })
    );
    if failed && made {
        // The next try starts clean, not at "a bond posbridge did not make".
        match bluez.remove(address) {
            Ok(_) => tech.step("the bond made for this pairing was removed"),
            Err(e) => tech.step(&format!("the bond made for this pairing stays: {e}")),
        }
    }
    Ok(report(&a.client, &answer?))
}

/// How the bond with `address` was made, as the daemon recorded it (`None`: not paired, or
/// no bond recorded).
fn recorded_bond(a: &PairArgs, address: &str) -> Result<Option<BondMethod>> {
    let listing = request(&a.client, &json!({"action": "devices"}))?;
    Ok(ble_device(&listing, |d| {
        d["address"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(address))
    })
    .and_then(|d| d["bond"]["method"].as_str().and_then(BondMethod::parse)))
}

/// The BLE device of `listing` (a `devices` answer) that `which` picks.
fn ble_device(listing: &Answer, which: impl Fn(&Value) -> bool) -> Option<Value> {
    let Body::Done(data) = &listing.body else {
        return None;
    };
    data.to_value()["devices"]
        .as_array()?
        .iter()
        .find(|d| d["transport"] == "ble" && which(d))
        .cloned()
}

/// `posbridge unpair`.
pub fn unpair(a: &UnpairArgs) -> Result<i32> {
    let req = json!({"action": "unpair", "id": a.id});
    let listing = request(&a.client, &json!({"action": "devices"}))?;
    let address = ble_device(&listing, |d| d["id"] == a.id.as_str())
        .and_then(|d| d["address"].as_str().map(str::to_owned))
        .filter(|_| !a.keep_bond);
    if let Some(address) = &address {
        if !a.yes {
            eprint!(
                "unpair: {} will be forgotten and its Bluetooth bond with {address} removed; \
                 it must then be paired again, with a code. Go on? [y/N] ",
                a.id
            );
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                eprintln!("unpair: nothing changed (--keep-bond keeps the bond, --yes skips this question)");
                return Ok(super::exit::FAILED);
            }
        }
    }
    let answer = request(&a.client, &req)?;
    let code = report(&a.client, &answer);
    let (Some(address), None) = (address, answer.kind()) else {
        return Ok(code);
    };
    match Bluez::connect().and_then(|b| b.remove(&address)) {
        Ok(true) => eprintln!("unpair: the Bluetooth bond with {address} was removed"),
        Ok(false) => eprintln!("unpair: BlueZ held no bond with {address}"),
        Err(e) => {
            eprintln!(
                "unpair: {} is forgotten, but its bond stays ({e}): remove it with \
                 `bluetoothctl remove {address}`",
                a.id
            );
            return Ok(super::exit::FAILED);
        }
    }
    Ok(code)
}

fn refused(reason: &str, message: String) -> Answer {
    Answer::refused(
        None,
        Metadata::new(),
        ErrorKind::DefaultError,
        reason,
        message,
    )
}
