//! Abort from the POS on the card reader (issue 21 item 4), end to end over a pty with
//! `posbridge emulate card-reader`: a cancel naming the running sale by request_id sends the
//! reader ABORT (link protocol version 4). In time (..95: the customer takes 30 s): the reader
//! stops the sale, nothing is charged, the cancel answers cancelled and the sale cancelled.
//! Too late (..96: the acquirer has already approved): the sale is approved, charged once,
//! and the cancel answers already_completed. A version 3 reader has no ABORT: the cancel is
//! refused, telling the cashier to press cancel on the reader, and nothing is sent.

mod common;

use serde_json::{json, Value};

use common::emulator::Emulator;
use common::{lifepay_account, lifepay_daemon, send_in_thread, Daemon};

const PASSWORD: &str = "s3cret-pass";

struct Rig {
    d: Daemon,
    emu: Emulator,
    _dir: tempfile::TempDir,
}

fn rig(extra: &[&str]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let account = lifepay_account(dir.path(), PASSWORD);
    let mut args = vec!["--serial", "LPA1", "--account", &account];
    args.extend_from_slice(extra);
    let emu = Emulator::start("card-reader", dir.path(), "reader", &args);
    let d = lifepay_daemon(dir.path(), PASSWORD);
    let out = d.cli(&["pair", &emu.address(), "--role", "card-reader", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", d.log());
    Rig { d, emu, _dir: dir }
}

impl Rig {
    /// Starts the sale `id` and waits until the reader holds it.
    fn running_sale(&self, id: &str, amount: u64) -> std::thread::JoinHandle<Option<String>> {
        let pay = send_in_thread(
            &self.d,
            json!({"action": "pay", "provider": "lifepay", "request_id": id, "amount": amount}),
        );
        self.emu.wait_started(&self.d.backend_id(id));
        pay
    }

    fn abort(&self, id: &str, sale: &str, amount: u64) -> Value {
        self.d.request(
            json!({"action": "cancel", "request_id": id, "amount": amount,
            "primary_transaction": {"request_id": sale, "provider": "lifepay", "amount": amount}}),
        )
    }
}

fn answer_of(pay: std::thread::JoinHandle<Option<String>>) -> Value {
    serde_json::from_str(&pay.join().unwrap().expect("the sale's answer")).unwrap()
}

#[test]
fn an_abort_while_the_customer_has_not_paid_stops_the_sale_and_nothing_is_charged() {
    let r = rig(&[]);
    let pay = r.running_sale("lp-ab", 2595);
    let c = r.abort("lp-ab-c", "lp-ab", 2595);
    assert_eq!(c["code"], 0, "{c}\n{}", r.d.log());
    assert_eq!(c["data"]["status"], "cancelled", "{c}");
    common::assert_ended_as(&r.d, "lp-ab", &answer_of(pay), "cancelled");
    let sale = r.d.backend_id("lp-ab");
    assert_eq!(r.emu.charges(&sale), (0, 0), "nothing charged");
    assert_eq!(r.emu.stored(&sale).unwrap()["outcome"], "declined");
    assert!(
        r.emu.log_text().contains("ABORT: stopped"),
        "{}",
        r.emu.log_text()
    );
}

#[test]
fn an_abort_after_the_acquirer_approved_is_too_late_and_the_sale_is_charged_once() {
    let r = rig(&[]);
    let pay = r.running_sale("lp-late", 2596);
    let c = r.abort("lp-late-c", "lp-late", 2596);
    assert_eq!(
        (&c["error_type"], &c["reason"]),
        (&json!("default_error"), &json!("already_completed")),
        "{c}\n{}",
        r.d.log()
    );
    assert!(c["message"].as_str().unwrap().contains("refund"), "{c}");
    let p = answer_of(pay);
    assert_eq!(p["code"], 0, "{p}");
    assert_eq!(p["data"]["status"], "approved", "{p}");
    assert_eq!(
        r.emu.charges(&r.d.backend_id("lp-late")),
        (1, 1),
        "charged once"
    );
}

#[test]
fn a_version_3_reader_has_no_abort_and_the_cashier_is_told_to_cancel_on_the_reader() {
    let r = rig(&["--protocol-version", "3"]);
    let _pay = r.running_sale("lp-v3", 2595);
    let c = r.abort("lp-v3-c", "lp-v3", 2595);
    assert_eq!(
        (&c["error_type"], &c["reason"]),
        (&json!("default_error"), &json!("not_supported")),
        "{c}"
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("press cancel on the card reader"),
        "{c}"
    );
    assert!(!r.emu.log_text().contains("ABORT"), "nothing was sent");
}
