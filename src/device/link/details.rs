//! The parts of the link protocol that version 2 added (docs/link-protocol.md §8, §9): the
//! per-sale details a LIFE POS request carries to the reader (the customer's e-mail and phone
//! for the electronic slip, signing on screen, the recipient's INN, the POS's metadata), and
//! the shift totals that count refunds and cancels as well as sales. It owns their layouts and
//! field rules; it must not decide what a reader does with them.

use std::collections::BTreeMap;

use super::wire::{Reader, Writer};
use super::PayloadError;

/// Key/value pairs as the socket API's `metadata` (the link layer does not import the API).
pub type Metadata = BTreeMap<String, String>;

/// Most metadata entries a payment request carries (a count byte on the wire).
pub const MAX_METADATA: usize = 255;

/// The details block of a version 2 payment request (START_SALE / START_REFUND /
/// START_CANCEL), after the credentials. A version 1 payment request ends before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaleDetails {
    /// LIFE POS `sign_on_screen`: "1" = the customer may sign on the screen.
    pub sign_on_screen: bool,
    /// Where the electronic slip is e-mailed (pay only).
    pub email: Option<String>,
    /// Where the slip goes by SMS (pay only).
    pub phone: Option<String>,
    /// The payment recipient's INN (pay only).
    pub recipient_inn: Option<String>,
    /// The POS's `metadata`, as sent (the reader forwards it to Lifepay's notifications).
    pub metadata: Metadata,
}

impl SaleDetails {
    /// Whether anything here would change what the reader does (metadata aside).
    pub fn asks_more_than_metadata(&self) -> bool {
        self.sign_on_screen
            || self.email.is_some()
            || self.phone.is_some()
            || self.recipient_inn.is_some()
    }

    pub(super) fn encode(&self, w: &mut Writer) -> Result<(), PayloadError> {
        if self.metadata.len() > MAX_METADATA {
            return Err(PayloadError::Invalid {
                field: "metadata",
                reason: "more than 255 entries",
            });
        }
        w.u8(u8::from(self.sign_on_screen));
        w.opt_str8("email", self.email.as_deref())?;
        w.opt_str8("phone", self.phone.as_deref())?;
        w.opt_str8("recipient_inn", self.recipient_inn.as_deref())?;
        w.u8(self.metadata.len() as u8);
        for (key, value) in &self.metadata {
            w.str8("metadata", key)?;
            w.str16("metadata", value)?;
        }
        Ok(())
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<SaleDetails, PayloadError> {
        let sign_on_screen = r.present("sign_on_screen")?;
        let email = r.opt_str8("email")?;
        let phone = r.opt_str8("phone")?;
        let recipient_inn = r.opt_str8("recipient_inn")?;
        let count = r.u8("metadata")?;
        let mut metadata = Metadata::new();
        for _ in 0..count {
            let key = r.str8("metadata")?;
            let value = r.str16("metadata")?;
            if metadata.insert(key, value).is_some() {
                return Err(PayloadError::Invalid {
                    field: "metadata",
                    reason: "a key appears twice",
                });
            }
        }
        Ok(SaleDetails {
            sign_on_screen,
            email,
            phone,
            recipient_inn,
            metadata,
        })
    }
}

/// SHIFT_TOTALS (version 2): the closed shift's approved operations by kind, minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShiftTotals {
    pub pay_count: u32,
    pub pay_total: u64,
    pub refund_count: u32,
    pub refund_total: u64,
    pub cancel_count: u32,
    pub cancel_total: u64,
}

impl ShiftTotals {
    pub(super) fn encode(&self, w: &mut Writer) {
        w.u32(self.pay_count);
        w.u64(self.pay_total);
        w.u32(self.refund_count);
        w.u64(self.refund_total);
        w.u32(self.cancel_count);
        w.u64(self.cancel_total);
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<ShiftTotals, PayloadError> {
        Ok(ShiftTotals {
            pay_count: r.u32("pay_count")?,
            pay_total: r.u64("pay_total")?,
            refund_count: r.u32("refund_count")?,
            refund_total: r.u64("refund_total")?,
            cancel_count: r.u32("cancel_count")?,
            cancel_total: r.u64("cancel_total")?,
        })
    }
}
