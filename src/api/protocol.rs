//! The socket contract, API v1: request parsing and response shapes (DESIGN.md §2).
//!
//! Pure: bytes in, typed values out, no I/O. Every way a request line can be wrong maps to one
//! [`Rejection`] naming the field and the reason, so the server can always answer exactly once.
//! This module must not know about the journal, the engine or any provider.
//!
//! Here: the limits, [`Metadata`] and [`Action`]. `request` parses a line into a [`Request`],
//! `response` holds the v1 answer ([`Response`], [`ErrorType`]), and `lifepos` the LIFE POS
//! Checkout contract (seed document 003): the full action names, their per-request fields
//! (`login`, `password`, `email`, `phone`, `sign_on_screen`, `recipient_inn`) and the
//! contract's answer shape, into which a v1 answer is turned at the edge.

mod lifepos;
mod peek;
mod request;
mod response;

pub use lifepos::{contract_line, LIFEPOS_FIELDS};
pub use peek::{peek, Peeked};
pub use request::{parse_request, valid_request_id, Rejection, Request, Resolution};
pub use response::{ErrorType, Response};

use serde::{Deserialize, Serialize};

/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest `request_id`.
pub const MAX_REQUEST_ID: usize = 64;
/// Largest amount accepted, in minor units (a sanity bound far above any counter sale).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// `metadata`: echoed back unchanged and stored with the result (defined with the operation
/// that carries it).
pub use crate::provider::Metadata;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pay,
    Refund,
    Cancel,
    CloseShift,
    GetResult,
    Status,
    /// posbridge extension: the newest results in the journal, for `posbridge results`.
    Results,
    /// posbridge extension: paired devices and their link state, for `posbridge devices`.
    Devices,
    /// posbridge extension (admin): pair the device at `address` as `role`.
    Pair,
    /// posbridge extension (admin): forget the paired device `id`.
    Unpair,
    /// posbridge extension (admin): list BLE devices advertising the link service, with RSSI.
    Scan,
    /// posbridge extension (admin): settle an unknown outcome on an operator's word
    /// (`decision` charged or not_charged, and a `note`).
    Resolve,
}

/// The prefix of the LIFE POS Checkout action names.
pub const LIFEPAY_PREFIX: &str = "ru.lifepay.checkout.payment_terminal.";

impl Action {
    /// The action named by `s`, accepting the Lifepay names as aliases.
    pub fn parse(s: &str) -> Option<Action> {
        let short = match s.strip_prefix(LIFEPAY_PREFIX) {
            Some(rest) => match rest {
                "transaction.pay" => "pay",
                "transaction.refund" => "refund",
                "transaction.cancel" => "cancel",
                "transaction.get_result" => "get_result",
                "close_shift" => "close_shift",
                _ => return None,
            },
            None => s,
        };
        Some(match short {
            "pay" => Action::Pay,
            "refund" => Action::Refund,
            "cancel" => Action::Cancel,
            "close_shift" => Action::CloseShift,
            "get_result" => Action::GetResult,
            "status" => Action::Status,
            "results" => Action::Results,
            "devices" => Action::Devices,
            "pair" => Action::Pair,
            "unpair" => Action::Unpair,
            "scan" => Action::Scan,
            "resolve" => Action::Resolve,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Refund => "refund",
            Action::Cancel => "cancel",
            Action::CloseShift => "close_shift",
            Action::GetResult => "get_result",
            Action::Status => "status",
            Action::Results => "results",
            Action::Devices => "devices",
            Action::Pair => "pair",
            Action::Unpair => "unpair",
            Action::Scan => "scan",
            Action::Resolve => "resolve",
        }
    }

    /// Needs `api.admin_groups` when that is set: money operations and (un)pairing.
    pub fn needs_admin(self) -> bool {
        self.is_operation()
            || matches!(
                self,
                Action::Pair | Action::Unpair | Action::Scan | Action::Resolve
            )
    }

    /// Answered by the device manager rather than the engine.
    pub fn is_device_action(self) -> bool {
        matches!(
            self,
            Action::Devices | Action::Pair | Action::Unpair | Action::Scan
        )
    }

    /// Operations are journaled and executed once; the other actions only read.
    pub fn is_operation(self) -> bool {
        matches!(
            self,
            Action::Pay | Action::Refund | Action::Cancel | Action::CloseShift
        )
    }

    pub(crate) fn needs_amount(self) -> bool {
        matches!(self, Action::Pay | Action::Refund | Action::Cancel)
    }
}

#[cfg(test)]
mod tests;
