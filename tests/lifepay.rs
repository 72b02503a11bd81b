//! The `lifepay` provider end to end: the real daemon drives `posbridge emulate card-reader`
//! over a pty. A sale cut off by the reader vanishing is reported unknown, then reconciled with
//! GET_RESULT once the reader is back: charged exactly once, never started again. The reader
//! knows each operation by its backend id, never the POS's request_id. The LIFE POS contract
//! at the socket (answer shape, per-request fields) is in tests/lifepos.rs.

mod common;

use std::path::Path;
use std::time::Duration;

use common::emulator::Emulator;
use common::{json_of, lifepay_account, lifepay_daemon, Daemon};

const PASSWORD: &str = "s3cret-pass";

fn daemon(rig: &Path) -> Daemon {
    lifepay_daemon(rig, PASSWORD)
}

/// The reader's `--account`: it accepts only the daemon's configured login and password.
fn account(rig: &Path) -> String {
    lifepay_account(rig, PASSWORD)
}

/// An emulated reader with serial number `serial` speaking link protocol `version`.
fn reader_speaking(rig: &Path, serial: &str, version: &str) -> Emulator {
    let account = account(rig);
    let args = [
        "--serial",
        serial,
        "--protocol-version",
        version,
        "--account",
        &account,
    ];
    Emulator::start("card-reader", rig, "reader", &args)
}

fn pair(d: &Daemon, emu: &Emulator) {
    let out = d.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
}

