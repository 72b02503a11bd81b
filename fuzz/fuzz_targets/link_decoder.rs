//! Fuzzes the link frame decoder (`device::link`) with arbitrary bytes in arbitrary chunk
//! sizes: it must never panic, never hold more than its buffer bound, and every message it
//! accepts must re-encode to exactly the payload it came from.
//! Run: `cargo +nightly fuzz run link_decoder` from the crate root.

#![no_main]

use libfuzzer_sys::fuzz_target;
// The one line to change in posbridge: `use posbridge::device::link;`
use posbridge::device::link;

use link::{BUFFER_CAPACITY, Decoder, Message};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so reassembly across pushes (as with BLE
    // notifications or short serial reads) is fuzzed along with the frames themselves.
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new();
    for piece in link::chunks(stream, usize::from(first) + 1) {
        for frame in decoder.feed(piece).flatten() {
            if let Ok(message) = Message::from_frame(&frame) {
                assert_eq!(message.kind(), frame.kind());
                assert_eq!(message.encode_payload().as_deref(), Ok(frame.payload()));
            }
        }
        assert!(decoder.buffered() <= BUFFER_CAPACITY);
    }
});
