//! The LIFE POS Checkout contract at the socket (seed document 003), end to end: the real
//! daemon, the real socket, the emulated reader on a pty. A request named the contract's way
//! gets the contract's answer (`data` a JSON string, `request_id` always, `action` echoed,
//! errors as `error_type`/`message`/`log`); its per-request fields reach the reader over the
//! link; its password is never written to the journal or a log. Short names keep API v1.

mod common;

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::emulator::Emulator;
use common::{lifepay_account, lifepay_daemon, Daemon};

const PAY: &str = "ru.lifepay.checkout.payment_terminal.transaction.pay";
const REFUND: &str = "ru.lifepay.checkout.payment_terminal.transaction.refund";
const GET_RESULT: &str = "ru.lifepay.checkout.payment_terminal.transaction.get_result";

/// The cashier's own login and password, sent per request (LIFE POS `login`/`password`).
const CASHIER_PW: &str = "Pw-cashier-Zx81q";

/// The reader accepts the configured shop-17 and the per-request cashier-5, nothing else.
fn rig(dir: &Path, serial: &str, password: &str) -> (Emulator, Daemon) {
    let cashier = dir.join("cashier.password");
    std::fs::write(&cashier, CASHIER_PW).unwrap();
    let emu = Emulator::start(
        "card-reader",
        dir,
        "reader",
        &[
            "--serial",
            serial,
            "--account",
            &lifepay_account(dir, password),
            "--account",
            &format!("cashier-5:{}", cashier.display()),
        ],
    );
    let d = lifepay_daemon(dir, password);
    let out = d.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    (emu, d)
}

use common::keys_of as keys;

/// The contract's `data`: a string holding the serialized transaction.
fn data_of(answer: &Value) -> Value {
    let text = answer["data"]
        .as_str()
        .unwrap_or_else(|| panic!("data is not a string: {answer}"));
    serde_json::from_str(text).unwrap()
}

#[test]
fn contract_names_get_the_contract_shape_and_short_names_keep_v1() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, d) = rig(dir.path(), "LC1", "pw-1");
    let meta = json!({"OrderId": "12345"});

    let paid = d.request(json!({"action": PAY, "request_id": "c-1", "amount": 2500,
        "provider": "lifepay", "metadata": meta}));
    assert_eq!(
        keys(&paid),
        ["code", "request_id", "metadata", "action", "data"],
        "{paid}"
    );
    assert_eq!(paid["code"], 0);
    assert_eq!(paid["request_id"], "c-1");
    assert_eq!(paid["metadata"], meta);
    assert_eq!(paid["action"], PAY);
    let tx = data_of(&paid);
    assert_eq!(tx["status"], "approved");
    assert_eq!(tx["amount"], 2500);

    // get_result the contract's way: the contract's shape of the stored (v1) answer.
    let again = d.request(json!({"action": GET_RESULT, "request_id": "c-1"}));
    assert_eq!(again["action"], GET_RESULT);
    assert_eq!(again["data"], paid["data"], "the same transaction string");
    // ... and the v1 way: the v1 shape of the same answer.
    let v1 = d.request(json!({"action": "get_result", "request_id": "c-1"}));
    assert!(v1["data"].is_object(), "{v1}");
    assert!(v1.get("action").is_none(), "{v1}");
    assert_eq!(v1["data"], tx);

    // A v1 pay, asked about the contract's way.
    let short = d.request(json!({"action": "pay", "request_id": "v-1", "amount": 700,
        "provider": "lifepay"}));
    assert!(
        short["data"].is_object() && short.get("action").is_none(),
        "{short}"
    );
    let asked = d.request(json!({"action": GET_RESULT, "request_id": "v-1"}));
    assert_eq!(data_of(&asked), short["data"]);

    // The refund takes back the `data` string the POS got.
    let refund = d.request(
        json!({"action": REFUND, "request_id": "c-2", "amount": 1000,
        "primary_transaction": paid["data"]}),
    );
    assert_eq!(refund["code"], 0, "{refund}\n{}", d.log());
    assert_eq!(data_of(&refund)["status"], "refunded");

    // An error: error_type, message and log; no `reason`, no `data`.
    let declined = d.request(json!({"action": PAY, "request_id": "c-3", "amount": 2551,
        "provider": "lifepay"}));
    assert_eq!(keys(&declined), common::CONTRACT_ERROR_KEYS, "{declined}");
    assert_ne!(declined["code"], 0);
    assert_eq!(declined["error_type"], "default_error");
    assert!(
        declined["log"].as_str().unwrap().contains("declined"),
        "{declined}"
    );
    let dup = d.request(json!({"action": PAY, "request_id": "c-1", "amount": 2500,
        "provider": "lifepay"}));
    assert_eq!(dup["error_type"], "duplicate_request_error", "{dup}");
    assert_eq!(dup["request_id"], "c-1");
}