#[test]
fn approve_decline_refund_and_close_shift_on_the_reader() {
    let rig = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP1", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);

    let (code, ok) = d.lifepay_pay("lp-ok", 2500);
    assert_eq!(code, Some(0), "{ok}\n{}", d.log());
    let data = &ok["data"];
    assert_eq!(data["provider"], "lifepay");
    assert_eq!(data["status"], "approved");
    assert_eq!(data["amount"], 2500);
    assert_eq!(data["currency"], "INR");
    assert_eq!(data["rrn"].as_str().map(str::len), Some(12));
    assert_eq!(data["provider_reference"], data["rrn"]);
    assert!(data["approval_code"].is_string());
    assert_eq!(data["card"]["masked_pan"], "411111******1111");
    assert_eq!(data["card"]["scheme"], "VISA");
    // The order of `data` is part of the answer (tests/golden.rs covers the sim only).
    assert_eq!(
        common::keys_of(data),
        common::approved_keys("currency provider_reference rrn approval_code card reader_message"),
        "{ok}"
    );

    let (code, no) = d.lifepay_pay("lp-no", 2551);
    assert_eq!(code, Some(1));
    assert_eq!(no["reason"], "declined");

    let out = d.cli(&[
        "refund",
        "--primary",
        "lp-ok",
        "--amount",
        "1000",
        "--request-id",
        "lp-rf",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_of(&out)["data"]["status"], "refunded");

    let out = d.cli(&["close-shift", "--provider", "lifepay", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shift = json_of(&out);
    assert_eq!(shift["data"]["pay"]["count"], 1);
    assert_eq!(shift["data"]["pay"]["total"], 2500);

    assert!(
        !d.log().contains("s3cret-pass"),
        "the acquirer password must never be logged"
    );
    assert_eq!(
        emu.charges(&d.backend_id("lp-ok")),
        (1, 2),
        "the sale and the refund"
    );
}

/// Starts a lifepay sale of 4093 (the reader takes 3 s over amounts ending in 93) and kills the
/// reader once it has committed the charge: the CLI answers unknown (exit 3). Returns the
/// sale's id at the reader and the CLI's output.
fn cut_mid_sale(
    d: &Daemon,
    emu: &mut Emulator,
    request_id: &str,
) -> (String, std::process::Output) {
    let paying = d.slow_reader_sale_in_thread(request_id);
    let reader_id = d.backend_id(request_id);
    emu.wait_started(&reader_id);
    emu.kill9();
    let out = paying.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    (reader_id, out)
}

#[test]
fn reader_lost_mid_sale_is_unknown_then_reconciled_with_one_charge() {
    let rig = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP2", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);

    let (reader_id, out) = cut_mid_sale(&d, &mut emu, "lp-cut");
    let cut = json_of(&out);
    assert_eq!(cut["error_type"], "unknown_result_error", "{cut}");
    assert_eq!(cut["reason"], "link_lost", "{cut}");

    // Still unknown while the reader is away; nothing is re-sent.
    let r = d.request(serde_json::json!({"action": "get_result", "request_id": "lp-cut"}));
    assert_eq!(r["error_type"], "unknown_result_error", "{r}");

    emu.restart();
    let settled = d.await_result("lp-cut", Duration::from_secs(60), |a| a["code"] != 2);
    assert_eq!(settled["code"], 0, "{settled}\n{}", d.log());
    assert_eq!(settled["data"]["status"], "approved");
    assert_eq!(settled["data"]["amount"], 4093);
    emu.assert_charged_once_never_restarted(&reader_id);
}

/// Issue 10 §3 (seen in hil/vm): `journalctl REQUEST_ID=...` must tell which reader ran a
/// sale, also when it was cut off and settled later: the DEVICE field is on the entries of the
/// start and of the GET_RESULT that reconciles it.
#[test]
fn the_log_of_a_reader_sale_and_its_reconciliation_names_the_device() {
    let rig = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP9", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);
    cut_mid_sale(&d, &mut emu, "lp-dev");
    emu.restart();
    let settled = d.await_result("lp-dev", Duration::from_secs(60), |a| a["code"] != 2);
    assert_eq!(settled["code"], 0, "{settled}\n{}", d.log());

    let log = d.log();
    let of_sale: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request_id=lp-dev") && l.contains("device=card-reader-LP9"))
        .collect();
    assert!(
        of_sale
            .iter()
            .any(|l| l.contains("sent to the card reader")),
        "no entry of the start names the device:\n{log}"
    );
    assert!(
        of_sale
            .iter()
            .any(|l| l.contains("GET_RESULT") && l.contains("Approved")),
        "no entry of the reconciliation names the device:\n{log}"
    );
    assert!(
        of_sale.iter().all(|l| l.contains("provider=lifepay")),
        "{of_sale:?}"
    );
}

#[test]
fn without_a_paired_reader_nothing_is_charged_and_the_cashier_is_told() {
    let rig = tempfile::tempdir().unwrap();
    let d = daemon(rig.path());
    let (code, r) = d.lifepay_pay("lp-none", 100);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["reason"], "device_unavailable");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("no card reader is paired"),
        "{r}"
    );
}

/// Issue 9 §1: the reader gets the operation's own backend id (never the POS's request_id),
/// so a request_id a POS reuses can never land on the reader's old result.
#[test]
fn the_reader_knows_each_operation_by_its_backend_id_never_the_request_id() {
    let rig = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP4", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);
    let (code, ok) = d.lifepay_pay("till3-0042", 2500);
    assert_eq!(code, Some(0), "{ok}\n{}", d.log());
    let backend_id = d.backend_id("till3-0042");
    assert_eq!(backend_id.len(), 29, "{backend_id}");
    assert!(backend_id.starts_with('P'), "{backend_id}");
    assert!(
        emu.stored("till3-0042").is_none(),
        "the reader was sent the POS's request_id"
    );
    let stored = emu
        .stored(&backend_id)
        .expect("the reader has the backend id");
    assert_eq!(stored["amount"], 2500);
    assert_eq!(stored["outcome"], "approved");
    assert_eq!(ok["data"]["rrn"], stored["rrn"]);
}

/// Issue 9 §5: the reader route's currency is the contract's (kopecks, RUB) when the
/// configuration names none.
#[test]
fn the_reader_route_defaults_to_roubles() {
    let rig = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP5", "--account", &account(rig.path())],
    );
    // The same file (and password) the reader's --account was given.
    let file = rig.path().join("lifepay.password");
    let d = Daemon::start_with(
        Some(&format!(
            "[providers.lifepay]\nlogin = \"shop-17\"\npassword_file = \"{}\"\n",
            file.display()
        )),
        &[],
    );
    pair(&d, &emu);
    let (code, ok) = d.lifepay_pay("lp-rub", 100);
    assert_eq!(code, Some(0), "{ok}");
    assert_eq!(ok["data"]["currency"], "RUB", "{ok}");
    assert_eq!(
        emu.stored(&d.backend_id("lp-rub")).unwrap()["currency"],
        "RUB"
    );
    let status = d.request(serde_json::json!({"action": "status"}));
    let lifepay = status["data"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lifepay")
        .cloned()
        .unwrap();
    assert_eq!(lifepay["currency"], "RUB");
}

/// Issue 9 §5: close_shift totals count refunds and cancels, not only pays.
#[test]
fn close_shift_counts_sales_refunds_and_cancels() {
    let rig = tempfile::tempdir().unwrap();
    let emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP6", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);
    assert_eq!(d.lifepay_pay("cs-a", 2500).0, Some(0));
    assert_eq!(d.lifepay_pay("cs-b", 1000).0, Some(0));
    assert_eq!(
        d.lifepay_pay("cs-no", 2551).0,
        Some(1),
        "declined: not counted"
    );
    for (action, primary, amount, id) in [
        ("refund", "cs-a", "500", "cs-r"),
        ("cancel", "cs-b", "1000", "cs-c"),
    ] {
        let out = d.cli(&[
            action,
            "--primary",
            primary,
            "--amount",
            amount,
            "--request-id",
            id,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    }
    let out = d.cli(&["close-shift", "--provider", "lifepay", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shift = &json_of(&out)["data"];
    assert_eq!(
        shift["pay"],
        serde_json::json!({"count": 2, "total": 3500}),
        "{shift}"
    );
    assert_eq!(
        shift["refund"],
        serde_json::json!({"count": 1, "total": 500}),
        "{shift}"
    );
    assert_eq!(
        shift["cancel"],
        serde_json::json!({"count": 1, "total": 1000}),
        "{shift}"
    );
    assert_eq!(shift["net"], 2000, "{shift}");
    // The shift is closed: the next one starts from nothing.
    let out = d.cli(&["close-shift", "--provider", "lifepay", "--json"]);
    let next = &json_of(&out)["data"];
    assert_eq!(next["pay"]["count"], 0);
    assert_eq!(next["refund"]["count"], 0);
}

/// A sale cut off mid-way, then another reader (another serial, no memory of the sale) shows
/// up at the paired address: its "never started" is not evidence about our sale, so the
/// outcome stays unknown instead of turning into "nothing was charged" (a lost sale).
#[test]
fn a_different_reader_at_the_paired_address_never_settles_a_cut_sale() {
    let rig = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start(
        "card-reader",
        rig.path(),
        "reader",
        &["--serial", "LP8", "--account", &account(rig.path())],
    );
    let d = daemon(rig.path());
    pair(&d, &emu);
    let paying = d.slow_reader_sale_in_thread("lp-swap");
    emu.wait_started(&d.backend_id("lp-swap"));
    emu.kill9();
    assert_eq!(paying.join().unwrap().status.code(), Some(3));

    // Another reader: its own serial, its own (empty) memory.
    std::fs::remove_file(&emu.state).unwrap();
    emu.extra = vec!["--serial".into(), "LP9".into()];
    emu.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !d.log().contains("reports serial LP9") {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = d.request(serde_json::json!({"action": "get_result", "request_id": "lp-swap"}));
    assert_eq!(r["error_type"], "unknown_result_error", "{r}\n{}", d.log());
    let out = d.cli(&["devices", "--json"]);
    let devices = json_of(&out);
    assert!(
        devices["data"]["devices"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("not the paired LP8"),
        "{devices}"
    );
}

/// A version 1 reader (firmware before the LIFE POS details) still sells: it gets version 1
/// frames; a request it cannot carry (an e-mail for the slip) is refused before anything is
/// sent; its shift summary has no refunds or cancels, and the answer says so (null).
#[test]
fn a_version_1_reader_gets_version_1_frames_and_what_it_cannot_carry_is_refused() {
    let rig = tempfile::tempdir().unwrap();
    let emu = reader_speaking(rig.path(), "LP10", "1");
    let d = daemon(rig.path());
    pair(&d, &emu);
    let pay = "ru.lifepay.checkout.payment_terminal.transaction.pay";
    let ok = d.request(
        serde_json::json!({"action": pay, "request_id": "v1-a", "amount": 300,
        "provider": "lifepay", "metadata": {"OrderId": "7"}}),
    );
    assert_eq!(ok["code"], 0, "{ok}\n{}", d.log());
    let stored = emu.stored(&d.backend_id("v1-a")).unwrap();
    assert!(stored.get("details").is_none(), "{stored}");
    let refused = d.request(serde_json::json!({"action": pay, "request_id": "v1-b",
        "amount": 300, "provider": "lifepay", "email": "buyer@example.ru"}));
    assert_eq!(refused["error_type"], "default_error", "{refused}");
    assert!(
        refused["log"].as_str().unwrap().contains("not_supported"),
        "{refused}"
    );
    assert!(
        emu.stored(&d.backend_id("v1-b")).is_none(),
        "nothing was sent"
    );
    let out = d.cli(&["close-shift", "--provider", "lifepay", "--json"]);
    let shift = &json_of(&out)["data"];
    assert_eq!(
        shift["pay"],
        serde_json::json!({"count": 1, "total": 300}),
        "{shift}"
    );
    assert!(
        shift["refund"].is_null() && shift["net"].is_null(),
        "{shift}"
    );
}

/// Progress events from the reader over serial (a pty): `on_terminal` once it acknowledged the
/// START, then what a version 4 reader tells (STAGE: card read, PIN entry, authorising), all
/// before the answer; a version 3 reader has no STAGE, so only `on_terminal`.
#[test]
fn a_reader_sale_tells_its_stages_before_the_answer() {
    for (version, serial, want) in [
        (
            "4",
            "LP20",
            &["on_terminal", "card_read", "pin_entry", "authorising"][..],
        ),
        ("3", "LP21", &["on_terminal"][..]),
    ] {
        let rig = tempfile::tempdir().unwrap();
        let emu = reader_speaking(rig.path(), serial, version);
        let d = daemon(rig.path());
        pair(&d, &emu);
        let mut c = d.client();
        let (events, answer) = c.request_with_events(&serde_json::json!({"action": "pay",
            "request_id": "lp-ev", "amount": 2500, "provider": "lifepay", "progress": true}));
        assert_eq!(answer["code"], 0, "{answer}\n{}", d.log());
        assert_eq!(
            common::stages(&events),
            want,
            "version {version}: {events:?}"
        );
        // Nothing after the answer; get_result as it was.
        let again = c.request(&serde_json::json!({"action": "get_result", "request_id": "lp-ev"}));
        assert_eq!(again, answer);
        // Without progress: nothing but the answer.
        let (events, declined) = c.request_with_events(&serde_json::json!({"action": "pay",
            "request_id": "lp-ev-no", "amount": 2551, "provider": "lifepay"}));
        assert_eq!(declined["reason"], "declined", "{declined}");
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(emu.charges(&d.backend_id("lp-ev")), (1, 1));
    }
}
