//! The streaming frame decoder: bytes go in as they arrive (any split, any amount of noise),
//! checked frames come out. It owns resynchronisation, CRC checking and a bounded buffer; it
//! must not interpret payloads, answer frames or keep time (an inter-byte timeout is the
//! caller's, which then calls [`Decoder::skip_partial`]).

use super::VERSION;

use super::{Flags, Frame, CRC, CRC_LEN, HEADER_LEN, MAX_FRAME_LEN, MAX_PAYLOAD, START_MARKER};
use std::fmt;

/// The most bytes a decoder ever holds. Any value ≥ [`MAX_FRAME_LEN`] guarantees progress;
/// twice that lets a whole serial read or BLE notification in at once in the usual case.
pub const BUFFER_CAPACITY: usize = 2 * MAX_FRAME_LEN;

/// Something the session layer should react to. Garbage is only counted (see
/// [`DecoderStats`]): noise is normal on a serial line and needs no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A complete frame arrived but its CRC did not match. `seq` and `kind` come from the
    /// damaged header, so they are a hint for a NAK, not a fact.
    #[error(
        "frame seq {seq} type {kind:#04x} failed its CRC check \
         (received {received:#010x}, computed {computed:#010x}); ask the peer to retransmit"
    )]
    CrcMismatch {
        seq: u8,
        kind: u8,
        received: u32,
        computed: u32,
    },
}

/// Counters for `posbridge devices` and logs: a rising `garbage_bytes` means a noisy cable,
/// a wrong baud rate or a peer speaking another protocol.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames delivered with a good CRC.
    pub frames: u64,
    /// Complete frames refused for their CRC.
    pub crc_errors: u64,
    /// Bytes skipped while hunting for a start marker, including false starts (wrong
    /// version, length over [`MAX_PAYLOAD`]) and the remains of frames that failed their CRC.
    pub garbage_bytes: u64,
}

/// Reassembles frames from a byte stream. See the module documentation of `link` for the layout.
pub struct Decoder {
    buf: Vec<u8>,
    stats: DecoderStats,
}

// Hand-written so logging a decoder never prints buffered bytes (they may hold a password).
impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buf.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            buf: Vec::with_capacity(BUFFER_CAPACITY),
            stats: DecoderStats::default(),
        }
    }

    /// Copies as many bytes as fit (at most [`Decoder::free`]) and returns how many it took.
    /// Pull frames with [`Decoder::next_frame`] until `None`, then push the rest: after such a
    /// drain there is always room, so the loop makes progress. [`Decoder::feed`] does this.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// Room left in the buffer.
    pub fn free(&self) -> usize {
        BUFFER_CAPACITY.saturating_sub(self.buf.len())
    }

    /// Bytes held: a partial frame waiting for the rest, or input not yet examined.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Pushes all of `bytes` and yields every frame and error they complete, in order.
    /// Input not yet pushed when the iterator is dropped is lost, so drain it.
    #[must_use = "the input is only consumed as the iterator is driven"]
    pub fn feed<'d, 'a>(&'d mut self, bytes: &'a [u8]) -> Feed<'d, 'a> {
        Feed {
            decoder: self,
            input: bytes,
        }
    }

    /// The next complete frame, a CRC failure, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        loop {
            let Some(start) = find_marker(&self.buf) else {
                // Keep a trailing first marker byte: its partner may come with the next push.
                let keep = usize::from(self.buf.last() == Some(&START_MARKER[0]));
                self.discard(self.buf.len() - keep);
                return None;
            };
            self.discard(start);
            if self.buf.len() < HEADER_LEN {
                return None;
            }
            let len = usize::from(u16::from_le_bytes([self.buf[6], self.buf[7]]));
            if self.buf[2] != VERSION || len > MAX_PAYLOAD {
                // A false start (or a peer on another layout): skip the marker and hunt on.
                // Never wait for, let alone allocate, a length we would refuse anyway.
                self.discard(START_MARKER.len());
                continue;
            }
            let body_len = HEADER_LEN + len;
            let total = body_len + CRC_LEN;
            if self.buf.len() < total {
                return None;
            }
            let (seq, kind) = (self.buf[3], self.buf[4]);
            let computed = CRC.checksum(&self.buf[..body_len]);
            let received = u32::from_le_bytes([
                self.buf[body_len],
                self.buf[body_len + 1],
                self.buf[body_len + 2],
                self.buf[body_len + 3],
            ]);
            if received != computed {
                // Drop only the marker: if the length byte was the damaged one, the frames
                // that followed are inside what we buffered and must still be found.
                self.discard(START_MARKER.len());
                self.stats.crc_errors += 1;
                return Some(Err(DecodeError::CrcMismatch {
                    seq,
                    kind,
                    received,
                    computed,
                }));
            }
            let frame = Frame {
                seq,
                kind,
                flags: Flags(self.buf[5]),
                payload: self.buf[HEADER_LEN..body_len].to_vec(),
            };
            self.buf.drain(..total);
            self.stats.frames += 1;
            return Some(Ok(frame));
        }
    }

    /// Gives up on the frame being assembled, e.g. after an inter-byte timeout. A damaged
    /// length field can otherwise make the decoder wait for up to [`MAX_PAYLOAD`] bytes that
    /// a quiet peer will never send. Bytes after the abandoned marker are scanned again.
    pub fn skip_partial(&mut self) {
        if !self.buf.is_empty() {
            self.discard(1);
        }
    }

    /// Forgets everything buffered (counted as garbage), e.g. when the transport reconnects.
    pub fn reset(&mut self) {
        self.discard(self.buf.len());
    }

    fn discard(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.stats.garbage_bytes += n as u64;
    }
}