#[test]
fn a_contract_refusal_still_carries_a_request_id_and_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let d = lifepay_daemon(dir.path(), "pw-2");
    for (request, field) in [
        (json!({"action": PAY, "provider": "lifepay"}), "amount"),
        (
            json!({"action": PAY, "request_id": "bad id!", "amount": 5}),
            "request_id",
        ),
        (json!({"action": GET_RESULT}), "request_id"),
        (
            json!({"action": REFUND, "amount": 5, "primary_transaction": "{}", "email": "a@b.ru"}),
            "email",
        ),
    ] {
        let r = d.request(request.clone());
        assert_eq!(keys(&r), common::CONTRACT_ERROR_KEYS, "{request} -> {r}");
        assert_eq!(r["action"], request["action"]);
        assert_eq!(r["error_type"], "default_error");
        assert!(r["message"].as_str().unwrap().contains(field), "{r}");
        let id = r["request_id"].as_str().unwrap();
        match request["request_id"].as_str() {
            // The value sent is echoed, even when it is not a valid id: it is refused.
            Some(sent) => assert_eq!(id, sent, "{r}"),
            None => assert!(id.len() >= 8, "a request_id is generated: {r}"),
        }
    }
    let unknown = "ru.lifepay.checkout.payment_terminal.transaction.status";
    let r = d.request(json!({"action": unknown, "request_id": "u-1"}));
    assert_eq!(
        (r["action"].as_str(), r["request_id"].as_str()),
        (Some(unknown), Some("u-1"))
    );
    // The same refusal named the v1 way keeps the v1 shape.
    let v1 = d.request(json!({"action": "pay"}));
    assert_eq!(v1["reason"], "invalid_request");
    assert!(
        v1["request_id"].is_null() && v1.get("action").is_none(),
        "{v1}"
    );
}

#[test]
fn contract_fields_reach_the_reader_and_the_password_is_never_written() {
    const PW: &str = CASHIER_PW;
    let dir = tempfile::tempdir().unwrap();
    let (emu, d) = rig(dir.path(), "LC3", "configured-pw-77");
    let paid = d.request(json!({"action": PAY, "request_id": "f-1", "amount": 1500,
        "provider": "lifepay", "metadata": {"OrderId": "12345"},
        "login": "cashier-5", "password": PW, "email": "buyer@example.ru",
        "phone": "+79001234567", "sign_on_screen": "1", "recipient_inn": "7707083893"}));
    assert_eq!(paid["code"], 0, "{paid}\n{}", d.log());
    let stored = emu.stored(&d.backend_id("f-1")).expect("the reader has it");
    let fingerprint: String = Sha256::digest(PW.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored["login"], "cashier-5");
    assert_eq!(stored["password_sha256"], fingerprint.as_str());
    assert_eq!(
        stored["details"],
        json!({"sign_on_screen": true, "email": "buyer@example.ru", "phone": "+79001234567",
            "recipient_inn": "7707083893", "metadata": {"OrderId": "12345"}})
    );

    // Refund takes login, password and sign_on_screen; get_result login and password.
    let refund = d.request(json!({"action": REFUND, "request_id": "f-2", "amount": 500,
        "primary_transaction": paid["data"], "login": "cashier-5", "password": PW,
        "sign_on_screen": "0"}));
    assert_eq!(refund["code"], 0, "{refund}");
    let stored = emu.stored(&d.backend_id("f-2")).unwrap();
    assert_eq!(stored["login"], "cashier-5");
    assert_eq!(stored["details"]["sign_on_screen"], false);
    let asked = d.request(json!({"action": GET_RESULT, "request_id": "f-1",
        "login": "cashier-5", "password": PW}));
    assert_eq!(asked["data"], paid["data"]);

    // Without them, the configured login goes to the reader.
    d.request(json!({"action": PAY, "request_id": "f-3", "amount": 100, "provider": "lifepay"}));
    assert_eq!(
        emu.stored(&d.backend_id("f-3")).unwrap()["login"],
        "shop-17"
    );

    let journal = d.journal_bytes();
    assert!(!journal.is_empty());
    for secret in [PW, "configured-pw-77"] {
        let leaked = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!leaked(&journal), "{secret} is in the journal");
        assert!(!d.log().contains(secret), "{secret} is in the daemon's log");
        assert!(
            !emu.log_text().contains(secret),
            "{secret} is in the reader's log"
        );
        assert!(
            !leaked(&std::fs::read(&emu.state).unwrap()),
            "{secret} in the reader state"
        );
    }
}

