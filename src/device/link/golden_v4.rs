//! Golden test for what link protocol version 4 added (docs/link-protocol.md §8): STAGE, for
//! progress, and ABORT, on the host's side. As in `golden.rs`, the bytes were produced from
//! the documented layout with Python's zlib.crc32, independently of this code. Also: a stage
//! code the protocol does not define, a payload cut short or with bytes left over, an ABORT
//! whose request_id breaks the id rules, are refused. Test code only.

use super::{encode, kind, Decoder, Message, PayloadError, ReaderStage};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

#[test]
fn stage_round_trips_through_golden_bytes() {
    let message = Message::Stage {
        request_id: "pos-42".into(),
        stage: ReaderStage::CardRead,
    };
    let bytes = hex("a5 5a 01 15 1e 01 08 00 06 70 6f 73 2d 34 32 01 f3 6c 7b b1");
    let frames: Vec<_> = Decoder::new().feed(&bytes).collect();
    assert_eq!(frames.len(), 1);
    let frame = frames[0].clone().expect("golden frame decodes");
    assert_eq!((frame.seq(), frame.kind()), (21, kind::STAGE));
    assert_eq!(Message::from_frame(&frame), Ok(message.clone()));
    assert_eq!(encode(&message.to_frame(21).unwrap()), bytes);
    for stage in [
        ReaderStage::CardRead,
        ReaderStage::PinEntry,
        ReaderStage::Authorising,
    ] {
        assert_eq!(ReaderStage::from_code(stage.code()), Ok(stage));
    }
}

#[test]
fn a_stage_the_protocol_does_not_define_or_a_bad_length_is_refused() {
    let mut payload = Message::Stage {
        request_id: "pos-42".into(),
        stage: ReaderStage::Authorising,
    }
    .encode_payload()
    .unwrap();
    assert_eq!(payload.last(), Some(&3));
    *payload.last_mut().unwrap() = 4;
    assert_eq!(
        Message::decode(kind::STAGE, &payload),
        Err(PayloadError::InvalidByte {
            field: "stage",
            value: 4
        })
    );
    *payload.last_mut().unwrap() = 0;
    assert!(Message::decode(kind::STAGE, &payload).is_err());
    assert!(Message::decode(kind::STAGE, &payload[..payload.len() - 1]).is_err());
    payload.push(0);
    assert!(Message::decode(kind::STAGE, &payload).is_err());
}

#[test]
fn abort_round_trips_through_golden_bytes() {
    let message = Message::Abort {
        request_id: "pos-42".into(),
    };
    let bytes = hex("a5 5a 01 15 1f 01 07 00 06 70 6f 73 2d 34 32 0d b7 d8 61");
    let frames: Vec<_> = Decoder::new().feed(&bytes).collect();
    assert_eq!(frames.len(), 1);
    let frame = frames[0].clone().expect("golden frame decodes");
    assert_eq!((frame.seq(), frame.kind()), (21, kind::ABORT));
    assert_eq!(Message::from_frame(&frame).as_ref(), Ok(&message));
    assert_eq!(encode(&message.to_frame(21).unwrap()), bytes);
}

#[test]
fn an_abort_without_a_valid_request_id_is_refused() {
    assert!(matches!(
        Message::decode(kind::ABORT, &[]),
        Err(PayloadError::Truncated { .. })
    ));
    let bad = Message::Abort {
        request_id: "no spaces".into(),
    };
    assert!(bad.encode_payload().is_err());
    assert!(Message::decode(kind::ABORT, &[2, b'a', b' ']).is_err());
}
