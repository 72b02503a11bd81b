//! Payload primitives shared by every message: little-endian integers, length-prefixed UTF-8
//! strings and optional fields, plus the error every malformed payload maps to. It owns bounds
//! checking, so message code never indexes a slice itself; it must not know message semantics.

use super::MAX_PAYLOAD;

/// Why a payload could not be encoded or decoded. Decoding never panics: every way a peer can
/// send nonsense ends up here, so the session layer can NAK it with reason "malformed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(
        "payload of {len} bytes exceeds the {MAX_PAYLOAD}-byte frame limit; shorten the text or QR payload"
    )]
    TooLarge { len: usize },
    #[error("payload ends inside field `{field}`")]
    Truncated { field: &'static str },
    #[error("{count} unexpected bytes after the last field")]
    TrailingBytes { count: usize },
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("field `{field}` has an undefined value {value:#04x}")]
    InvalidByte { field: &'static str, value: u8 },
    #[error("field `{field}` is {len} bytes long, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("field `{field}` is invalid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
}

/// Appends fields to a payload. Strings are checked against their prefix's range here, so an
/// over-long value is an error instead of a silently truncated length.
#[derive(Default)]
pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// `str8`: one length byte, then UTF-8. For identifiers and short labels.
    pub(super) fn str8(&mut self, field: &'static str, v: &str) -> Result<(), PayloadError> {
        let len = u8::try_from(v.len()).map_err(|_| too_long(field, v.len(), 255))?;
        self.buf.push(len);
        self.buf.extend_from_slice(v.as_bytes());
        Ok(())
    }

    /// `str16`: two length bytes (LE), then UTF-8. For free text and QR payloads.
    pub(super) fn str16(&mut self, field: &'static str, v: &str) -> Result<(), PayloadError> {
        let len = u16::try_from(v.len()).map_err(|_| too_long(field, v.len(), MAX_PAYLOAD))?;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(v.as_bytes());
        Ok(())
    }

    /// `opt str8`: a presence byte (0 absent, 1 present), then the str8 when present.
    pub(super) fn opt_str8(
        &mut self,
        field: &'static str,
        v: Option<&str>,
    ) -> Result<(), PayloadError> {
        match v {
            None => {
                self.buf.push(0);
                Ok(())
            }
            Some(s) => {
                self.buf.push(1);
                self.str8(field, s)
            }
        }
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

fn too_long(field: &'static str, len: usize, max: usize) -> PayloadError {
    PayloadError::TooLong { field, len, max }
}

/// Reads fields off the front of a payload, failing with a typed error instead of panicking.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(payload: &'a [u8]) -> Self {
        Reader { rest: payload }
    }

    pub(super) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PayloadError> {
        if self.rest.len() < n {
            return Err(PayloadError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PayloadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, PayloadError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, PayloadError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(super) fn u64(&mut self, field: &'static str) -> Result<u64, PayloadError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub(super) fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], PayloadError> {
        self.array(field)
    }

    pub(super) fn str8(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let len = usize::from(self.u8(field)?);
        self.utf8(len, field)
    }

    pub(super) fn str16(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let len = usize::from(u16::from_le_bytes(self.array(field)?));
        self.utf8(len, field)
    }

    pub(super) fn opt_str8(&mut self, field: &'static str) -> Result<Option<String>, PayloadError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => self.str8(field).map(Some),
            value => Err(PayloadError::InvalidByte { field, value }),
        }
    }

    /// Nothing left to read: a layout that a later protocol version extended ends here in the
    /// earlier version (docs/link-protocol.md §8, version 2 blocks).
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// A presence byte for a non-string optional value: `Ok(true)` when it follows.
    pub(super) fn present(&mut self, field: &'static str) -> Result<bool, PayloadError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(PayloadError::InvalidByte { field, value }),
        }
    }

    fn utf8(&mut self, len: usize, field: &'static str) -> Result<String, PayloadError> {
        // `take` bounds `len` by the bytes actually present, so a lying length cannot make
        // us allocate more than the (already capped) payload.
        let raw = self.take(len, field)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| PayloadError::InvalidUtf8 { field })
    }

    /// Strict end: trailing bytes mean the peer speaks a layout we do not, so they are an
    /// error rather than silently ignored.
    pub(super) fn finish(self) -> Result<(), PayloadError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PayloadError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_with_field_name() {
        let mut r = Reader::new(&[3, b'a']);
        assert_eq!(
            r.str8("model"),
            Err(PayloadError::Truncated { field: "model" })
        );
        assert_eq!(
            Reader::new(&[1, 2]).u32("count"),
            Err(PayloadError::Truncated { field: "count" })
        );
    }

    #[test]
    fn reader_rejects_bad_utf8_presence_and_trailing_bytes() {
        assert_eq!(
            Reader::new(&[1, 0xFF]).str8("text"),
            Err(PayloadError::InvalidUtf8 { field: "text" })
        );
        assert_eq!(
            Reader::new(&[2]).opt_str8("rrn"),
            Err(PayloadError::InvalidByte {
                field: "rrn",
                value: 2
            })
        );
        let mut r = Reader::new(&[0, 9]);
        assert_eq!(r.opt_str8("rrn"), Ok(None));
        assert_eq!(r.finish(), Err(PayloadError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn writer_refuses_strings_longer_than_their_prefix() {
        let long = "x".repeat(256);
        assert!(matches!(
            Writer::default().str8("model", &long),
            Err(PayloadError::TooLong { len: 256, .. })
        ));
        let mut w = Writer::default();
        w.str16("text", "ab").unwrap();
        assert_eq!(w.finish(), vec![2, 0, b'a', b'b']);
    }
}
