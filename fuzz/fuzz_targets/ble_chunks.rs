//! Fuzzes the BLE path of the link: how the host cuts what the session writes into BLE writes
//! (`device::ble::take_write_units`, then ATT-MTU chunks) and how the far end reassembles
//! notifications of any size into frames (`device::link::Decoder`).
//!
//! Input: byte 0 picks the MTU chunk size, byte 1 how the session splits its writes; the rest
//! is a list of records, each either a frame to send (type, flags, payload) or line noise.
//! Invariants: nothing the session wrote is lost, duplicated or reordered by the cutting; what
//! stays pending is less than one frame; every frame written travels as one write unit of its
//! own; and when the noise holds no start-marker byte, the far end gets exactly the frames
//! sent, in order. With markers in the noise (false starts), no panic and a bounded buffer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use posbridge::device::ble::take_write_units;
use posbridge::device::link::{
    self, BUFFER_CAPACITY, Decoder, Flags, Frame, MAX_FRAME_LEN, START_MARKER,
};

fuzz_target!(|data: &[u8]| {
    let [mtu, split, rest @ ..] = data else {
        return;
    };
    let mtu = usize::from(*mtu % 244) + 1; // ATT_MTU − 3 ranges over 20..=244 on real links
    let split = usize::from(*split) + 1;

    // The records: [tag, a, b, len, payload...]; tag bit 0 = noise, else a frame.
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    let mut noise_has_marker = false;
    let mut input = rest;
    while let [tag, a, b, len, tail @ ..] = input {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        input = next;
        if tag & 1 == 1 {
            noise_has_marker |= body.contains(&START_MARKER[0]);
            stream.extend_from_slice(body);
        } else {
            let frame = Frame::new(*a, *b, Flags(tag >> 1), body.to_vec()).expect("≤ 255 bytes");
            stream.extend_from_slice(&link::encode(&frame));
            sent.push(frame);
        }
    }

    // Host side: the session writes the stream in pieces of `split` bytes.
    let mut pending = Vec::new();
    let mut units: Vec<Vec<u8>> = Vec::new();
    for piece in stream.chunks(split) {
        pending.extend_from_slice(piece);
        units.extend(take_write_units(&mut pending));
        assert!(
            pending.len() < MAX_FRAME_LEN,
            "{} bytes held back",
            pending.len()
        );
    }
    let mut passed: Vec<u8> = units.concat();
    passed.extend_from_slice(&pending);
    assert_eq!(
        passed, stream,
        "write units lost, duplicated or reordered bytes"
    );
    if !noise_has_marker {
        // Every frame starts a write unit of its own and fills it.
        let encoded: Vec<Vec<u8>> = sent.iter().map(link::encode).collect();
        let whole: Vec<&Vec<u8>> = units.iter().filter(|u| encoded.contains(u)).collect();
        assert_eq!(whole.len(), encoded.len(), "a frame was not one write unit");
    }

    // Far side: each write arrives cut into MTU-sized pieces.
    let mut decoder = Decoder::new();
    let mut got = Vec::new();
    for unit in &units {
        for chunk in link::chunks(unit, mtu) {
            got.extend(decoder.feed(chunk).flatten());
            assert!(decoder.buffered() <= BUFFER_CAPACITY);
        }
    }
    if !noise_has_marker {
        assert_eq!(got, sent, "frames lost or changed between the two ends");
    }
});
