//! What link protocol version 4 added for progress (docs/link-protocol.md §8, §9): STAGE, a
//! card reader telling the host how far a running operation has got (card read, PIN entry,
//! authorising). It owns the stage codes and the layout; it must not decide what a stage means
//! for a sale: a stage is never a result, and the host only passes it on to a POS that asked.

use super::wire::{Reader, Writer};
use super::PayloadError;

/// The stage byte of STAGE (version 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReaderStage {
    /// `01`: the card was read (tapped, inserted or swiped).
    CardRead,
    /// `02`: the reader asks the customer for the PIN.
    PinEntry,
    /// `03`: the reader asks its acquirer to authorise.
    Authorising,
}

impl ReaderStage {
    pub fn code(self) -> u8 {
        match self {
            ReaderStage::CardRead => 1,
            ReaderStage::PinEntry => 2,
            ReaderStage::Authorising => 3,
        }
    }

    pub fn from_code(code: u8) -> Result<ReaderStage, PayloadError> {
        match code {
            1 => Ok(ReaderStage::CardRead),
            2 => Ok(ReaderStage::PinEntry),
            3 => Ok(ReaderStage::Authorising),
            value => Err(PayloadError::InvalidByte {
                field: "stage",
                value,
            }),
        }
    }

    pub(super) fn encode(self, w: &mut Writer) {
        w.u8(self.code());
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<ReaderStage, PayloadError> {
        ReaderStage::from_code(r.u8("stage")?)
    }
}
