//! Property tests of the link frame codec (`device::link`): every message survives
//! encode/decode, no byte stream in any chunking can panic the decoder or grow its buffer past
//! its bound, and valid frames are recovered from between garbage. They drive only the public
//! API, as the session layer does.

// The one line to change when this file moves into posbridge: `use posbridge::device::link;`
use posbridge::device::link;

use link::{
    encode, Credentials, Currency, Decoder, Frame, Hello, Message, NakReason, Outcome,
    PaymentRequest, ResultWindow, Role, SaleDetails, SaleResult, ShiftTotals, BUFFER_CAPACITY,
    MAX_FRAME_LEN,
};
use proptest::prelude::*;

fn request_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,64}"
}

fn currency() -> impl Strategy<Value = Currency> {
    "[A-Z]{3}".prop_map(|c| Currency::new(&c).expect("strategy yields valid codes"))
}

/// Any text whose UTF-8 fits a one-byte length prefix (60 chars of at most 4 bytes each).
fn short_text() -> impl Strategy<Value = String> {
    "\\PC{0,60}"
}

fn long_text() -> impl Strategy<Value = String> {
    "\\PC{0,250}"
}

fn payment_request() -> impl Strategy<Value = PaymentRequest> {
    (
        request_id(),
        1..=u64::MAX,
        currency(),
        proptest::option::of(short_text()),
        proptest::option::of((short_text(), short_text())),
        proptest::option::of(details()),
    )
        .prop_map(
            |(request_id, amount, currency, primary_reference, creds, details)| PaymentRequest {
                request_id,
                amount,
                currency,
                primary_reference,
                credentials: creds.map(|(login, password)| Credentials { login, password }),
                details,
            },
        )
}

/// Version 2 details, small enough that every payment request fits MAX_PAYLOAD.
fn details() -> impl Strategy<Value = SaleDetails> {
    let small = || proptest::option::of("\\PC{0,10}");
    (
        any::<bool>(),
        small(),
        small(),
        small(),
        proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,10}", 0..3),
    )
        .prop_map(
            |(sign_on_screen, email, phone, recipient_inn, metadata)| SaleDetails {
                sign_on_screen,
                email,
                phone,
                recipient_inn,
                metadata,
            },
        )
}

fn sale_result() -> impl Strategy<Value = SaleResult> {
    (
        request_id(),
        prop_oneof![
            Just(Outcome::Approved),
            Just(Outcome::Declined),
            Just(Outcome::Error)
        ],
        proptest::option::of("[0-9]{12}"),
        proptest::option::of("[A-Z0-9]{6}"),
        proptest::option::of("[0-9]{6}\\*{2,9}[0-9]{4}"),
        proptest::option::of(short_text()),
        // Shorter than long_text so the whole result stays under MAX_PAYLOAD.
        "\\PC{0,100}",
    )
        .prop_map(
            |(request_id, outcome, rrn, approval_code, masked_pan, scheme, message)| SaleResult {
                request_id,
                outcome,
                rrn,
                approval_code,
                masked_pan,
                scheme,
                message,
            },
        )
}

/// A version 3 result window that keeps its rules (store not 0, oldest at most next).
fn result_window() -> impl Strategy<Value = ResultWindow> {
    (1..=u64::MAX, any::<u64>(), any::<u64>()).prop_map(|(store, a, b)| ResultWindow {
        store,
        oldest: a.min(b),
        next: a.max(b),
    })
}

