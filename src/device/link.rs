//! The link protocol's frame codec: how bytes on a serial line or a BLE Nordic UART stream become
//! frames and typed messages, and back (the wire format is written down for firmware authors in
//! docs/link-protocol.md). It owns the frame layout, the CRC, resynchronisation after garbage,
//! MTU chunking and duplicate suppression. It must not do I/O, keep time or retransmit: that is
//! the session layer's job, so this module stays pure, deterministic and fuzzable.
//!
//! Layout of this module:
//! - `link.rs` (here): constants, [`Frame`], [`encode`], [`chunks`].
//! - `decoder`: the streaming [`Decoder`] (resync, CRC check, bounded buffer).
//! - `wire`: payload primitives (integers, length-prefixed strings) and [`PayloadError`].
//! - `messages`: the typed [`Message`] enum, message type numbers, payload dispatch.
//! - `fields`: structured payload parts (HELLO, payment request, result) and their validation.
//! - `details`: the version 2 additions (a payment request's LIFE POS details, shift totals).
//! - `window`: the version 3 addition (the card reader's result window).
//! - `dedup`: [`DuplicateFilter`], so a retransmitted frame is acknowledged but not delivered twice.
//!
//! Frame layout (all integers little-endian):
//!
//! | offset | size | field                                   |
//! |--------|------|-----------------------------------------|
//! | 0      | 2    | start marker `A5 5A`                    |
//! | 2      | 1    | frame layout version ([`VERSION`])      |
//! | 3      | 1    | sequence number                         |
//! | 4      | 1    | message type                            |
//! | 5      | 1    | flags ([`Flags`])                       |
//! | 6      | 2    | payload length `n` (≤ [`MAX_PAYLOAD`])  |
//! | 8      | n    | payload                                 |
//! | 8 + n  | 4    | CRC-32/ISO-HDLC of bytes `0 .. 8 + n`   |
//!
//! Why CRC-32 and not CRC-16: the decoder hunts for start markers inside noise, so every false
//! marker is a candidate frame whose only remaining defence is the CRC. With CRC-16 one random
//! candidate in 65 536 would be accepted as a frame; with CRC-32 one in four billion, for two
//! extra bytes per frame. CRC-32/ISO-HDLC is the zlib/Ethernet CRC that every MCU SDK ships.

mod decoder;
mod dedup;
mod details;
mod fields;
mod messages;
mod window;
mod wire;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod golden_v2;
#[cfg(test)]
mod golden_v3;
#[cfg(test)]
mod golden_v4;

pub use decoder::{DecodeError, Decoder, DecoderStats, Feed, BUFFER_CAPACITY};
pub use dedup::{Delivery, DuplicateFilter};
pub use details::{SaleDetails, ShiftTotals, MAX_METADATA};
pub use fields::{
    Credentials, Currency, Hello, NakReason, Outcome, PaymentRequest, Role, SaleResult,
};
pub use messages::{kind, Message};
pub use window::ResultWindow;
pub use wire::PayloadError;

use std::fmt;

/// The two bytes every frame starts with. `A5 5A` cannot overlap itself, so after a false
/// start the scanner can never skip over a real marker.
pub const START_MARKER: [u8; 2] = [0xA5, 0x5A];
/// The frame layout version this codec speaks. Any other value at offset 2 is treated as garbage.
pub const VERSION: u8 = 1;
/// Bytes before the payload: marker, version, seq, type, flags, length.
pub const HEADER_LEN: usize = 8;
/// Bytes after the payload: the CRC-32.
pub const CRC_LEN: usize = 4;
/// Largest payload a frame may carry. A length field above this is a false start, never a
/// reason to allocate: the decoder's memory is bounded by it.
pub const MAX_PAYLOAD: usize = 1024;
/// Largest encoded frame.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD + CRC_LEN;

/// CRC-32/ISO-HDLC: poly 0x04C11DB7, init 0xFFFFFFFF, reflected in and out, xorout 0xFFFFFFFF,
/// check value 0xCBF43926 for "123456789".
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Per-frame flag bits. Unknown bits are ignored on receipt and must be sent as zero, so they
/// stay free for later versions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flags: the sender expects no acknowledgement (ACK, NAK).
    pub const NONE: Flags = Flags(0);
    /// The receiver must answer with ACK (or NAK); the sender retransmits until it does.
    pub const ACK_REQUESTED: Flags = Flags(0x01);

    pub fn ack_requested(self) -> bool {
        self.0 & Self::ACK_REQUESTED.0 != 0
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x})", self.0)
    }
}