fn find_marker(buf: &[u8]) -> Option<usize> {
    buf.windows(START_MARKER.len())
        .position(|w| w == START_MARKER)
}

/// Iterator returned by [`Decoder::feed`].
pub struct Feed<'d, 'a> {
    decoder: &'d mut Decoder,
    input: &'a [u8],
}

impl Iterator for Feed<'_, '_> {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.decoder.next_frame() {
                return Some(item);
            }
            if self.input.is_empty() {
                return None;
            }
            // next_frame returned None, so the buffer holds less than one frame and push
            // takes at least one byte: this loop always terminates.
            let taken = self.decoder.push(self.input);
            self.input = &self.input[taken..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode, kind};
    use super::*;

    fn frame(seq: u8, payload: &[u8]) -> Frame {
        Frame::new(
            seq,
            kind::SHOW_STATUS,
            Flags::ACK_REQUESTED,
            payload.to_vec(),
        )
        .unwrap()
    }

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Vec<Result<Frame, DecodeError>> {
        d.feed(bytes).collect()
    }

    #[test]
    fn garbage_before_and_between_frames_is_skipped_and_counted() {
        let (a, b) = (frame(1, b"one"), frame(2, b"two"));
        let mut stream = b"noise\xA5".to_vec();
        stream.extend(encode(&a));
        stream.extend([0x00, 0x5A, 0xA5, 0xA5, 0x13]);
        stream.extend(encode(&b));
        let mut d = Decoder::new();
        assert_eq!(decode_all(&mut d, &stream), vec![Ok(a), Ok(b)]);
        assert_eq!(d.stats().garbage_bytes, 6 + 5);
        assert_eq!(d.stats().frames, 2);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn corrupted_crc_is_reported_and_the_next_frame_still_decodes() {
        let mut bad = encode(&frame(9, b"pay"));
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        let good = frame(10, b"ok");
        bad.extend(encode(&good));
        let mut d = Decoder::new();
        let out = decode_all(&mut d, &bad);
        assert!(matches!(
            out[0],
            Err(DecodeError::CrcMismatch {
                seq: 9,
                kind: kind::SHOW_STATUS,
                ..
            })
        ));
        assert_eq!(out[1..], [Ok(good)]);
        assert_eq!(d.stats().crc_errors, 1);
    }

    #[test]
    fn truncated_frame_waits_then_completes() {
        let bytes = encode(&frame(3, b"hello"));
        let mut d = Decoder::new();
        assert!(decode_all(&mut d, &bytes[..bytes.len() - 1]).is_empty());
        assert_eq!(d.buffered(), bytes.len() - 1);
        assert_eq!(
            decode_all(&mut d, &bytes[bytes.len() - 1..]),
            vec![Ok(frame(3, b"hello"))]
        );
    }

    #[test]
    fn over_max_length_is_a_false_start_not_a_wait() {
        let mut bytes = vec![0xA5, 0x5A, VERSION, 0, kind::SHOW_QR, 0];
        bytes.extend(((MAX_PAYLOAD + 1) as u16).to_le_bytes());
        let good = frame(4, b"after");
        bytes.extend(encode(&good));
        let mut d = Decoder::new();
        assert_eq!(decode_all(&mut d, &bytes), vec![Ok(good)]);
        assert_eq!(d.stats().garbage_bytes, 8);
    }

    #[test]
    fn wrong_version_is_a_false_start() {
        let mut bytes = encode(&frame(5, b"v2"));
        bytes[2] = 2;
        let mut d = Decoder::new();
        assert!(decode_all(&mut d, &bytes).is_empty());
        assert_eq!(d.stats().crc_errors, 0);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn one_byte_at_a_time_reassembles_every_frame() {
        let frames: Vec<Frame> = (0..5).map(|i| frame(i, &[i; 40])).collect();
        let stream: Vec<u8> = frames.iter().flat_map(encode).collect();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for byte in &stream {
            out.extend(d.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(out, frames.into_iter().map(Ok).collect::<Vec<_>>());
        assert_eq!(d.stats().garbage_bytes, 0);
    }

    #[test]
    fn push_never_exceeds_capacity() {
        let mut d = Decoder::new();
        let flood = vec![0xA5; 3 * BUFFER_CAPACITY];
        assert_eq!(d.push(&flood), BUFFER_CAPACITY);
        assert_eq!(d.push(&flood), 0);
        assert!(decode_all(&mut d, &flood).is_empty());
        assert!(d.buffered() <= 1);
    }

    #[test]
    fn skip_partial_recovers_frames_swallowed_by_a_damaged_length() {
        let mut damaged = encode(&frame(6, b"x"));
        damaged[6] = 0xFF; // length 0x00FF (255): waits for bytes that are really later frames
        let good = frame(7, b"y");
        damaged.extend(encode(&good));
        let mut d = Decoder::new();
        assert!(decode_all(&mut d, &damaged).is_empty());
        d.skip_partial();
        assert_eq!(decode_all(&mut d, &[]), vec![Ok(good)]);
    }
}
