//! Golden tests for what link protocol version 2 added (docs/link-protocol.md §8): a payment
//! request with its details block, DUPLICATE and SHIFT_TOTALS. As in `golden.rs`, the bytes
//! were produced from the documented layout with Python's zlib.crc32, independently of this
//! code. Also: a version 1 payment request (no details block) still decodes, and a details
//! block that is cut short or carries an invalid byte is refused. Test code only.

use std::collections::BTreeMap;

use super::{
    encode, kind, Credentials, Currency, Decoder, Message, PayloadError, PaymentRequest,
    SaleDetails, ShiftTotals,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn sale_with_details() -> PaymentRequest {
    PaymentRequest {
        request_id: "pos-45".into(),
        amount: 1500,
        currency: Currency::new("RUB").unwrap(),
        primary_reference: None,
        credentials: Some(Credentials {
            login: "shop".into(),
            password: "s3cret".into(),
        }),
        details: Some(SaleDetails {
            sign_on_screen: true,
            email: Some("a@b.ru".into()),
            phone: None,
            recipient_inn: Some("7707083893".into()),
            metadata: BTreeMap::from([("OrderId".to_owned(), "12345".to_owned())]),
        }),
    }
}

fn goldens() -> Vec<(Message, u8, &'static str)> {
    vec![
        (
            Message::StartSale(sale_with_details()),
            16,
            "a5 5a 01 10 10 01 46 00 06 70 6f 73 2d 34 35 dc 05 00 00 00 00 00 00 52 55 42 \
             00 01 04 73 68 6f 70 06 73 33 63 72 65 74 01 01 06 61 40 62 2e 72 75 00 01 0a \
             37 37 30 37 30 38 33 38 39 33 01 07 4f 72 64 65 72 49 64 05 00 31 32 33 34 35 \
             9d 86 60 59",
        ),
        (
            Message::Duplicate {
                request_id: "pos-42".into(),
            },
            17,
            "a5 5a 01 11 1a 01 07 00 06 70 6f 73 2d 34 32 30 20 89 13",
        ),
        (
            Message::ShiftTotals(ShiftTotals {
                pay_count: 2,
                pay_total: 3500,
                refund_count: 1,
                refund_total: 500,
                cancel_count: 1,
                cancel_total: 1000,
            }),
            18,
            "a5 5a 01 12 1b 01 24 00 02 00 00 00 ac 0d 00 00 00 00 00 00 01 00 00 00 f4 01 \
             00 00 00 00 00 00 01 00 00 00 e8 03 00 00 00 00 00 00 6f f4 cb 78",
        ),
    ]
}

#[test]
fn version_2_messages_round_trip_through_golden_bytes() {
    for (message, seq, golden) in goldens() {
        let bytes = hex(golden);
        let frames: Vec<_> = Decoder::new().feed(&bytes).collect();
        assert_eq!(frames.len(), 1, "{message:?}");
        let frame = frames[0].clone().expect("golden frame decodes");
        assert_eq!(frame.seq(), seq);
        assert_eq!(Message::from_frame(&frame).as_ref(), Ok(&message));
        assert_eq!(
            encode(&message.to_frame(seq).unwrap()),
            bytes,
            "{message:?}"
        );
    }
    let kinds: Vec<u8> = goldens().iter().map(|(m, _, _)| m.kind()).collect();
    assert_eq!(
        kinds,
        [kind::START_SALE, kind::DUPLICATE, kind::SHIFT_TOTALS]
    );
}

#[test]
fn a_version_1_payment_request_still_decodes_without_details() {
    // The version 1 START_SALE golden of docs/link-protocol.md §13.
    let v1 = hex("06 70 6f 73 2d 34 32 39 30 00 00 00 00 00 00 49 4e 52 00 00");
    let Message::StartSale(req) = Message::decode(kind::START_SALE, &v1).unwrap() else {
        panic!("not a sale")
    };
    assert_eq!(req.details, None);
    assert_eq!(Message::StartSale(req).encode_payload().unwrap(), v1);
}

#[test]
fn a_damaged_details_block_is_refused() {
    let full = Message::StartSale(sale_with_details())
        .encode_payload()
        .unwrap();
    // Cut inside the metadata value.
    assert_eq!(
        Message::decode(kind::START_SALE, &full[..full.len() - 2]),
        Err(PayloadError::Truncated { field: "metadata" })
    );
    // sign_on_screen is a presence byte: 0 or 1.
    let at = 32; // after request_id, amount, currency, reference and credentials
    assert_eq!(full[at], 1, "the sign_on_screen byte");
    let mut bad = full.clone();
    bad[at] = 7;
    assert_eq!(
        Message::decode(kind::START_SALE, &bad),
        Err(PayloadError::InvalidByte {
            field: "sign_on_screen",
            value: 7
        })
    );
    let mut trailing = full;
    trailing.push(0);
    assert_eq!(
        Message::decode(kind::START_SALE, &trailing),
        Err(PayloadError::TrailingBytes { count: 1 })
    );
}

#[test]
fn debug_output_of_a_version_2_request_never_shows_the_password() {
    let shown = format!("{:?}", Message::StartSale(sale_with_details()));
    assert!(
        shown.contains("7707083893") && !shown.contains("s3cret"),
        "{shown}"
    );
}
