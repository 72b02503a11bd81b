//! Readings of IOT Pay answers (the document's own samples among them), the receipt, and when
//! "no such order" becomes final; no network.

use serde_json::{json, Map, Value};

use super::answer::{evidence, read_order, read_refund, Call, NotRefunded, Reading};
use super::receipt::{charged, is_zero, order_extra};
use super::*;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// The document's "Result Sample", verbatim: status 9 with retCode and resCode both SUCCESS.
fn document_result_sample() -> Map<String, Value> {
    map(json!({
      "resCode": "SUCCESS", "retCode": "SUCCESS", "retParams": "",
      "payOrderId": "CP20210922192314685200722249", "mchOrderNo": "1632338577033",
      "retDetail": "",
      "payOrder": {
        "userName": "testpax", "storeId": "ixm329sgr",
        "payOrderId": "CP20210922192314685200722249", "mchId": "10000576",
        "mchOrderNo": "1632338577033", "transId": "", "originalOrderId": "",
        "channelId": "CC_PAX", "currency": "CAD", "amount": 1, "tip": 0, "rate": 0,
        "payType": "pay", "refundable": 1, "clientIp": "192.168.50.186", "deviceId": "V1-B25",
        "deviceType": "", "notifyUrl": "http://localhost", "subject": "IOTPay", "body": "IOTPay",
        "param1": "", "param2": "",
        "extra": "{\"cardType\":\" \",\"cardNum\":\"\",\"expireDate\":\"    \",\"emvLabel\":\"\",\"emvAID\":\"\",\"emvTVR\":\"\",\"emvTSI\":\"\",\"emvTC\":\"\",\"termNum\":\"25957\",\"bankTermNum\":\"40880013\",\"termInvoiceNum\":\"167339\",\"seqNum\":\"000000000000\",\"authNum\":\"\",\"batchNum\":\"0000\",\"trxMethod\":\"\",\"accountType\":\"\",\"receiptDisp\":\"Transaction Not Completed 05\",\"cashbackAmount\":\"\",\"timeStamp\":\"20210922-15231494\",\"surchargeAmount\":\"\",\"langCode\":\"E\",\"trxDate\":\"\",\"trxTime\":\"\",\"cvmResults\":\"\",\"trxCode\":\"00\"}",
        "channelOrderNo": "", "status": 9, "remarks": "", "rateValue": 0, "trxAmount": 0,
        "costAmount": 0, "currencyAmount": 0, "paySuccTime": "", "createDate": 1632338594000_u64,
        "updateDate": 1632338599000_u64
      },
      "sign": "EA86BEEBE37C8C8F8A8E88C080D5E241"
    }))
}

/// The document's paid `extra` example, verbatim.
const DOCUMENT_PAID_EXTRA: &str = "{\"cardType\":\"M\",\"cardNum\":\"XXXXXXXXXXXX1166\",\"expireDate\":\"1022\",\"emvLabel\":\"MASTERCARD\",\"emvAID\":\"A0000000041010\",\"emvTVR\":\"0000008000\",\"emvTSI\":\"0000\",\"emvTC\":\"ARQC: 3D36ACBD44BE512B\",\"termNum\":\"25957\",\"bankTermNum\":\"40880013\",\"termInvoiceNum\":\"724172\",\"seqNum\":\"000001000061\",\"authNum\":\"01046Z\",\"batchNum\":\"0008\",\"trxMethod\":\"T\",\"accountType\":\"\",\"receiptDisp\":\"000 Approved 00 Thank You\",\"cashbackAmount\":\"\",\"timeStamp\":\"20210120-19402057\",\"surchargeAmount\":\"\",\"langCode\":\"E\",\"trxDate\":\"01202021\",\"trxTime\":\"164033\",\"cvmResults\":\"1F0302\",\"trxCode\":\"00\"}";

fn paid(status: u64) -> Map<String, Value> {
    let mut m = document_result_sample();
    m["payOrder"]["status"] = json!(status);
    m["payOrder"]["extra"] = json!(DOCUMENT_PAID_EXTRA);
    m
}

const OURS: &str = "1632338577033";

#[test]
fn the_documents_status_9_sample_is_a_decline_with_its_receipt_text() {
    for call in [Call::Create, Call::Query] {
        let Reading::Declined(f) = read_order(&document_result_sample(), call, OURS) else {
            panic!("status 9 with both codes SUCCESS is a decline")
        };
        assert_eq!(f.reason, "declined");
        assert!(f.message.contains("Transaction Not Completed 05"), "{f:?}");
    }
}

