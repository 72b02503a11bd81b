//! Duplicate suppression for received frames. When our ACK is lost the peer retransmits the
//! same frame with the same sequence number; it must be acknowledged again but not handed up
//! twice (a StartSale delivered twice is a double charge waiting to happen). This module owns
//! that one decision; it must not send anything or keep time.
//!
//! Remembering only the last sequence number is enough because the protocol is stop-and-wait:
//! a sender never starts frame n+1 before frame n is acknowledged.

use super::{kind, Frame};

/// What to do with a frame that arrived intact and parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Delivery {
    /// A new frame: deliver it (and ACK it if it asks).
    New,
    /// A retransmission of the frame delivered last: ACK it again, do not deliver it.
    Duplicate,
}

/// The last accepted sequence number from one peer.
#[derive(Debug, Clone, Default)]
pub struct DuplicateFilter {
    last: Option<u8>,
}

impl DuplicateFilter {
    pub fn new() -> DuplicateFilter {
        DuplicateFilter::default()
    }

    /// Classifies a frame. Call it only for frames you are about to ACK: a frame you NAK
    /// (malformed, unknown type) must not be remembered, or its retransmission would be
    /// taken for a duplicate and never delivered.
    ///
    /// ACK and NAK are not sequenced and always count as new. HELLO starts a new session
    /// (the peer may have rebooted and restarted its numbering), so it is always new and
    /// replaces the remembered number.
    pub fn check(&mut self, frame: &Frame) -> Delivery {
        match frame.kind() {
            kind::ACK | kind::NAK => Delivery::New,
            kind::HELLO => {
                self.last = Some(frame.seq());
                Delivery::New
            }
            _ if self.last == Some(frame.seq()) => Delivery::Duplicate,
            _ => {
                self.last = Some(frame.seq());
                Delivery::New
            }
        }
    }

    /// Forgets the peer, e.g. when the transport reconnects.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Flags, Message};
    use super::*;

    fn frame(seq: u8, kind: u8) -> Frame {
        Frame::new(seq, kind, Flags::ACK_REQUESTED, Vec::new()).unwrap()
    }

    #[test]
    fn retransmission_is_a_duplicate_and_the_next_seq_is_new() {
        let mut f = DuplicateFilter::new();
        assert_eq!(f.check(&frame(5, kind::KEEPALIVE)), Delivery::New);
        assert_eq!(f.check(&frame(5, kind::KEEPALIVE)), Delivery::Duplicate);
        assert_eq!(f.check(&frame(5, kind::CLOSE_SHIFT)), Delivery::Duplicate);
        assert_eq!(f.check(&frame(6, kind::KEEPALIVE)), Delivery::New);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut f = DuplicateFilter::new();
        assert_eq!(f.check(&frame(255, kind::KEEPALIVE)), Delivery::New);
        assert_eq!(f.check(&frame(0, kind::KEEPALIVE)), Delivery::New);
        assert_eq!(f.check(&frame(0, kind::KEEPALIVE)), Delivery::Duplicate);
    }

    #[test]
    fn hello_restarts_numbering_even_with_the_same_seq() {
        let mut f = DuplicateFilter::new();
        assert_eq!(f.check(&frame(0, kind::KEEPALIVE)), Delivery::New);
        // The peer rebooted: its HELLO reuses seq 0 and must not be swallowed.
        assert_eq!(f.check(&frame(0, kind::HELLO)), Delivery::New);
        assert_eq!(f.check(&frame(1, kind::KEEPALIVE)), Delivery::New);
    }

    #[test]
    fn acks_are_never_duplicates_and_do_not_disturb_state() {
        let mut f = DuplicateFilter::new();
        assert_eq!(f.check(&frame(3, kind::KEEPALIVE)), Delivery::New);
        let ack = Message::Ack { seq: 3 }.to_frame(0).unwrap();
        assert_eq!(f.check(&ack), Delivery::New);
        assert_eq!(f.check(&ack), Delivery::New);
        assert_eq!(f.check(&frame(3, kind::KEEPALIVE)), Delivery::Duplicate);
        f.reset();
        assert_eq!(f.check(&frame(3, kind::KEEPALIVE)), Delivery::New);
    }
}
