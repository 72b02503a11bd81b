//! Fuzzes the reader's and display's messages (`device::link::Message::decode`): the first
//! input byte is the message type, the rest its payload. Invariants: no panic; an accepted
//! message re-encodes to its canonical payload (the same bytes, or for v2 metadata the sorted,
//! de-duplicated map) that decodes to the same message, and survives a whole frame round trip (encode,
//! decode); a card number in a result shows at most 10 digits; a password never shows in Debug.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use posbridge::device::link::{self, Decoder, MAX_PAYLOAD, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let Ok(message) = Message::decode(kind, payload) else {
        return;
    };
    assert_eq!(message.kind(), kind);
    if payload.len() > MAX_PAYLOAD {
        // Decodable, but no frame can carry it: encoding must refuse, not truncate.
        assert!(message.encode_payload().is_err());
        return;
    }
    // Re-encoding gives the canonical form of what was decoded: the same bytes, except that a
    // version 2 details block's metadata is a map (keys sorted, a repeated key kept once), so
    // the canonical bytes must decode to the same message.
    let canonical = message.encode_payload().expect("a decoded message re-encodes");
    if canonical != payload {
        assert_eq!(Message::decode(kind, &canonical).as_ref(), Ok(&message));
    }
    match &message {
        Message::SaleResult(r) => {
            if let Some(pan) = &r.masked_pan {
                common::assert_masked("SaleResult.masked_pan", pan);
            }
        }
        Message::StartSale(r) | Message::StartRefund(r) | Message::StartCancel(r) => {
            if r.credentials.is_some() {
                let shown = format!("{message:?}");
                assert!(shown.contains("<redacted>"), "credentials shown: {shown}");
            }
        }
        _ => {}
    }
    let frame = message
        .to_frame(7)
        .expect("an encodable message makes a frame");
    let bytes = link::encode(&frame);
    let got: Vec<_> = Decoder::new().feed(&bytes).collect();
    assert_eq!(got.len(), 1);
    let back = got[0].as_ref().expect("our own frame passes its CRC");
    assert_eq!(Message::from_frame(back).as_ref(), Ok(&message));
});
