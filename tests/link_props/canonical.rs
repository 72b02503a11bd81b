//! The link codec's round-trip property, written once: tests/link_props.rs checks it over
//! generated messages and payloads, and the fuzz targets fuzz/fuzz_targets/link_decoder.rs and
//! link_messages.rs include this file by path and check it over whatever libFuzzer finds. It
//! uses only the codec's public API (`device::link`), and must stay free of test or fuzz
//! machinery so both can include it.
//!
//! The property (docs/link-protocol.md §8):
//!
//! 1. For every message `m` the encoder accepts, `decode(kind(m), encode(m)) == m`.
//! 2. For every payload `b` that `decode(k, b)` accepts as `m`: `m.kind() == k`; `encode(m)` is
//!    accepted (when `b` fits a frame; if `b` is longer than MAX_PAYLOAD the encoder must
//!    refuse rather than truncate); it has the length of `b`, decodes to `m` again, and is
//!    **byte for byte `b` exactly when `b` is canonical**.
//!
//! Canonical: the layout leaves a sender one freedom only, the order of a version 2 details
//! block's metadata entries (a map: the reader may send them in any order, keys unique). A
//! payload is canonical when it is not a START_SALE/START_REFUND/START_CANCEL with a details
//! block, or when that block's metadata keys are in strictly ascending order of their UTF-8
//! bytes (the order the encoder writes them). Every other field has exactly one encoding:
//! fixed-width integers, presence and enum bytes with one value per meaning (NAK reasons
//! included: the encoder refuses `Other` with a defined code), lengths that must match, no
//! trailing bytes. The metadata keys are found here by walking the layout of §8 directly, not
//! through the decoder, so a decoder that reordered or dropped entries would be caught.

// Each includer uses a part of it.
#![allow(dead_code)]

use posbridge::device::link::{kind, Message, MAX_PAYLOAD};

/// Property 1 for one message. `Ok` also when the encoder refuses `m` (invalid messages are
/// another test's business); `Err` says what broke.
pub fn check_message(m: &Message) -> Result<(), String> {
    let Ok(bytes) = m.encode_payload() else {
        return Ok(());
    };
    match Message::decode(m.kind(), &bytes) {
        Ok(back) if back == *m => Ok(()),
        other => Err(format!(
            "decode(encode(m)) != m: m = {m:?}, bytes = {bytes:02x?}, decoded = {other:?}"
        )),
    }
}

/// Property 2 for one payload: the decoded message when `decode` accepts it, `None` when it
/// refuses it (a refusal is always allowed here), `Err` when the property is broken.
pub fn check_payload(k: u8, payload: &[u8]) -> Result<Option<Message>, String> {
    let Ok(m) = Message::decode(k, payload) else {
        return Ok(None);
    };
    if m.kind() != k {
        return Err(format!("type {k:#04x} decoded as {:#04x}", m.kind()));
    }
    let encoded = m.encode_payload();
    if payload.len() > MAX_PAYLOAD {
        return match encoded {
            Err(_) => Ok(Some(m)),
            Ok(_) => Err(format!(
                "a {}-byte payload re-encoded although no frame can carry it",
                payload.len()
            )),
        };
    }
    let again = encoded.map_err(|e| format!("a decoded message does not re-encode: {e}"))?;
    if again.len() != payload.len() {
        return Err(format!(
            "re-encoding changed the length: {payload:02x?} -> {again:02x?}"
        ));
    }
    match Message::decode(k, &again) {
        Ok(back) if back == m => {}
        other => {
            return Err(format!(
                "the re-encoding decodes to {other:?}, not {m:?} ({payload:02x?} -> {again:02x?})"
            ))
        }
    }
    let canonical = is_canonical(k, payload);
    if (again == payload) != canonical {
        return Err(format!(
            "canonical = {canonical} but re-encoding {} the payload: {payload:02x?} -> {again:02x?}",
            if again == payload { "kept" } else { "changed" }
        ));
    }
    Ok(Some(m))
}

/// Whether an accepted payload is canonical (see the module docs).
pub fn is_canonical(k: u8, payload: &[u8]) -> bool {
    match metadata_keys(k, payload) {
        Some(keys) => keys.windows(2).all(|pair| pair[0] < pair[1]),
        None => true,
    }
}

/// The metadata keys of a payment request's details block, in wire order; `None` when `k` is
/// not a START_* or the payload has no details block. Walks §8's layout by hand; meant for
/// payloads the decoder accepted, and never panics on others (it answers `None`).
pub fn metadata_keys(k: u8, payload: &[u8]) -> Option<Vec<&[u8]>> {
    if !matches!(
        k,
        kind::START_SALE | kind::START_REFUND | kind::START_CANCEL
    ) {
        return None;
    }
    let mut at = 0usize;
    let byte = |at: &mut usize| -> Option<u8> {
        let b = *payload.get(*at)?;
        *at += 1;
        Some(b)
    };
    let str8 = |at: &mut usize| -> Option<&[u8]> {
        let len = usize::from(*payload.get(*at)?);
        let s = payload.get(*at + 1..*at + 1 + len)?;
        *at += 1 + len;
        Some(s)
    };
    str8(&mut at)?; // request_id
    at += 8 + 3; // amount, currency
    if byte(&mut at)? == 1 {
        str8(&mut at)?; // primary_reference
    }
    if byte(&mut at)? == 1 {
        str8(&mut at)?; // login
        str8(&mut at)?; // password
    }
    if at >= payload.len() {
        return None; // version 1: no details block
    }
    at += 1; // sign_on_screen
    for _ in 0..3 {
        // email, phone, recipient_inn
        if byte(&mut at)? == 1 {
            str8(&mut at)?;
        }
    }
    let count = byte(&mut at)?;
    let mut keys = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        keys.push(str8(&mut at)?);
        let len = usize::from(u16::from_le_bytes([
            *payload.get(at)?,
            *payload.get(at + 1)?,
        ]));
        at += 2 + len;
    }
    Some(keys)
}
