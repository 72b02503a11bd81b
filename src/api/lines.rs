//! Request framing on a connection: newline-delimited lines of at most [`MAX_LINE`] bytes.
//! Unlike a plain delimiter codec, a line over the limit is handed on as its first
//! [`MAX_LINE`] bytes ([`Frame::TooLong`]), so its answer can echo what can be read of it
//! (`protocol::peek`); the connection then closes. Pure framing: no parsing, no I/O.

use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::protocol::MAX_LINE;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line, without its newline.
    Line(BytesMut),
    /// The first [`MAX_LINE`] bytes of a line longer than that.
    TooLong(BytesMut),
}

/// The decoder; `searched` is how much of the buffer is known to hold no newline.
#[derive(Default)]
pub struct Lines {
    searched: usize,
}

impl Decoder for Lines {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        let window = buf.len().min(MAX_LINE + 1);
        match buf[self.searched.min(window)..window]
            .iter()
            .position(|b| *b == b'\n')
        {
            Some(at) => {
                let at = self.searched.min(window) + at;
                let mut line = buf.split_to(at + 1);
                line.truncate(at);
                self.searched = 0;
                Ok(Some(Frame::Line(line)))
            }
            None if buf.len() > MAX_LINE => {
                let prefix = buf.split_to(MAX_LINE);
                buf.clear();
                self.searched = 0;
                Ok(Some(Frame::TooLong(prefix)))
            }
            None => {
                self.searched = window;
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => {
                self.searched = 0;
                Ok(Some(Frame::Line(buf.split())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut codec = Lines::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn lines_split_at_newlines_across_chunks_and_the_last_one_without_a_newline_counts() {
        let got = frames(&[b"ab", b"c\nde", b"f\n\ng"]);
        let lines: Vec<&[u8]> = got
            .iter()
            .map(|f| match f {
                Frame::Line(l) => &l[..],
                Frame::TooLong(_) => panic!("{f:?}"),
            })
            .collect();
        assert_eq!(lines, [&b"abc"[..], b"def", b"", b"g"]);
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_byte_more_is_cut_to_the_limit() {
        let at_limit = vec![b'x'; MAX_LINE];
        let got = frames(&[&at_limit, b"\n"]);
        assert!(matches!(&got[..], [Frame::Line(l)] if l.len() == MAX_LINE));
        let over = vec![b'y'; MAX_LINE + 1];
        let got = frames(&[&over[..1000], &over[1000..], b"\n"]);
        assert!(
            matches!(&got[0], Frame::TooLong(p) if p.len() == MAX_LINE && p[0] == b'y'),
            "{:?}",
            got.len()
        );
    }
}
