//! Golden tests for what link protocol version 3 added (docs/link-protocol.md §8):
//! GET_RESULT_WINDOW and RESULT_WINDOW. As in `golden.rs`, the bytes were produced from the
//! documented layout with Python's zlib.crc32, independently of this code. Also: a window that
//! breaks its rules (store 0, oldest above next), is cut short or has bytes left over is
//! refused, and GET_RESULT_WINDOW carries nothing. Test code only.

use super::{encode, kind, Decoder, Message, PayloadError, ResultWindow};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
        .collect()
}

fn window() -> ResultWindow {
    ResultWindow {
        store: 0x1122_3344_5566_7788,
        oldest: 1000,
        next: 1500,
    }
}

fn goldens() -> Vec<(Message, u8, &'static str)> {
    vec![
        (
            Message::GetResultWindow,
            19,
            "a5 5a 01 13 1c 01 00 00 9f 3c 3b f7",
        ),
        (
            Message::ResultWindow(window()),
            20,
            "a5 5a 01 14 1d 01 18 00 88 77 66 55 44 33 22 11 e8 03 00 00 00 00 00 00 \
             dc 05 00 00 00 00 00 00 a1 ba f8 63",
        ),
    ]
}

#[test]
fn version_3_messages_round_trip_through_golden_bytes() {
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
    assert_eq!(kinds, [kind::GET_RESULT_WINDOW, kind::RESULT_WINDOW]);
}

#[test]
fn a_window_that_breaks_its_rules_is_refused_both_ways() {
    let full = Message::ResultWindow(window()).encode_payload().unwrap();
    assert_eq!(
        Message::decode(kind::RESULT_WINDOW, &full[..23]),
        Err(PayloadError::Truncated { field: "next" })
    );
    let mut trailing = full.clone();
    trailing.push(0);
    assert_eq!(
        Message::decode(kind::RESULT_WINDOW, &trailing),
        Err(PayloadError::TrailingBytes { count: 1 })
    );
    let no_store = ResultWindow {
        store: 0,
        ..window()
    };
    let mut zero = full.clone();
    zero[..8].fill(0);
    for got in [
        Message::decode(kind::RESULT_WINDOW, &zero).map(|_| ()),
        Message::ResultWindow(no_store).encode_payload().map(|_| ()),
    ] {
        assert!(
            matches!(got, Err(PayloadError::Invalid { field: "store", .. })),
            "{got:?}"
        );
    }
    let inverted = ResultWindow {
        oldest: 1501,
        ..window()
    };
    let got = Message::ResultWindow(inverted).encode_payload();
    assert!(
        matches!(
            got,
            Err(PayloadError::Invalid {
                field: "oldest",
                ..
            })
        ),
        "{got:?}"
    );
    // Nothing held: oldest == next is a valid window.
    let empty = ResultWindow {
        oldest: 1500,
        ..window()
    };
    let bytes = Message::ResultWindow(empty).encode_payload().unwrap();
    assert_eq!(
        Message::decode(kind::RESULT_WINDOW, &bytes),
        Ok(Message::ResultWindow(empty))
    );
    assert_eq!(
        Message::decode(kind::GET_RESULT_WINDOW, &[0]),
        Err(PayloadError::TrailingBytes { count: 1 })
    );
}
