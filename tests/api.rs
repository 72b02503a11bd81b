//! The socket contract (DESIGN.md §2) against the real daemon: outcomes, replay, duplicates.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Daemon};
use serde_json::{json, Value};

const LIFEPAY: &str = "ru.lifepay.checkout.payment_terminal.";

/// Sends one request and returns the raw response line.
fn raw(c: &mut Client, req: Value) -> String {
    c.line(&req.to_string())
}

fn send(c: &mut Client, req: Value) -> Value {
    let line = raw(c, req);
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

fn pay(c: &mut Client, id: &str, amount: u64) -> Value {
    let req = json!({"action": "pay", "request_id": id, "amount": amount});
    send(c, req)
}

fn get_raw(c: &mut Client, id: &str) -> String {
    raw(c, json!({"action": "get_result", "request_id": id}))
}

/// A refund or cancel of the pay whose `data` is `primary` (object or JSON string).
fn reverse(c: &mut Client, action: &str, id: &str, amount: u64, primary: &Value) -> Value {
    let req = json!({"action": action, "request_id": id, "amount": amount,
        "primary_transaction": primary});
    send(c, req)
}

/// Sends a request on `c` without reading its answer (it stays in flight on that connection).
fn start(c: &mut Client, req: Value) {
    c.send_raw(format!("{req}\n").as_bytes());
}

/// Polls get_result until the journal knows `id` (anything but not_found); returns that answer.
fn await_journaled(d: &Daemon, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = d.request(json!({"action": "get_result", "request_id": id}));
        if v["reason"] != "not_found" {
            return v;
        }
        assert!(Instant::now() < deadline, "{id} not journaled: {v}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_invalid(v: &Value, field: &str) {
    assert_eq!(v["code"], 1, "{v}");
    assert_eq!(v["error_type"], "default_error", "{v}");
    assert_eq!(v["reason"], "invalid_request", "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(msg.starts_with(&format!("{field}:")), "{field}: {v}");
}

/// Asserts an error answer: code, error_type, reason and the echoed request_id.
fn assert_error(v: &Value, code: i64, error_type: &str, reason: &str, id: &str) {
    let got = (&v["code"], &v["error_type"], &v["reason"], &v["request_id"]);
    let want = (json!(code), json!(error_type), json!(reason), json!(id));
    assert_eq!(got, (&want.0, &want.1, &want.2, &want.3), "{v}");
}

#[test]
fn pay_is_approved_and_get_result_replays_it_byte_for_byte() {
    let d = Daemon::start();
    let mut c = d.client();
    let pay = c.line(r#"{"action":"pay","request_id":"r-1","amount":100,"metadata":{"till":"7"}}"#);
    let v: serde_json::Value = serde_json::from_str(&pay).unwrap();
    assert_eq!(v["code"], 0, "{pay}");
    assert_eq!(v["data"]["status"], "approved");
    assert_eq!(v["data"]["amount"], 100);
    assert_eq!(v["metadata"]["till"], "7");
    let again = c.line(r#"{"action":"get_result","request_id":"r-1"}"#);
    assert_eq!(again, pay);
}

#[test]
fn amount_ending_in_91_is_unknown_then_reconciled_to_approved() {
    let d = Daemon::start();
    let first = d.request(json!({"action": "pay", "request_id": "t-91", "amount": 1091}));
    assert_eq!(first["error_type"], "unknown_result_error", "{first}");
    let later = d.await_result("t-91", Duration::from_secs(10), |v| v["code"] == 0);
    assert_eq!(later["data"]["status"], "approved", "{later}");
    assert_eq!(d.sim_calls("t-91"), 1);
}

#[test]
fn amount_ending_in_51_is_declined() {
    let d = Daemon::start();
    let v = pay(&mut d.client(), "dec-1", 2551);
    assert_error(&v, 1, "default_error", "declined", "dec-1");
    assert!(v.get("data").is_none(), "an error carries no data: {v}");
    assert_eq!(d.sim_calls("dec-1"), 1);
}

#[test]
fn get_result_of_a_declined_pay_replays_the_decline_byte_for_byte() {
    let d = Daemon::start();
    let mut c = d.client();
    let first = raw(
        &mut c,
        json!({"action": "pay", "request_id": "d2", "amount": 151}),
    );
    assert!(first.contains(r#""reason":"declined""#), "{first}");
    assert_eq!(get_raw(&mut c, "d2"), first);
}

#[test]
fn missing_request_id_is_generated_as_a_uuid_and_echoed() {
    let d = Daemon::start();
    let mut c = d.client();
    let line = raw(&mut c, json!({"action": "pay", "amount": 700}));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["code"], 0, "{line}");
    let id = v["request_id"].as_str().expect("a generated request_id");
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 4, "{id}");
    assert_eq!(v["data"]["request_id"], id, "{line}");
    assert_eq!(get_raw(&mut c, id), line, "the generated id finds it");
}

#[test]
fn metadata_is_echoed_on_success_and_on_error() {
    let d = Daemon::start();
    let mut c = d.client();
    let meta = json!({"till": "7", "cashier": "Anna Ö", "empty": ""});
    for (amount, code) in [(300, 0), (351, 1), (0, 1)] {
        let req = json!({"action": "pay", "amount": amount, "metadata": meta});
        let v = send(&mut c, req);
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["metadata"], meta, "amount {amount}: {v}");
    }
}

#[test]
fn get_result_is_in_progress_while_a_delayed_pay_runs_then_gives_the_final_answer() {
    let d = Daemon::start();
    let mut running = d.client();
    let req = json!({"action": "pay", "request_id": "slow-1", "amount": 400,
        "metadata": {"till": "3"}, "params": {"delay_ms": 1500}});
    start(&mut running, req);
    let v = await_journaled(&d, "slow-1");
    assert_error(&v, 2, "unknown_result_error", "in_progress", "slow-1");
    assert_eq!(v["metadata"]["till"], "3", "stored metadata echoed: {v}");
    let done = running.read_line().expect("the pay's answer");
    assert!(done.contains(r#""status":"approved""#), "{done}");
    assert_eq!(get_raw(&mut d.client(), "slow-1"), done);
}

#[test]
fn duplicate_request_id_is_refused_while_in_progress_and_after_completion() {
    let d = Daemon::start();
    let mut running = d.client();
    let req = json!({"action": "pay", "request_id": "dup-1", "amount": 500,
        "params": {"delay_ms": 1500}});
    start(&mut running, req);
    assert_eq!(await_journaled(&d, "dup-1")["reason"], "in_progress");
    let mut other = d.client();
    let during = pay(&mut other, "dup-1", 500);
    let dup = "duplicate_request";
    assert_error(&during, 3, &format!("{dup}_error"), dup, "dup-1");
    let original = running.read_line().expect("the pay's answer");
    let after = pay(&mut other, "dup-1", 999);
    assert_eq!(after["error_type"], "duplicate_request_error", "{after}");
    assert_eq!(d.sim_calls("dup-1"), 1, "the duplicates executed nothing");
    assert_eq!(get_raw(&mut other, "dup-1"), original);
}

#[test]
fn get_result_of_an_unknown_request_id_is_result_not_found() {
    let d = Daemon::start();
    let v = d.request(json!({"action": "get_result", "request_id": "never-sent"}));
    assert_error(&v, 4, "result_not_found_error", "not_found", "never-sent");
}

#[test]
fn partial_refunds_add_up_and_an_over_refund_is_refused() {
    let d = Daemon::start();
    let mut c = d.client();
    let data = pay(&mut c, "p-ref", 1000)["data"].clone();
    let first = reverse(&mut c, "refund", "ref-1", 300, &data);
    assert_eq!(first["code"], 0, "{first}");
    assert_eq!(first["data"]["operation"], "refund", "{first}");
    assert_eq!(first["data"]["status"], "refunded", "{first}");
    assert_eq!(first["data"]["amount"], 300, "{first}");
    assert_eq!(first["data"]["primary"]["request_id"], "p-ref", "{first}");
    // Lifepay clients pass the primary transaction as a JSON string.
    let second = reverse(&mut c, "refund", "ref-2", 500, &json!(data.to_string()));
    assert_eq!(second["data"]["status"], "refunded", "{second}");
    let over = reverse(&mut c, "refund", "ref-3", 201, &data);
    assert_invalid(&over, "amount");
    assert!(over["message"].as_str().unwrap().contains("200"), "{over}");
    let rest = reverse(&mut c, "refund", "ref-4", 200, &data);
    assert_eq!(rest["data"]["status"], "refunded", "{rest}");
}

#[test]
fn cancel_reverses_the_full_amount_with_primary_as_object_or_json_string() {
    let d = Daemon::start();
    let mut c = d.client();
    let a = pay(&mut c, "p-can-a", 800)["data"].clone();
    let b = pay(&mut c, "p-can-b", 900)["data"].clone();
    assert_invalid(&reverse(&mut c, "cancel", "can-0", 400, &a), "amount");
    for (id, primary, amount) in [
        ("can-a", a.clone(), 800),
        ("can-b", json!(b.to_string()), 900),
    ] {
        let v = reverse(&mut c, "cancel", id, amount, &primary);
        assert_eq!(v["code"], 0, "{v}");
        assert_eq!(v["data"]["operation"], "cancel", "{v}");
        assert_eq!(v["data"]["status"], "cancelled", "{v}");
        assert_eq!(v["data"]["amount"], amount, "{v}");
    }
    let again = reverse(&mut c, "cancel", "can-a2", 800, &a);
    assert_eq!(again["code"], 1, "cancelled twice: {again}");
}

#[test]
fn cancel_after_a_refund_is_refused() {
    let d = Daemon::start();
    let mut c = d.client();
    let data = pay(&mut c, "p-rc", 1000)["data"].clone();
    let refund = reverse(&mut c, "refund", "rc-ref", 100, &data);
    assert_eq!(refund["code"], 0, "{refund}");
    let cancel = reverse(&mut c, "cancel", "rc-can", 1000, &data);
    assert_invalid(&cancel, "amount");
    assert_eq!(d.sim_calls("rc-can"), 0, "a refused cancel moves no money");
}

#[test]
fn close_shift_totals_match_the_sales_made() {
    let d = Daemon::start();
    let mut c = d.client();
    let first = pay(&mut c, "s-1", 1000)["data"].clone();
    let second = pay(&mut c, "s-2", 2000)["data"].clone();
    pay(&mut c, "s-3", 450);
    assert_eq!(pay(&mut c, "s-4", 551)["reason"], "declined");
    assert_eq!(reverse(&mut c, "refund", "s-r", 300, &first)["code"], 0);
    assert_eq!(reverse(&mut c, "cancel", "s-c", 2000, &second)["code"], 0);
    let line = raw(
        &mut c,
        json!({"action": "close_shift", "request_id": "sh-1"}),
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["code"], 0, "{line}");
    let s = &v["data"];
    assert_eq!(s["shift_number"], 1, "{line}");
    assert_eq!(s["pay"], json!({"count": 3, "total": 3450}), "{line}");
    assert_eq!(s["refund"], json!({"count": 1, "total": 300}), "{line}");
    assert_eq!(s["cancel"], json!({"count": 1, "total": 2000}), "{line}");
    assert_eq!(s["net"], 1150, "{line}");
    assert_eq!(get_raw(&mut c, "sh-1"), line);
    let next = send(
        &mut c,
        json!({"action": "close_shift", "request_id": "sh-2"}),
    );
    assert_eq!(next["data"]["shift_number"], 2, "{next}");
    let zero = json!({"count": 0, "total": 0});
    assert_eq!(next["data"]["pay"], zero, "{next}");
    assert_eq!(next["data"]["net"], 0, "{next}");
}

/// The transaction a LIFE POS answer carries: `data` is a JSON string (document 003).
fn contract_data(v: &Value) -> Value {
    let text = v["data"]
        .as_str()
        .unwrap_or_else(|| panic!("data not a string: {v}"));
    serde_json::from_str(text).unwrap()
}

#[test]
fn every_lifepay_alias_is_accepted() {
    let d = Daemon::start();
    let mut c = d.client();
    let alias = |name: &str| format!("{LIFEPAY}{name}");
    let pay_alias = alias("transaction.pay");
    let a = send(
        &mut c,
        json!({"action": pay_alias, "request_id": "lp-1", "amount": 600}),
    );
    assert_eq!(a["action"], pay_alias.as_str(), "{a}");
    assert_eq!(contract_data(&a)["operation"], "pay", "{a}");
    let b = send(
        &mut c,
        json!({"action": pay_alias, "request_id": "lp-2", "amount": 700}),
    );
    let get_alias = alias("transaction.get_result");
    let get = json!({"action": get_alias, "request_id": "lp-1"});
    let got = send(&mut c, get);
    assert_eq!(got["data"], a["data"], "get_result alias replays");
    assert_eq!(got["action"], get_alias.as_str());
    // The POS hands back the `data` string it got.
    let refund = reverse(
        &mut c,
        &alias("transaction.refund"),
        "lp-r",
        100,
        &a["data"],
    );
    assert_eq!(contract_data(&refund)["operation"], "refund", "{refund}");
    let cancel_alias = alias("transaction.cancel");
    let cancel = reverse(&mut c, &cancel_alias, "lp-c", 700, &b["data"]);
    assert_eq!(contract_data(&cancel)["operation"], "cancel", "{cancel}");
    let close = json!({"action": alias("close_shift"), "request_id": "lp-s"});
    let shift = contract_data(&send(&mut c, close));
    assert_eq!(shift["operation"], "close_shift", "{shift}");
    assert_eq!(shift["pay"]["count"], 2, "{shift}");
    let bad = json!({"action": alias("transaction.status"), "amount": 1});
    let bad = send(&mut c, bad);
    assert_eq!(bad["error_type"], "default_error", "{bad}");
    assert_eq!(bad["log"], "reason: invalid_request", "{bad}");
    assert!(
        bad["message"].as_str().unwrap().starts_with("action:"),
        "{bad}"
    );
    // The v1 names keep the v1 shape: `data` an object, no `action`.
    let v1 = send(
        &mut c,
        json!({"action": "get_result", "request_id": "lp-1"}),
    );
    assert_eq!(v1["data"], contract_data(&a), "{v1}");
    assert!(v1.get("action").is_none(), "{v1}");
}

#[test]
fn status_counts_journal_entries_and_operations_in_flight() {
    let d = Daemon::start();
    let mut c = d.client();
    let empty = send(&mut c, json!({"action": "status"}));
    assert_eq!(empty["data"]["journal"]["entries"], 0, "{empty}");
    assert_eq!(empty["data"]["journal"]["capacity"], 500, "{empty}");
    pay(&mut c, "st-1", 100);
    pay(&mut c, "st-2", 151);
    pay(&mut c, "st-3", 300);
    let mut running = d.client();
    let req = json!({"action": "pay", "request_id": "st-4", "amount": 100,
        "params": {"delay_ms": 2000}});
    start(&mut running, req);
    await_journaled(&d, "st-4");
    let v = send(&mut c, json!({"action": "status", "request_id": "st-q"}));
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["request_id"], "st-q", "{v}");
    let j = &v["data"]["journal"];
    assert_eq!(j["entries"], 4, "{v}");
    assert_eq!(j["in_flight"], 1, "{v}");
    assert_eq!(j["unknown"], 0, "{v}");
    running.read_line().expect("the slow pay's answer");
    let after = send(&mut c, json!({"action": "status"}));
    assert_eq!(after["data"]["journal"]["in_flight"], 0, "{after}");
    assert_eq!(after["data"]["journal"]["entries"], 4, "{after}");
}

#[test]
fn results_lists_newest_first_and_honours_limit() {
    let d = Daemon::start();
    let mut c = d.client();
    for (i, amount) in [100, 151, 300, 400, 500].into_iter().enumerate() {
        pay(&mut c, &format!("res-{i}"), amount);
    }
    let v = send(&mut c, json!({"action": "results", "limit": 3}));
    let list = v["data"]["results"].as_array().expect("data.results");
    let ids: Vec<&str> = list
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["res-4", "res-3", "res-2"], "{v}");
    assert_eq!(list[0]["action"], "pay", "{v}");
    assert_eq!(list[0]["state"], "final", "{v}");
    assert_eq!(list[0]["response"]["data"]["amount"], 500, "{v}");
    let all = send(&mut c, json!({"action": "results"}));
    let all = all["data"]["results"].as_array().unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[3]["response"]["reason"], "declined", "res-1");
    assert_eq!(all[4]["request_id"], "res-0");
}

#[test]
fn provider_not_configured_is_provider_unavailable() {
    let d = Daemon::start();
    let req = json!({"action": "pay", "request_id": "pp-1", "amount": 100, "provider": "phonepe"});
    let v = d.request(req);
    assert_error(&v, 1, "default_error", "provider_unavailable", "pp-1");
    let later = d.request(json!({"action": "get_result", "request_id": "pp-1"}));
    assert_eq!(later["reason"], "not_found", "not journaled: {later}");
}

#[test]
fn unknown_provider_name_is_invalid_request_naming_provider() {
    let d = Daemon::start();
    let req = json!({"action": "pay", "request_id": "px-1", "amount": 100, "provider": "visa-x"});
    let v = d.request(req);
    assert_invalid(&v, "provider");
    assert!(v["message"].as_str().unwrap().contains("visa-x"), "{v}");
    assert_eq!(v["request_id"], "px-1", "{v}");
}