/// One frame: header fields plus an opaque payload. The payload length is checked at
/// construction, so [`encode`] cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    seq: u8,
    kind: u8,
    flags: Flags,
    payload: Vec<u8>,
}

impl Frame {
    pub fn new(seq: u8, kind: u8, flags: Flags, payload: Vec<u8>) -> Result<Frame, PayloadError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(PayloadError::TooLarge { len: payload.len() });
        }
        Ok(Frame {
            seq,
            kind,
            flags,
            payload,
        })
    }

    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// The raw message type byte (see [`kind`]).
    pub fn kind(&self) -> u8 {
        self.kind
    }

    pub fn flags(&self) -> Flags {
        self.flags
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

// Hand-written so a logged frame never shows payload bytes: a StartSale payload may carry a
// password, and a SaleResult a (masked) card number.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("kind", &format_args!("{:#04x}", self.kind))
            .field("flags", &self.flags)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Encodes a frame into its wire bytes (header, payload, CRC).
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + frame.payload.len() + CRC_LEN);
    out.extend_from_slice(&START_MARKER);
    out.push(VERSION);
    out.push(frame.seq);
    out.push(frame.kind);
    out.push(frame.flags.0);
    // Cannot truncate: Frame::new caps the payload at MAX_PAYLOAD, far below u16::MAX.
    out.extend_from_slice(&(frame.payload.len() as u16).to_le_bytes());
    out.extend_from_slice(&frame.payload);
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Splits encoded bytes into pieces of at most `mtu` bytes for BLE writes and notifications
/// (pass the ATT MTU minus 3). No per-chunk header is needed: the receiver's [`Decoder`] treats
/// the link as a byte stream and reassembles frames by itself. An `mtu` of 0 is treated as 1
/// rather than looping forever or panicking.
pub fn chunks(bytes: &[u8], mtu: usize) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(mtu.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_parameters_match_the_catalogue_check_value() {
        // Pins the documented algorithm: firmware authors test their CRC against this value.
        assert_eq!(CRC.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn encode_lays_out_header_payload_and_crc() {
        let frame = Frame::new(7, 0x22, Flags::ACK_REQUESTED, b"hi".to_vec()).unwrap();
        let bytes = encode(&frame);
        assert_eq!(
            &bytes[..8],
            &[0xA5, 0x5A, 0x01, 0x07, 0x22, 0x01, 0x02, 0x00]
        );
        assert_eq!(&bytes[8..10], b"hi");
        let crc = CRC.checksum(&bytes[..10]).to_le_bytes();
        assert_eq!(&bytes[10..], &crc);
        assert_eq!(bytes.len(), HEADER_LEN + 2 + CRC_LEN);
    }

    #[test]
    fn frame_refuses_payload_above_max() {
        let err = Frame::new(0, 0x04, Flags::NONE, vec![0; MAX_PAYLOAD + 1]).unwrap_err();
        assert_eq!(
            err,
            PayloadError::TooLarge {
                len: MAX_PAYLOAD + 1
            }
        );
        assert!(Frame::new(0, 0x04, Flags::NONE, vec![0; MAX_PAYLOAD]).is_ok());
    }

    #[test]
    fn frame_debug_hides_payload_bytes() {
        let frame = Frame::new(1, 0x10, Flags::NONE, b"hunter2".to_vec()).unwrap();
        let shown = format!("{frame:?}");
        assert!(shown.contains("payload_len: 7"), "{shown}");
        assert!(!shown.contains("104"), "payload byte leaked: {shown}");
    }

    #[test]
    fn chunks_split_at_mtu_and_tolerate_zero() {
        let bytes: Vec<u8> = (0..10).collect();
        let pieces: Vec<&[u8]> = chunks(&bytes, 4).collect();
        assert_eq!(pieces, vec![&bytes[0..4], &bytes[4..8], &bytes[8..10]]);
        assert_eq!(chunks(&bytes, 0).count(), 10);
        assert_eq!(chunks(&[], 20).count(), 0);
    }
}
