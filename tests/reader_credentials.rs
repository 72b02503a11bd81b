//! The Lifepay credentials reach the card reader, and a wrong one is refused (issue 17, item 4).
//! The real daemon, the real socket, `posbridge emulate card-reader --account LOGIN:FILE` on a
//! pty: the reader accepts only the accounts it was given, as a Lifepay QPOS signs each
//! operation in, so an approved sale here proves the password the daemon is configured with
//! (`[providers.lifepay] password_file`) or the one a LIFE POS request carries is the one that
//! arrived, byte for byte; a wrong one ends "nothing charged" and the reader charged nothing.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::emulator::Emulator;
use common::{lifepay_daemon, Daemon};

const PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";
const CONFIGURED: &str = "configured-pw-77";
const CASHIER: &str = "Pw-cashier-Zx81q";
const REFUSED: &str = "Lifepay refused the login or password; nothing was charged";

fn fingerprint(password: &str) -> String {
    Sha256::digest(password.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_secret(dir: &Path, name: &str, password: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, format!("{password}\n")).unwrap();
    file
}

/// A reader that knows shop-17 (the daemon's configured login, with CONFIGURED) and
/// cashier-5 (a LIFE POS request's own login, with CASHIER).
fn reader(dir: &Path) -> Emulator {
    let shop = write_secret(dir, "reader-shop.password", CONFIGURED);
    let cashier = write_secret(dir, "reader-cashier.password", CASHIER);
    let shop = format!("shop-17:{}", shop.display());
    let cashier = format!("cashier-5:{}", cashier.display());
    Emulator::start(
        "card-reader",
        dir,
        "reader",
        &[
            "--serial",
            "CRED1",
            "--account",
            &shop,
            "--account",
            &cashier,
        ],
    )
}

fn paired(dir: &Path, emu: &Emulator, password: &str) -> Daemon {
    let d = lifepay_daemon(dir, password);
    let out = d.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    d
}

fn charges(emu: &Emulator) -> u64 {
    emu.state_json()["charges"].as_u64().unwrap()
}

/// The LIFE POS contract's `data` (a JSON string) or, on an error, the whole answer.
fn contract_pay(d: &Daemon, id: &str, amount: u64, password: &str) -> Value {
    d.request(json!({"action": PAY, "request_id": id, "amount": amount,
        "provider": "lifepay", "login": "cashier-5", "password": password}))
}

#[test]
fn the_configured_and_per_request_passwords_reach_the_reader_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emu = reader(dir.path());
    assert!(
        !emu.log_text().contains("accepts ANY"),
        "a reader given --account must not announce that it accepts anything:\n{}",
        emu.log_text()
    );
    let d = paired(dir.path(), &emu, CONFIGURED);

    // The configured login and password (from password_file) are what the reader signs in with.
    let (code, answer) = d.lifepay_pay("cr-configured", 1200);
    assert_eq!(code, Some(0), "{answer}\n{}", emu.log_text());
    let stored = emu.stored(&d.backend_id("cr-configured")).unwrap();
    assert_eq!(stored["login"], "shop-17");
    assert_eq!(stored["password_sha256"], fingerprint(CONFIGURED).as_str());
    assert_eq!(stored["outcome"], "approved");
    assert_eq!(charges(&emu), 1);

    // A LIFE POS request's own login and password replace them, and are accepted.
    let paid = contract_pay(&d, "cr-cashier", 1300, CASHIER);
    assert_eq!(paid["code"], 0, "{paid}\n{}", emu.log_text());
    let stored = emu.stored(&d.backend_id("cr-cashier")).unwrap();
    assert_eq!(stored["login"], "cashier-5");
    assert_eq!(stored["password_sha256"], fingerprint(CASHIER).as_str());
    assert_eq!(charges(&emu), 2);

    // A wrong per-request password: the reader refuses, nothing is charged, and the POS is
    // told so (a final failure, not an unknown outcome).
    let refused = contract_pay(&d, "cr-wrong", 1400, "Pw-cashier-Zx81Q");
    assert_ne!(refused["code"], 0, "{refused}");
    assert_ne!(refused["error_type"], "unknown_result_error", "{refused}");
    assert!(refused.to_string().contains(REFUSED), "{refused}");
    let stored = emu.stored(&d.backend_id("cr-wrong")).unwrap();
    assert_eq!(stored["outcome"], "error");
    assert!(
        stored["rrn"].is_null() && stored["masked_pan"].is_null(),
        "{stored}"
    );
    // Another account's password is no better: each login has its own.
    let swapped = contract_pay(&d, "cr-swapped", 1500, CONFIGURED);
    assert_ne!(swapped["code"], 0, "{swapped}");
    assert_eq!(charges(&emu), 2, "a refused sign-in charged something");
    let log = d.log();
    assert!(
        !log.contains(CONFIGURED) && !log.contains(CASHIER),
        "a password was logged"
    );
}

#[test]
fn a_daemon_configured_with_another_password_is_refused_by_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let emu = reader(dir.path());
    let d = paired(dir.path(), &emu, "configured-pw-78");
    let (code, answer) = d.lifepay_pay("cr-stale", 2200);
    assert_ne!(code, Some(0), "{answer}");
    assert_ne!(code, Some(3), "a refusal is final, not unknown: {answer}");
    assert!(answer.to_string().contains(REFUSED), "{answer}");
    let stored = emu.stored(&d.backend_id("cr-stale")).unwrap();
    assert_eq!(
        stored["password_sha256"],
        fingerprint("configured-pw-78").as_str()
    );
    assert_eq!(charges(&emu), 0);
    // Asked again (get_result), the reader answers the same stored refusal.
    let again = d.cli(&["get-result", "cr-stale", "--json"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(REFUSED),
        "{again:?}"
    );
}

#[test]
fn a_reader_without_accounts_says_loudly_that_it_accepts_anything() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start("card-reader", dir.path(), "reader", &["--serial", "OPEN1"]);
    let d = paired(dir.path(), &emu, "anything-goes");
    let (code, answer) = d.lifepay_pay("cr-open", 1000);
    assert_eq!(code, Some(0), "{answer}");
    let log = emu.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("linked at"))
        .unwrap_or_else(|| panic!("no startup line:\n{log}"));
    assert!(
        line.contains("accepts ANY login and password") && line.contains("WARN"),
        "{line}"
    );
}

#[test]
fn a_bad_account_flag_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["emulate", "card-reader", "--pty"])
        .arg(dir.path().join("r"))
        .args(["--account", "shop-17"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--account") && err.contains("LOGIN:PASSWORD_FILE"),
        "{err}"
    );
    let missing = dir.path().join("nope");
    let out = std::process::Command::new(common::BIN)
        .args(["emulate", "card-reader", "--pty"])
        .arg(dir.path().join("r"))
        .arg("--account")
        .arg(format!("shop-17:{}", missing.display()))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
}