#[test]
fn a_paid_order_carries_the_whole_receipt_masked() {
    for status in [2, 3] {
        let Reading::Paid(a) = read_order(&paid(status), Call::Create, OURS) else {
            panic!("status {status} is paid")
        };
        assert_eq!(
            a.provider_reference.as_deref(),
            Some("CP20210922192314685200722249")
        );
        assert_eq!(a.approval_code.as_deref(), Some("01046Z"));
        let card = a.card.unwrap();
        assert_eq!(card.masked_pan, "************1166");
        assert_eq!(card.scheme.as_deref(), Some("MASTERCARD"));
        let receipt = a.extra["receipt"].as_object().unwrap();
        for (k, v) in [
            ("emvLabel", "MASTERCARD"),
            ("emvAID", "A0000000041010"),
            ("emvTVR", "0000008000"),
            ("emvTSI", "0000"),
            ("emvTC", "ARQC: 3D36ACBD44BE512B"),
            ("termNum", "25957"),
            ("termInvoiceNum", "724172"),
            ("batchNum", "0008"),
            ("seqNum", "000001000061"),
            ("authNum", "01046Z"),
            ("cardType", "M"),
            ("cardNum", "************1166"),
            ("receiptDisp", "000 Approved 00 Thank You"),
            ("trxDate", "01202021"),
            ("trxTime", "164033"),
            ("cvmResults", "1F0302"),
        ] {
            assert_eq!(receipt[k], v, "{k}");
        }
        assert!(!receipt.contains_key("expireDate"), "never the expiry date");
        assert!(
            !receipt.contains_key("accountType"),
            "blank values are left out"
        );
        assert_eq!(a.charged_amount, Some(1));
    }
    // A full card number from the terminal is masked wherever it goes.
    let mut m = paid(2);
    m["payOrder"]["extra"] = json!(json!({"cardNum": "5413330089010434"}).to_string());
    let Reading::Paid(a) = read_order(&m, Call::Query, OURS) else {
        panic!()
    };
    assert_eq!(a.extra["receipt"]["cardNum"], "541333******0434");
    assert!(!format!("{a:?}").contains("5413330089010434"));
}

#[test]
fn the_tip_is_charged_cashback_and_surcharge_are_kept_as_sent() {
    // A tip (an integer beside payOrder.amount): charged_amount is the sum.
    let mut m = paid(2);
    m["payOrder"]["amount"] = json!(1000);
    m["payOrder"]["tip"] = json!(150);
    let Reading::Paid(a) = read_order(&m, Call::Create, OURS) else {
        panic!()
    };
    assert_eq!(a.charged_amount, Some(1000 + 150));
    assert_eq!(a.extra["tip"], 150);
    // Cashback and a surcharge: strings of a unit the document never gives. Kept exactly as
    // sent, never converted, and no total is claimed that leaves them out.
    m["payOrder"]["extra"] =
        json!(json!({"cashbackAmount": "20.00", "surchargeAmount": "0.5"}).to_string());
    let Reading::Paid(a) = read_order(&m, Call::Create, OURS) else {
        panic!()
    };
    assert_eq!(a.charged_amount, None, "{a:?}");
    assert_eq!(a.extra["cashback_amount_raw"], "20.00");
    assert_eq!(a.extra["surcharge_amount_raw"], "0.5");
    assert!(a.extra.get("cashback").is_none() && a.extra.get("surcharge").is_none());
    // Zero in any unit is zero: the total stands.
    m["payOrder"]["extra"] =
        json!(json!({"cashbackAmount": "0.00", "surchargeAmount": "0"}).to_string());
    let Reading::Paid(a) = read_order(&m, Call::Create, OURS) else {
        panic!()
    };
    assert_eq!(a.charged_amount, Some(1150));
    assert!(is_zero("0.00") && is_zero(".0") && !is_zero("0.01") && !is_zero("1"));
    let none = map(json!({"extra": ""}));
    assert_eq!(charged(&none, &order_extra(&none)), None);
}