fn message() -> impl Strategy<Value = Message> {
    let nak_reason = prop_oneof![
        Just(NakReason::BadCrc),
        Just(NakReason::Malformed),
        Just(NakReason::UnknownType),
        Just(NakReason::UnsupportedVersion),
        Just(NakReason::NotReady),
        (6u8..=255).prop_map(NakReason::Other),
    ];
    let role = prop_oneof![
        Just(Role::CardReader),
        Just(Role::DqrDisplay),
        Just(Role::Host)
    ];
    let hello = (any::<u8>(), role, short_text(), short_text(), short_text()).prop_map(
        |(protocol_version, role, model, firmware, serial)| Hello {
            protocol_version,
            role,
            model,
            firmware,
            serial,
        },
    );
    prop_oneof![
        any::<u8>().prop_map(|seq| Message::Ack { seq }),
        (any::<u8>(), nak_reason).prop_map(|(seq, reason)| Message::Nak { seq, reason }),
        hello.prop_map(Message::Hello),
        Just(Message::KeepAlive),
        payment_request().prop_map(Message::StartSale),
        payment_request().prop_map(Message::StartRefund),
        payment_request().prop_map(Message::StartCancel),
        sale_result().prop_map(Message::SaleResult),
        request_id().prop_map(|request_id| Message::GetResult { request_id }),
        request_id().prop_map(|request_id| Message::ResultNotFound { request_id }),
        request_id().prop_map(|request_id| Message::Busy { request_id }),
        request_id().prop_map(|request_id| Message::InProgress { request_id }),
        Just(Message::CloseShift),
        (any::<u32>(), any::<u64>())
            .prop_map(|(count, total)| Message::ShiftSummary { count, total }),
        request_id().prop_map(|request_id| Message::Duplicate { request_id }),
        (any::<(u32, u64, u32, u64, u32, u64)>()).prop_map(|t| {
            Message::ShiftTotals(ShiftTotals {
                pay_count: t.0,
                pay_total: t.1,
                refund_count: t.2,
                refund_total: t.3,
                cancel_count: t.4,
                cancel_total: t.5,
            })
        }),
        Just(Message::GetResultWindow),
        result_window().prop_map(Message::ResultWindow),
        "\\PC{1,250}".prop_map(|payload| Message::ShowQr { payload }),
        (any::<u64>(), currency())
            .prop_map(|(amount, currency)| Message::ShowAmount { amount, currency }),
        long_text().prop_map(|text| Message::ShowStatus { text }),
        Just(Message::Clear),
    ]
}

/// Garbage that cannot contain a start marker, so it can never hide a frame.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_filter("no start marker", |g| {
        !g.windows(2).any(|w| w == [0xA5, 0x5A])
    })
}

/// Feeds `bytes` in pieces whose sizes cycle through `sizes`, checking the buffer bound after
/// every push, and returns everything the decoder produced.
fn feed_chunked(d: &mut Decoder, bytes: &[u8], sizes: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(1).min(rest.len());
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        frames.extend(d.feed(piece).filter_map(Result::ok));
        assert!(d.buffered() <= BUFFER_CAPACITY);
    }
    frames
}

/// Random bytes with start-marker, version and zero bytes over-represented, so false starts
/// and plausible headers are common instead of one in 65 536.
fn marker_rich_byte() -> impl Strategy<Value = u8> {
    prop_oneof![4 => any::<u8>(), 1 => Just(0xA5), 1 => Just(0x5A), 1 => Just(0x01), 1 => Just(0x00)]
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..300, 1..8)
}

