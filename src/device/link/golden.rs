//! Golden tests for every message kind (bytes -> frame -> message -> frame -> bytes) and for the
//! payload checks that refuse malformed input. The expected bytes were produced from the layout
//! in docs/link-protocol.md with an independent CRC-32 (Python's zlib.crc32), so they pin the
//! wire format itself, not merely this code's agreement with itself. Test code only.

use super::{
    encode, kind, Credentials, Currency, Decoder, Hello, Message, NakReason, Outcome, PayloadError,
    PaymentRequest, Role, SaleResult,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn inr() -> Currency {
    Currency::new("INR").unwrap()
}

fn request(id: &str, amount: u64, currency: &str) -> PaymentRequest {
    PaymentRequest {
        request_id: id.into(),
        amount,
        currency: Currency::new(currency).unwrap(),
        primary_reference: None,
        credentials: None,
        details: None,
    }
}

fn approved() -> SaleResult {
    SaleResult {
        request_id: "pos-42".into(),
        outcome: Outcome::Approved,
        rrn: Some("123456789012".into()),
        approval_code: Some("A1B2C3".into()),
        masked_pan: Some("411111******1111".into()),
        scheme: Some("VISA".into()),
        message: "Approved".into(),
    }
}

fn goldens() -> Vec<(Message, u8, &'static str)> {
    let refund = PaymentRequest {
        primary_reference: Some("123456789012".into()),
        credentials: Some(Credentials {
            login: "shop".into(),
            password: "s3cret".into(),
        }),
        ..request("pos-43", 500, "EUR")
    };
    let cancel = PaymentRequest {
        primary_reference: Some("RRN1".into()),
        ..request("pos-44", 500, "RUB")
    };
    let id = |s: &str| s.to_string();
    vec![
        (
            Message::Ack { seq: 7 },
            7,
            "a5 5a 01 07 01 00 01 00 07 2b d1 68 95",
        ),
        (
            Message::Nak {
                seq: 7,
                reason: NakReason::BadCrc,
            },
            7,
            "a5 5a 01 07 02 00 02 00 07 01 ca 93 0d 9d",
        ),
        (
            Message::Hello(Hello {
                protocol_version: 1,
                role: Role::CardReader,
                model: "QPOS-mini".into(),
                firmware: "2.4.1".into(),
                serial: "SN0001".into(),
            }),
            0,
            "a5 5a 01 00 03 01 19 00 01 01 09 51 50 4f 53 2d 6d 69 6e 69 05 32 2e 34 2e 31 \
             06 53 4e 30 30 30 31 57 a9 08 0d",
        ),
        (Message::KeepAlive, 1, "a5 5a 01 01 04 01 00 00 0d 87 b6 78"),
        (
            Message::StartSale(request("pos-42", 12345, "INR")),
            2,
            "a5 5a 01 02 10 01 14 00 06 70 6f 73 2d 34 32 39 30 00 00 00 00 00 00 49 4e 52 \
             00 00 02 f9 9f f3",
        ),
        (
            Message::StartRefund(refund),
            3,
            "a5 5a 01 03 11 01 2d 00 06 70 6f 73 2d 34 33 f4 01 00 00 00 00 00 00 45 55 52 \
             01 0c 31 32 33 34 35 36 37 38 39 30 31 32 01 04 73 68 6f 70 06 73 33 63 72 65 74 \
             13 c6 18 45",
        ),
        (
            Message::StartCancel(cancel),
            4,
            "a5 5a 01 04 12 01 19 00 06 70 6f 73 2d 34 34 f4 01 00 00 00 00 00 00 52 55 42 \
             01 04 52 52 4e 31 00 08 fe 9d e7",
        ),
        (
            Message::SaleResult(approved()),
            5,
            "a5 5a 01 05 13 01 40 00 06 70 6f 73 2d 34 32 01 01 0c 31 32 33 34 35 36 37 38 39 \
             30 31 32 01 06 41 31 42 32 43 33 01 10 34 31 31 31 31 31 2a 2a 2a 2a 2a 2a 31 31 \
             31 31 01 04 56 49 53 41 08 00 41 70 70 72 6f 76 65 64 04 cd 44 e1",
        ),
        (
            Message::GetResult {
                request_id: id("pos-42"),
            },
            6,
            "a5 5a 01 06 14 01 07 00 06 70 6f 73 2d 34 32 45 0f 7f 39",
        ),
        (
            Message::ResultNotFound {
                request_id: id("pos-99"),
            },
            7,
            "a5 5a 01 07 15 01 07 00 06 70 6f 73 2d 39 39 2f 3b 28 41",
        ),
        (
            Message::Busy {
                request_id: id("pos-42"),
            },
            8,
            "a5 5a 01 08 16 01 07 00 06 70 6f 73 2d 34 32 9a 65 22 88",
        ),
        (
            Message::InProgress {
                request_id: id("pos-42"),
            },
            9,
            "a5 5a 01 09 17 01 07 00 06 70 6f 73 2d 34 32 35 f6 09 d2",
        ),
        (
            Message::CloseShift,
            10,
            "a5 5a 01 0a 18 01 00 00 3b 5e a9 15",
        ),
        (
            Message::ShiftSummary {
                count: 3,
                total: 15000,
            },
            11,
            "a5 5a 01 0b 19 01 0c 00 03 00 00 00 98 3a 00 00 00 00 00 00 35 c8 6f 03",
        ),
        (
            Message::ShowQr {
                payload: id("upi://pay?pa=shop@bank&am=123.45"),
            },
            12,
            "a5 5a 01 0c 20 01 22 00 20 00 75 70 69 3a 2f 2f 70 61 79 3f 70 61 3d 73 68 6f 70 \
             40 62 61 6e 6b 26 61 6d 3d 31 32 33 2e 34 35 a5 a7 c7 c9",
        ),
        (
            Message::ShowAmount {
                amount: 12345,
                currency: inr(),
            },
            13,
            "a5 5a 01 0d 21 01 0b 00 39 30 00 00 00 00 00 00 49 4e 52 62 22 a8 b4",
        ),
        (
            Message::ShowStatus { text: id("Paid") },
            14,
            "a5 5a 01 0e 22 01 06 00 04 00 50 61 69 64 8b e1 dc 9c",
        ),
        (Message::Clear, 15, "a5 5a 01 0f 23 01 00 00 eb ae 63 fa"),
    ]
}

#[test]
fn every_message_kind_round_trips_through_golden_bytes() {
    let all = goldens();
    let mut kinds: Vec<u8> = all.iter().map(|(m, _, _)| m.kind()).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), 18, "one golden per message kind");
    for (message, seq, golden) in all {
        let bytes = hex(golden);
        let frames: Vec<_> = Decoder::new().feed(&bytes).collect();
        assert_eq!(frames.len(), 1, "{message:?}");
        let frame = frames[0].clone().expect("golden frame decodes");
        assert_eq!(frame.seq(), seq);
        assert_eq!(frame.flags().ack_requested(), message.needs_ack());
        assert_eq!(Message::from_frame(&frame).as_ref(), Ok(&message));
        assert_eq!(
            encode(&message.to_frame(seq).unwrap()),
            bytes,
            "{message:?}"
        );
    }
}