#[test]
fn a_query_order_answer_with_the_order_at_the_top_level_is_read() {
    let mut flat = paid(2)["payOrder"].as_object().unwrap().clone();
    flat.insert("retCode".into(), json!("SUCCESS"));
    flat.insert("resCode".into(), json!("SUCCESS"));
    let Reading::Paid(a) = read_order(&flat, Call::Query, OURS) else {
        panic!("{:?}", read_order(&flat, Call::Query, OURS))
    };
    assert_eq!(a.approval_code.as_deref(), Some("01046Z"));
    assert!(evidence(&flat, Call::Query, OURS).is_some());
    // Only when it names our order: another number, or none, is not ours.
    for no in [json!("someone-else"), Value::Null] {
        let mut other = flat.clone();
        other.insert("mchOrderNo".into(), no.clone());
        assert!(
            matches!(
                read_order(&other, Call::Query, OURS),
                Reading::Unrecognised(_)
            ),
            "{no}"
        );
        assert_eq!(evidence(&other, Call::Query, OURS), None);
    }
}

#[test]
fn evidence_is_an_answer_that_carries_our_order() {
    let what = evidence(&paid(1), Call::Create, OURS).unwrap();
    assert!(
        what.contains("create_order") && what.contains("status 1"),
        "{what}"
    );
    assert!(evidence(&document_result_sample(), Call::Query, OURS).is_some());
    let refusal = map(json!({"retCode": "FAIL", "resCode": "FAIL", "retMsg": "x"}));
    assert_eq!(evidence(&refusal, Call::Create, OURS), None);
    let mut not_ours = paid(2);
    not_ours["payOrder"]["mchOrderNo"] = json!("someone-else");
    assert_eq!(evidence(&not_ours, Call::Query, OURS), None);
}