/// The contract's error shape, with the request_id and action the request sent.
fn assert_contract_refusal(r: &Value, request_id: &str, reason: &str) {
    assert_eq!(keys(r), common::CONTRACT_ERROR_KEYS, "{r}");
    assert_eq!(r["request_id"], request_id, "{r}");
    assert_eq!(r["action"], PAY, "{r}");
    assert_eq!(r["error_type"], "default_error", "{r}");
    assert_eq!(r["log"], format!("reason: {reason}"), "{r}");
}

#[test]
fn a_line_too_long_named_the_contract_way_is_refused_in_the_contract_shape() {
    let d = Daemon::start();
    // The action and request_id come first; the padding makes the line too long.
    let line = format!(
        r#"{{"action":"{PAY}","request_id":"not valid!","amount":5,"metadata":{{"pad":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    // The daemon answers and closes once it has read 64 KiB: the rest of the line may meet a
    // closed socket, so writing is allowed to fail.
    let too_long = |line: &str| -> Value {
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        let _ = std::io::Write::write_all(&mut s, format!("{line}\n").as_bytes());
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        let first = answer
            .lines()
            .next()
            .expect("an answer, then the connection closes");
        assert_eq!(answer.lines().count(), 1, "{answer}");
        common::schema::check_answer(first);
        serde_json::from_str(first).unwrap()
    };
    let r = too_long(&line);
    assert_contract_refusal(&r, "not valid!", "invalid_request");
    assert!(
        r["message"].as_str().unwrap().contains("longer than"),
        "{r}"
    );
    // Named the v1 way, the same line keeps the v1 shape.
    let v = too_long(&line.replace(PAY, "pay"));
    assert_eq!(v["reason"], "invalid_request", "{v}");
    assert!(v.get("action").is_none(), "{v}");
}

#[test]
fn busy_named_the_contract_way_is_refused_in_the_contract_shape() {
    let d = Daemon::start_with(Some("[api]\nmax_connections = 1\n"), &[]);
    let mut running = d.client();
    running.send_raw(
        format!(
            "{}\n",
            json!({"action": "pay", "request_id": "slow", "amount": 100,
                "params": {"delay_ms": 3000}})
        )
        .as_bytes(),
    );
    // Until the slow sale has begun, the one connection is idle and a newcomer takes it.
    d.wait_in_flight(1, "the slow sale");
    let mut c = d.client();
    c.send_raw(
        format!(
            "{}\n",
            json!({"action": PAY, "request_id": "b-1", "amount": 5})
        )
        .as_bytes(),
    );
    let r: Value = serde_json::from_str(&c.read_line().expect("an answer")).unwrap();
    assert_contract_refusal(&r, "b-1", "busy");
    assert_eq!(c.read_line(), None, "the busy connection is closed");
    let done: Value = serde_json::from_str(&running.read_line().unwrap()).unwrap();
    assert_eq!(done["code"], 0, "{done}");
}
