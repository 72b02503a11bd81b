//! Fuzzes the link frame decoder (`device::link`) with arbitrary bytes in arbitrary chunk
//! sizes: it must never panic, never hold more than its buffer bound, and every message it
//! accepts must keep the codec's round-trip property, the same one tests/link_props.rs checks
//! (tests/link_props/canonical.rs, included here by path): it re-encodes to the same message,
//! and to the very bytes it came from exactly when they were canonical (a v2 metadata block in
//! key order).
//! Run: `cargo +nightly fuzz run link_decoder` from the crate root.

#![no_main]

#[path = "../../tests/link_props/canonical.rs"]
mod canonical;

use libfuzzer_sys::fuzz_target;
// The one line to change in posbridge: `use posbridge::device::link;`
use posbridge::device::link;

use link::{BUFFER_CAPACITY, Decoder};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so reassembly across pushes (as with BLE
    // notifications or short serial reads) is fuzzed along with the frames themselves.
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new();
    for piece in link::chunks(stream, usize::from(first) + 1) {
        for frame in decoder.feed(piece).flatten() {
            if let Err(broken) = canonical::check_payload(frame.kind(), frame.payload()) {
                panic!("{broken}");
            }
        }
        assert!(decoder.buffered() <= BUFFER_CAPACITY);
    }
});