#[test]
fn unknown_shapes_and_failed_questions_are_never_final() {
    let both_ok_no_order = map(json!({"retCode": "SUCCESS", "resCode": "SUCCESS"}));
    let odd_codes = map(json!({"retCode": "OK", "resCode": "SUCCESS", "payOrder": {"status": 4}}));
    let mut paid_but_fail = paid(2);
    paid_but_fail["resCode"] = json!("FAIL");
    let mut not_ours = paid(2);
    not_ours["payOrder"]["mchOrderNo"] = json!("someone-else");
    let mut not_ours_top = paid(2);
    not_ours_top["payOrder"]
        .as_object_mut()
        .unwrap()
        .remove("mchOrderNo");
    not_ours_top["mchOrderNo"] = json!("someone-else");
    let mut no_status = paid(2);
    no_status["payOrder"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    for (what, m) in [
        ("both SUCCESS, no payOrder", both_ok_no_order),
        ("unknown codes", odd_codes),
        ("paid status with resCode FAIL", paid_but_fail),
        ("another order", not_ours),
        ("another order, top level", not_ours_top),
        ("no status", no_status),
    ] {
        for call in [Call::Create, Call::Query] {
            assert!(
                matches!(read_order(&m, call, OURS), Reading::Unrecognised(_)),
                "{what} {call:?}"
            );
        }
    }
    // A business failure of query_order is only a failed question.
    let busy = map(json!({"retCode": "SUCCESS", "resCode": "FAIL", "retMsg": "system busy"}));
    assert_eq!(
        read_order(&busy, Call::Query, OURS),
        Reading::Refused("system busy".into())
    );
    // A status query_order cannot call final keeps the sale open; create_order's own answer
    // with both SUCCESS and such a status is the document's "error occurs".
    let mut five = paid(5);
    five["payOrder"]["extra"] = json!("");
    assert!(matches!(
        read_order(&five, Call::Query, OURS),
        Reading::Pending(_)
    ));
    assert!(matches!(
        read_order(&five, Call::Create, OURS),
        Reading::Declined(_)
    ));
    // create_order SUCCESS with status 0 or 1: the document's "error occurs", never a
    // charge; followed with query_order.
    for status in [0, 1] {
        let Reading::Pending(s) = read_order(&paid(status), Call::Create, OURS) else {
            panic!("status {status}")
        };
        assert!(s.contains("error occurs"), "{s}");
    }
}

#[test]
fn not_found_and_refusals_are_told_apart() {
    for msg in ["order does not exist", "Order not found"] {
        let m = map(json!({"retCode": "SUCCESS", "resCode": "FAIL", "retMsg": msg}));
        assert_eq!(
            read_order(&m, Call::Query, OURS),
            Reading::NotFound,
            "{msg}"
        );
    }
    let m = map(json!({"retCode": "SUCCESS", "resCode": "FAIL", "errCode": "ORDER_NOT_EXIST"}));
    assert_eq!(read_order(&m, Call::Query, OURS), Reading::NotFound);
    // About the merchant, not the order: never "nothing was charged".
    for msg in ["mchId does not exist", "merchant not found"] {
        let m = map(json!({"retCode": "FAIL", "resCode": "FAIL", "retMsg": msg}));
        assert!(
            matches!(read_order(&m, Call::Query, OURS), Reading::Refused(_)),
            "{msg}"
        );
    }
    // A refusal's words are never read for a meaning: "refused" holds "used".
    for msg in [
        "mchOrderNo already exists",
        "duplicate mchOrderNo",
        "Transaction refused",
    ] {
        let m = map(json!({"retCode": "FAIL", "retMsg": msg}));
        assert_eq!(
            read_order(&m, Call::Create, OURS),
            Reading::Refused(msg.into()),
            "{msg}"
        );
    }
    let m = map(json!({"retCode": "FAIL", "resCode": "FAIL", "retMsg": "POS terminal offline"}));
    assert!(matches!(
        read_order(&m, Call::Create, OURS),
        Reading::Refused(_)
    ));
}

#[test]
fn refund_answers() {
    let ok = map(
        json!({"retCode": "SUCCESS", "resCode": "SUCCESS", "refundOrder": {
        "refundOrderId": "R1", "mchRefundNo": "Rabc", "status": 2}}),
    );
    let a = read_refund(&ok).unwrap();
    assert_eq!(a.status, "refunded");
    assert_eq!(a.provider_reference.as_deref(), Some("R1"));
    let no =
        map(json!({"retCode": "SUCCESS", "resCode": "FAIL", "retMsg": "refund amount exceeds"}));
    let Err(NotRefunded::Failed(f)) = read_refund(&no) else {
        panic!("refused")
    };
    assert!(f.message.contains("refund amount exceeds"));
    let dup = map(json!({"retCode": "FAIL", "retMsg": "mchRefundNo already exists"}));
    assert!(matches!(read_refund(&dup), Err(NotRefunded::Unknown(_))));
    let odd = map(json!({"retCode": "SUCCESS"}));
    assert!(matches!(read_refund(&odd), Err(NotRefunded::Unknown(_))));
}

fn provider(extra: &str) -> IotPay {
    let cfg: IotPayConfig = toml::from_str(&format!(
        "base_url = \"http://127.0.0.1:9\"\nmch_id = \"1\"\nkey = \"k\"\njob_no = \"j\"\n\
         currency = \"CAD\"\n{extra}"
    ))
    .unwrap();
    IotPay::new(&cfg).unwrap()
}

fn op(age: time::Duration) -> Operation {
    use time::format_description::well_known::Rfc3339;
    Operation {
        request_id: "r".into(),
        kind: OpKind::Pay,
        provider: "iotpay".into(),
        amount: Some(100),
        currency: "CAD".into(),
        metadata: Default::default(),
        params: Default::default(),
        primary: None,
        created_at: (crate::clock::now() - age).format(&Rfc3339).unwrap(),
        backend_id: "P0123456789abcdef0123456789ab".into(),
        progress: Default::default(),
        stages: Default::default(),
    }
}

fn is_final(o: &Outcome) -> bool {
    match o {
        Outcome::NotFound(f) => {
            assert_eq!(f.reason, "not_processed");
            true
        }
        Outcome::Unknown(_) => false,
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_such_order_counts_from_the_end_of_the_create_order_wait() {
    let p = provider("timeout_ms = 90000\nstatus_poll_ms = [50]\n");
    assert_eq!(
        p.not_found_final,
        Duration::from_secs(60),
        "the document's minute"
    );
    let o = op(time::Duration::minutes(10));
    let no = mch_order_no(&o);
    // The wait ended just now in this process: an old sale is still not final.
    p.watching(&no, |w| w.create_ended = Some(Instant::now()));
    assert!(!is_final(&p.not_found(&o, &no)));
    // A minute after the wait ended, and a minute of "no such order": final.
    let long_ago = Instant::now() - Duration::from_secs(61);
    p.watching(&no, |w| {
        w.create_ended = Some(long_ago);
        w.not_found_since = Some(long_ago);
    });
    assert!(is_final(&p.not_found(&o, &no)));
}

#[test]
fn after_a_restart_the_wait_is_taken_to_end_as_late_as_it_could() {
    let mut p = provider("timeout_ms = 90000\n");
    // Up 2 min: the wait may have lasted until 90 s + margin after start, so not a minute
    // later yet.
    p.started = Instant::now() - Duration::from_secs(120);
    let o = op(time::Duration::seconds(120));
    let no = mch_order_no(&o);
    p.watching(&no, |w| {
        w.not_found_since = Some(Instant::now() - Duration::from_secs(300))
    });
    assert!(!is_final(&p.not_found(&o, &no)));
    // Up 3 min, and a minute of "no such order" since the restart: final.
    p.started = Instant::now() - Duration::from_secs(180);
    assert!(is_final(&p.not_found(&o, &no)));
    // ... but never on the first "no such order" after a restart.
    p.forget(&no);
    assert!(!is_final(&p.not_found(&o, &no)));
}

#[test]
fn a_wall_clock_step_never_ends_the_window_early() {
    // The sale's created_at says a day ago or 1970 (the clock stepped since): the window
    // still counts from this process's start, on the monotonic clock.
    let p = provider("timeout_ms = 90000\n");
    for age in [time::Duration::days(1), time::Duration::days(20_000)] {
        let o = op(age);
        let no = mch_order_no(&o);
        p.watching(&no, |w| {
            w.not_found_since = Some(Instant::now() - Duration::from_secs(300))
        });
        assert!(!is_final(&p.not_found(&o, &no)), "created {age} ago");
    }
}

#[test]
fn an_order_seen_before_is_a_contradiction_at_once() {
    // Seen in this process: "no such order" is handed to the engine at once, as NotFound,
    // which it weighs against the evidence (unknown, `contradiction`); the window does not
    // apply.
    let p = provider(
        "not_found_final_ms = 600000
",
    );
    let o = op(time::Duration::hours(1));
    let no = mch_order_no(&o);
    p.watching(&no, |w| {
        w.create_ended = Some(Instant::now());
        w.seen = true;
    });
    assert!(is_final(&p.not_found(&o, &no)));
    // Journaled before a restart (a fresh process has seen nothing): the same.
    let p = provider(
        "not_found_final_ms = 600000
",
    );
    let mut o = op(time::Duration::hours(1));
    o.progress.insert(
        crate::provider::progress::EVIDENCE.into(),
        json!({"what": "create_order answered with order CP1 (status 1)"}),
    );
    assert!(is_final(&p.not_found(&o, &no)));
    // Without evidence, the same fresh process waits its window.
    let p = provider(
        "not_found_final_ms = 600000
",
    );
    assert!(!is_final(&p.not_found(&op(time::Duration::hours(1)), &no)));
}

mod shapes {
    //! Over many answer shapes: nothing is acted on as an order that was not witnessed first.
    use super::*;
    use proptest::prelude::*;

    fn code() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("SUCCESS")),
            Just(json!("FAIL")),
            Just(Value::Null),
            Just(json!("OK"))
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(OURS)),
            Just(json!("someone-else")),
            Just(Value::Null)
        ]
    }

    fn status() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..12).prop_map(|s| json!(s)),
            Just(json!("2")),
            Just(Value::Null)
        ]
    }

    fn answer() -> impl Strategy<Value = Map<String, Value>> {
        (
            code(),
            code(),
            prop::option::of((status(), number())),
            number(),
            prop::option::of(status()),
            prop_oneof![
                Just("Transaction refused"),
                Just("order does not exist"),
                Just("mchOrderNo already exists")
            ],
        )
            .prop_map(|(ret, res, order, top_no, top_status, msg)| {
                let mut m = map(json!({"retCode": ret, "resCode": res, "retMsg": msg,
                    "mchOrderNo": top_no}));
                if let Some((status, no)) = order {
                    m.insert(
                        "payOrder".into(),
                        json!({"status": status, "mchOrderNo": no, "amount": 100,
                               "payOrderId": "CP1", "extra": DOCUMENT_PAID_EXTRA}),
                    );
                }
                if let Some(status) = top_status {
                    m.insert("status".into(), status);
                    m.insert("amount".into(), json!(100));
                }
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn every_reading_that_acts_on_an_order_has_witnessed_it(
            m in answer(),
            create in any::<bool>(),
        ) {
            let call = if create { Call::Create } else { Call::Query };
            let reading = read_order(&m, call, OURS);
            let shown = evidence(&m, call, OURS);
            if matches!(reading, Reading::Paid(_) | Reading::Declined(_) | Reading::Pending(_)) {
                prop_assert!(shown.is_some(), "{reading:?} without evidence: {m:?}");
            }
            if matches!(reading, Reading::NotFound | Reading::Refused(_)) {
                prop_assert!(shown.is_none(), "{reading:?} with evidence {shown:?}: {m:?}");
            }
            // Never approved unless both codes are SUCCESS and the status is 2 or 3.
            if let Reading::Paid(_) = reading {
                prop_assert!(m["retCode"] == "SUCCESS" && m["resCode"] == "SUCCESS");
            }
        }
    }
}
