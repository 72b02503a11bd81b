//! Fuzzes the reader's and display's messages (`device::link::Message::decode`): the first
//! input byte is the message type, the rest its payload. Invariants: no panic; the codec's
//! round-trip property, the same one tests/link_props.rs checks (tests/link_props/canonical.rs,
//! included here by path): an accepted message re-encodes to the same message, and to the very
//! payload it came from exactly when that was canonical (a v2 metadata block in key order), and
//! a payload no frame can carry is refused by the encoder; it survives a whole frame round trip
//! (encode, decode); a card number in a result shows at most 10 digits; a password never shows
//! in Debug.

#![no_main]

mod common;
#[path = "../../tests/link_props/canonical.rs"]
mod canonical;

use libfuzzer_sys::fuzz_target;
use posbridge::device::link::{self, Decoder, MAX_PAYLOAD, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let message = match canonical::check_payload(kind, payload) {
        Ok(Some(message)) => message,
        Ok(None) => return,
        Err(broken) => panic!("{broken}"),
    };
    if payload.len() > MAX_PAYLOAD {
        return; // decodable, but no frame can carry it (the encoder refused: checked above)
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
