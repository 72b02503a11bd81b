//! Sales as the document shows them: approved with the full receipt, the status-9 decline, a
//! refusal before the bank, amounts (asked, charged, tip, cashback and surcharge as sent), refunds, lost answers, a slow terminal, a
//! killed daemon, forged answers and a request_id reused after the journal forgot it.

use super::*;

#[test]
fn approve_decline_refund_and_no_cancel() {
    let t = rig(&[]);
    let sale = t.pay("sale-ok", 1000);
    assert_approved(&sale);
    let data = &sale["data"];
    assert!(
        data["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("CP"),
        "{sale}"
    );
    assert_eq!(data["amount"], 1000);
    assert_eq!(data["card"]["scheme"], "MASTERCARD");
    assert_eq!(data["card"]["masked_pan"], "************1166", "{sale}");
    // mchOrderNo is the operation's own backend id, not derived from the request_id.
    let no = data["mch_order_no"].as_str().unwrap();
    assert!(no.len() == 29 && no.starts_with('P'), "{sale}");
    assert_eq!(t.orders_of("sale-ok")[0].0, no);
    assert_eq!(t.charges("sale-ok"), 1);
    assert_eq!(t.order("sale-ok")["status"], 2);

    // The document's decline: status 9 with retCode and resCode both SUCCESS.
    let declined = t.pay("sale-declined", 1051);
    assert_error(&declined, "default_error", "declined");
    assert!(
        declined["message"]
            .as_str()
            .unwrap()
            .contains("Transaction Not Completed 05"),
        "{declined}"
    );
    assert_eq!(t.order("sale-declined")["status"], 9);

    // "error occurs before sending request to the bank": refused, nothing charged.
    let refused = t.pay("sale-offline", 1052);
    assert_error(&refused, "default_error", "declined");
    assert!(
        refused["message"].as_str().unwrap().contains("offline"),
        "{refused}"
    );

    let refund = t.refund("refund-1", 400, data);
    assert_eq!(refund["code"], 0, "{refund}");
    assert_eq!(refund["data"]["status"], "refunded");
    let refund_no = refund["data"]["mch_refund_no"].as_str().unwrap().to_owned();
    assert!(
        refund_no.starts_with('R') && refund_no.len() == 29,
        "{refund}"
    );
    assert_eq!(t.refund_calls(&refund_no), 1);
    assert_eq!(t.order("sale-ok")["refunded"], 400);
    let too_much = t.refund("refund-2", 700, data);
    assert_error(&too_much, "default_error", "declined");
    assert!(
        too_much["message"].as_str().unwrap().contains("exceeds"),
        "{too_much}"
    );
    assert_eq!(t.order("sale-ok")["refunded"], 400);

    let cancel =
        t.d.request(json!({"action": "cancel", "request_id": "cancel-1",
                                    "amount": 1000, "primary_transaction": data}));
    assert_error(&cancel, "default_error", "not_supported");
    assert_eq!(t.r.requests()["/v1/create_order"], 3);
    t.assert_no_secret();
}

#[test]
fn a_paid_sale_carries_the_receipt_and_what_was_charged() {
    let t = rig(&[]);
    let sale = t.pay("receipt-1", 1000);
    assert_approved(&sale);
    let receipt = &sale["data"]["receipt"];
    for key in [
        "emvLabel",
        "emvAID",
        "emvTVR",
        "emvTSI",
        "emvTC",
        "termNum",
        "bankTermNum",
        "termInvoiceNum",
        "seqNum",
        "authNum",
        "batchNum",
        "cardType",
        "cardNum",
        "receiptDisp",
        "trxDate",
        "trxTime",
        "cvmResults",
        "payOrderId",
    ] {
        assert!(
            receipt[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {sale}"
        );
    }
    assert_eq!(receipt["cardNum"], "************1166");
    // The order of `data` is part of the answer (tests/golden.rs covers the sim only).
    assert_eq!(
        crate::common::keys_of(&sale["data"]),
        crate::common::approved_keys(
            "charged_amount currency provider_reference approval_code card mch_order_no receipt"
        ),
        "{sale}"
    );
    assert!(receipt.get("expireDate").is_none(), "{sale}");
    // The expiry date (the terminal sends "1022") is nowhere in the answer.
    assert!(!sale.to_string().contains("\"1022\""), "{sale}");
    // `amount` is what the POS asked; `charged_amount` what IOT Pay says it charged.
    assert_eq!(sale["data"]["amount"], 1000);
    assert_eq!(sale["data"]["charged_amount"], 1000, "{sale}");
    assert!(sale["data"].get("requested_amount").is_none(), "{sale}");

    // The terminal added a tip (an integer beside payOrder.amount), cashback "10.00" and a
    // surcharge "0.50" (strings of a unit the document never gives): the tip is told, the
    // other two are kept exactly as sent, and no total is claimed that would leave them out.
    let tipped = t.pay("receipt-tip", 1071);
    assert_approved(&tipped);
    let d = &tipped["data"];
    assert_eq!(d["amount"], 1071, "{tipped}");
    assert!(d.get("charged_amount").is_none(), "{tipped}");
    assert!(d.get("requested_amount").is_none(), "{tipped}");
    assert_eq!(d["tip"], 200);
    assert_eq!(d["cashback_amount_raw"], "10.00");
    assert_eq!(d["surcharge_amount_raw"], "0.50");
    assert!(
        d.get("cashback").is_none() && d.get("surcharge").is_none(),
        "{tipped}"
    );
    assert_eq!(d["receipt"]["cashbackAmount"], "10.00");
    assert_eq!(d["receipt"]["tip"], 200);
    // get_result gives the same answer.
    let again =
        t.d.request(json!({"action": "get_result", "request_id": "receipt-tip"}));
    assert_eq!(again["data"], tipped["data"]);
    t.assert_no_secret();
}

#[test]
fn faults_before_create_order_acts_are_not_processed() {
    let t = rig(&[]);
    for (i, kind) in ["error", "drop", "timeout", "garbage"].iter().enumerate() {
        t.r.arm(json!({"path": "/v1/create_order", "kind": kind, "after": false}));
        let id = format!("before-{kind}");
        let a = t.pay(&id, 1000 + i as u64);
        // A create_order that timed out leaves too little of the request's time for the
        // "no such order" window: the reconciler finishes it.
        let a = if a["error_type"] == "unknown_result_error" {
            t.settled(&id, Duration::from_secs(10))
        } else {
            a
        };
        assert_error(&a, "default_error", "not_processed");
        assert!(t.order(&id).is_null(), "{kind}");
    }
    t.assert_no_secret();
}

#[test]
fn lost_answers_after_the_charge_are_found_by_query_order() {
    let t = rig(&[]);
    for kind in ["error", "drop", "timeout", "garbage"] {
        t.r.arm(json!({"path": "/v1/create_order", "kind": kind, "after": true}));
        let id = format!("after-{kind}");
        let started = Instant::now();
        let a = t.pay(&id, 1200);
        assert_approved(&a);
        eprintln!(
            "{kind} after the charge: approved in {:?}",
            started.elapsed()
        );
        assert_eq!(t.charges(&id), 1, "{kind}: exactly one create_order");
    }
    // A slow backend within the timeout is simply slower.
    t.r.arm(json!({"path": "/v1/create_order", "kind": "slow", "delay_ms": 500}));
    assert_approved(&t.pay("slow-ok", 1300));
    assert_eq!(t.r.requests()["/v1/create_order"], 5);
    assert!(t.r.requests()["/v1/query_order"].as_u64().unwrap() >= 4);
    t.assert_no_secret();
}

#[test]
fn a_terminal_slower_than_the_timeout_is_reconciled() {
    let t = rig_with(KEY, &[("slow_ms", "3000")], "timeout_ms = 1000");
    // The first status checks get garbage: still unknown, never lost.
    t.r.arm(json!({"path": "/v1/query_order", "kind": "garbage", "count": 5}));
    let started = Instant::now();
    let first = t.pay("slow-sale", 2093);
    assert_error(&first, "unknown_result_error", "timeout");
    eprintln!("first answer after {:?}", started.elapsed());
    let last = t.settled("slow-sale", Duration::from_secs(15));
    assert_approved(&last);
    eprintln!("reconciled after {:?}", started.elapsed());
    assert_eq!(t.charges("slow-sale"), 1);
    t.assert_no_secret();
}

#[test]
fn kill9_with_a_sale_in_flight_charges_once() {
    let mut t = rig_with(KEY, &[("slow_ms", "2500")], "timeout_ms = 5000");
    let socket = t.d.socket.clone();
    let pos = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.write_all(b"{\"action\":\"pay\",\"request_id\":\"crash-sale\",\"amount\":3093}\n")
            .unwrap();
        // The daemon dies before answering: EOF or a reset, never an answer.
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    });
    // Kill the daemon while the terminal is busy with the sale (status 1, paying).
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.order("crash-sale")["status"] != 1 {
        assert!(Instant::now() < deadline, "create_order never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.order("crash-sale")["status"], 1, "the terminal is busy");
    t.d.kill9();
    assert!(
        pos.join().unwrap().is_empty(),
        "no answer from a killed daemon"
    );
    t.d.restart();
    let a = t.settled("crash-sale", Duration::from_secs(15));
    assert_approved(&a);
    // Recovery asked for the stored backend id, the one the order was created under.
    assert_eq!(
        a["data"]["mch_order_no"],
        t.orders_of("crash-sale")[0].0.as_str()
    );
    assert_eq!(t.charges("crash-sale"), 1);
    assert_eq!(t.r.requests()["/v1/create_order"], 1);
    assert!(t.d.log().contains("crash-sale"));
    t.assert_no_secret();
}

#[test]
fn a_bad_response_signature_is_never_approved() {
    let mut t = rig(&[("response_key", "forged-key")]);
    let first = t.pay("forged", 1000);
    assert_error(&first, "unknown_result_error", "bad_signature");
    std::thread::sleep(Duration::from_millis(1000));
    let still =
        t.d.request(json!({"action": "get_result", "request_id": "forged"}));
    assert_eq!(still["error_type"], "unknown_result_error", "{still}");
    assert!(t.d.log().contains("signature failed"));
    assert_eq!(t.charges("forged"), 1);
    // The backend answers honestly again: the real outcome arrives, still one charge.
    let addr = t.r.addr().to_owned();
    let state = t.r.state.clone();
    t.r.kill();
    t.r = Replica::start_at(&state, &addr, "iotpay", KEY, &with_mch(&[]));
    let last = t.settled("forged", Duration::from_secs(10));
    assert_approved(&last);
    assert_eq!(t.charges("forged"), 1);
    t.assert_no_secret();
}

#[test]
fn a_request_id_reused_after_the_journal_forgot_it_is_a_new_sale() {
    let t = rig_full(KEY, &[], "[journal]\ncapacity = 2", "");
    let first = t.pay("till3-0042", 1000);
    assert_approved(&first);
    assert_approved(&t.pay("other-1", 1100));
    assert_approved(&t.pay("other-2", 1200));
    let gone =
        t.d.request(json!({"action": "get_result", "request_id": "till3-0042"}));
    assert_eq!(gone["error_type"], "result_not_found_error", "{gone}");
    // The same request_id the next day: a new order, charged once, with its own answer.
    let second = t.pay("till3-0042", 2000);
    assert_approved(&second);
    assert_eq!(second["data"]["amount"], 2000, "{second}");
    assert_ne!(
        second["data"]["mch_order_no"],
        first["data"]["mch_order_no"]
    );
    assert_ne!(
        second["data"]["provider_reference"],
        first["data"]["provider_reference"]
    );
    let orders = t.orders_of("till3-0042");
    assert_eq!(orders.len(), 2);
    let calls = t.r.state()["calls"].clone();
    for (no, _) in &orders {
        assert_eq!(calls[no], 1, "{no}: charged once");
    }
    t.assert_no_secret();
}

#[test]
fn a_lost_refund_answer_waits_for_a_manual_check_and_is_never_resent() {
    let t = rig(&[]);
    let sale = t.pay("sale-m", 1000);
    assert_approved(&sale);
    t.r.arm(json!({"path": "/v1/refund_order", "kind": "error", "after": true}));
    let first = t.refund("refund-m", 300, &sale["data"]);
    // No refund query exists, so get_result can never settle it: the LIFE POS contract gives
    // unknown_result_error only where it can, so this is a default_error (still open).
    assert_error(&first, "default_error", "manual_check");
    let refund_no = t.r.state()["refunds"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(
        first["message"].as_str().unwrap().contains(&refund_no),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let still =
        t.d.request(json!({"action": "get_result", "request_id": "refund-m"}));
    assert_eq!(still, first, "{still}");
    let status = t.d.request(json!({"action": "status"}));
    assert_eq!(
        status["data"]["journal"]["unknown"], 1,
        "still open: {status}"
    );
    assert_eq!(t.refund_calls(&refund_no), 1, "never re-sent");
    assert_eq!(t.order("sale-m")["refunded"], 300);
    t.assert_no_secret();
}
