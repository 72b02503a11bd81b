//! What link protocol version 3 added (docs/link-protocol.md §8, §9): the card reader's result
//! window, RESULT_WINDOW, its answer to GET_RESULT_WINDOW. A reader numbers every operation it
//! stores (each START_* it accepts and runs) from a counter that only grows, keeps its results
//! in that order and drops the oldest first; the window says which numbers it still holds and
//! which number the next operation will get, in one result store (`store`, a random id that
//! changes whenever the reader's memory of results is created anew). It owns the layout and
//! the field rules; it must not decide what a missing result means (that is the host's
//! reading, in `provider::lifepay`).

use super::wire::{Reader, Writer};
use super::PayloadError;

/// RESULT_WINDOW (version 3): `store`, then `oldest` and `next`, all u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultWindow {
    /// The id of the reader's result store: random, never 0, new whenever the reader lost (or
    /// never had) its stored results. Numbers are only comparable within one store.
    pub store: u64,
    /// The number of the oldest result the reader still holds; equal to `next` when it holds
    /// none. Every operation numbered from here up to `next - 1` is still held.
    pub oldest: u64,
    /// The number the next operation the reader receives will get.
    pub next: u64,
}

impl ResultWindow {
    pub(super) fn encode(&self, w: &mut Writer) -> Result<(), PayloadError> {
        self.check()?;
        w.u64(self.store);
        w.u64(self.oldest);
        w.u64(self.next);
        Ok(())
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<ResultWindow, PayloadError> {
        let window = ResultWindow {
            store: r.u64("store")?,
            oldest: r.u64("oldest")?,
            next: r.u64("next")?,
        };
        window.check()?;
        Ok(window)
    }

    fn check(&self) -> Result<(), PayloadError> {
        if self.store == 0 {
            return Err(PayloadError::Invalid {
                field: "store",
                reason: "must not be 0 (a reader picks a random store id)",
            });
        }
        if self.oldest > self.next {
            return Err(PayloadError::Invalid {
                field: "oldest",
                reason: "is above next (a reader cannot hold a result it has not numbered)",
            });
        }
        Ok(())
    }
}