#[test]
fn debug_output_never_shows_the_password() {
    let (refund, _, _) = &goldens()[5];
    let shown = format!("{refund:?}");
    assert!(
        shown.contains("shop") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

fn decode_err(kind: u8, payload: &[u8]) -> PayloadError {
    Message::decode(kind, payload).expect_err("payload must be refused")
}

#[test]
fn malformed_payloads_are_refused_with_typed_errors() {
    assert_eq!(decode_err(0x7F, &[]), PayloadError::UnknownType(0x7F));
    assert_eq!(
        decode_err(kind::KEEPALIVE, &[0]),
        PayloadError::TrailingBytes { count: 1 }
    );
    assert_eq!(
        decode_err(kind::ACK, &[]),
        PayloadError::Truncated { field: "seq" }
    );
    assert_eq!(
        decode_err(kind::HELLO, &[1, 9, 0, 0, 0]),
        PayloadError::InvalidByte {
            field: "role",
            value: 9
        }
    );
    let mut sale = hex("06 70 6f 73 2d 34 32 39 30 00 00 00 00 00 00 69 6e 72 00 00");
    assert!(matches!(
        decode_err(kind::START_SALE, &sale),
        PayloadError::Invalid {
            field: "currency",
            ..
        }
    ));
    sale[7..15].copy_from_slice(&[0; 8]);
    sale[15..18].copy_from_slice(b"INR");
    assert!(matches!(
        decode_err(kind::START_SALE, &sale),
        PayloadError::Invalid {
            field: "amount",
            ..
        }
    ));
    assert!(matches!(
        decode_err(kind::GET_RESULT, &hex("03 61 20 62")),
        PayloadError::Invalid {
            field: "request_id",
            ..
        }
    ));
    assert!(matches!(
        decode_err(kind::GET_RESULT, &[0]),
        PayloadError::Invalid {
            field: "request_id",
            ..
        }
    ));
    assert!(matches!(
        decode_err(kind::SHOW_QR, &[0, 0]),
        PayloadError::Invalid {
            field: "payload",
            ..
        }
    ));
    assert_eq!(
        decode_err(kind::SHOW_STATUS, &[5, 0, b'a']),
        PayloadError::Truncated { field: "text" }
    );
}

#[test]
fn an_unmasked_card_number_is_refused_both_ways() {
    let full = SaleResult {
        masked_pan: Some("4111111111111111".into()),
        ..approved()
    };
    let err = Message::SaleResult(full.clone()).to_frame(1).unwrap_err();
    assert!(matches!(
        err,
        PayloadError::Invalid {
            field: "masked_pan",
            ..
        }
    ));
    // Build the bytes by hand, as a faulty reader would, and check the decoder refuses them.
    let masked = Message::SaleResult(approved()).encode_payload().unwrap();
    let pan_at = masked.windows(6).position(|w| w == b"411111").unwrap();
    let mut leaked = masked.clone();
    leaked[pan_at + 6..pan_at + 12].copy_from_slice(b"111111");
    assert!(matches!(
        decode_err(kind::SALE_RESULT, &leaked),
        PayloadError::Invalid {
            field: "masked_pan",
            ..
        }
    ));
}

#[test]
fn oversized_messages_are_refused_at_encode() {
    let qr = Message::ShowQr {
        payload: "x".repeat(super::MAX_PAYLOAD),
    };
    assert_eq!(
        qr.to_frame(0).unwrap_err(),
        PayloadError::TooLarge {
            len: super::MAX_PAYLOAD + 2
        }
    );
    let fits = Message::ShowQr {
        payload: "x".repeat(super::MAX_PAYLOAD - 2),
    };
    assert!(fits.to_frame(0).is_ok());
    let long_model = Message::Hello(Hello {
        protocol_version: 1,
        role: Role::Host,
        model: "m".repeat(300),
        firmware: String::new(),
        serial: String::new(),
    });
    assert!(matches!(
        long_model.to_frame(0),
        Err(PayloadError::TooLong { field: "model", .. })
    ));
}

#[test]
fn unknown_nak_reasons_are_kept_not_refused() {
    let nak = Message::decode(kind::NAK, &[3, 0x42]).unwrap();
    assert_eq!(
        nak,
        Message::Nak {
            seq: 3,
            reason: NakReason::Other(0x42)
        }
    );
}