proptest! {
    #[test]
    fn every_message_round_trips(msg in message(), seq in any::<u8>()) {
        let frame = msg.to_frame(seq).expect("generated messages are valid");
        let bytes = encode(&frame);
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        let decoded: Vec<_> = Decoder::new().feed(&bytes).collect();
        prop_assert_eq!(decoded.len(), 1);
        let back = decoded[0].clone().expect("own frames pass the CRC");
        prop_assert_eq!(&back, &frame);
        prop_assert_eq!(Message::from_frame(&back), Ok(msg));
    }

    #[test]
    fn accepted_payloads_are_canonical(
        kind in prop_oneof![0x01u8..=0x04, 0x10u8..=0x1D, 0x20u8..=0x23, any::<u8>()],
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Whatever a peer sends, what we accept re-encodes to exactly the same bytes: no two
        // encodings mean the same thing, so a capture is unambiguous.
        if let Ok(msg) = Message::decode(kind, &payload) {
            prop_assert_eq!(msg.kind(), kind);
            prop_assert_eq!(msg.encode_payload(), Ok(payload));
        }
    }

    #[test]
    fn a_result_window_is_accepted_exactly_when_it_keeps_its_rules(
        store in prop_oneof![Just(0u64), any::<u64>()],
        oldest in any::<u64>(),
        next in any::<u64>(),
    ) {
        // Version 3: a reader can only report a window a host can compare against: a store
        // id (never 0) and oldest at most next. Anything else is malformed, never guessed at.
        let payload: Vec<u8> = [store, oldest, next].iter().flat_map(|n| n.to_le_bytes()).collect();
        let got = Message::decode(link::kind::RESULT_WINDOW, &payload);
        let keeps_rules = store != 0 && oldest <= next;
        prop_assert_eq!(got.is_ok(), keeps_rules, "{:?}", got);
        if let Ok(Message::ResultWindow(w)) = got {
            prop_assert_eq!((w.store, w.oldest, w.next), (store, oldest, next));
        }
    }

    #[test]
    fn arbitrary_streams_never_panic_and_stay_bounded(
        bytes in proptest::collection::vec(marker_rich_byte(), 0..3000),
        sizes in chunk_sizes(),
    ) {
        let mut d = Decoder::new();
        let mut in_frames = 0;
        for frame in feed_chunked(&mut d, &bytes, &sizes) {
            in_frames += encode(&frame).len();
            // Whatever the payload, parsing it answers Ok or a typed error.
            let _ = Message::from_frame(&frame);
        }
        // Nothing is lost silently: every byte is in a frame, counted as garbage, or waiting.
        let garbage = usize::try_from(d.stats().garbage_bytes).expect("small test input");
        prop_assert_eq!(in_frames + garbage + d.buffered(), bytes.len());
    }

    #[test]
    fn frames_between_markerless_garbage_are_all_recovered(
        items in proptest::collection::vec((garbage(), message()), 0..8),
        tail in garbage(),
        sizes in chunk_sizes(),
    ) {
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        let mut garbage_len = tail.len();
        for (seq, (junk, msg)) in items.into_iter().enumerate() {
            garbage_len += junk.len();
            stream.extend(junk);
            let frame = msg.to_frame(seq as u8).expect("generated messages are valid");
            stream.extend(encode(&frame));
            sent.push(frame);
        }
        stream.extend(tail);
        let mut d = Decoder::new();
        prop_assert_eq!(feed_chunked(&mut d, &stream, &sizes), sent);
        prop_assert_eq!(d.stats().crc_errors, 0);
        // A trailing 0xA5 may stay buffered as half a marker.
        prop_assert_eq!(d.stats().garbage_bytes + d.buffered() as u64, garbage_len as u64);
    }

    #[test]
    fn one_damaged_byte_loses_only_its_own_frame(
        msgs in proptest::collection::vec(message(), 1..6),
        pick in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let frames: Vec<Frame> = msgs
            .iter()
            .enumerate()
            .map(|(seq, m)| m.to_frame(seq as u8).expect("generated messages are valid"))
            .collect();
        let encoded: Vec<Vec<u8>> = frames.iter().map(encode).collect();
        let victim = pick.index(frames.len());
        let mut stream = Vec::new();
        for (i, bytes) in encoded.iter().enumerate() {
            let mut bytes = bytes.clone();
            if i == victim {
                let at = position.index(bytes.len());
                bytes[at] ^= flip;
            }
            stream.extend(bytes);
        }
        let mut d = Decoder::new();
        let mut got: Vec<Frame> = d.feed(&stream).filter_map(Result::ok).collect();
        // A damaged length may leave the decoder waiting; the session's inter-byte timeout
        // then calls skip_partial, which must bring back every frame behind it.
        while d.buffered() > 0 {
            d.skip_partial();
            got.extend(d.feed(&[]).filter_map(Result::ok));
        }
        let mut expected = frames;
        expected.remove(victim);
        prop_assert_eq!(got, expected);
    }
}
