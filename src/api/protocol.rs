//! The socket contract, API v1 and the LIFE POS Checkout contract: reading a request line
//! (DESIGN.md §2).
//!
//! Pure: bytes in, typed values out, no I/O. A line becomes the exchange's [`Request`] plus
//! the [`Shape`] its answer must take, in one place ([`parse`]); every way a line can be wrong
//! maps to one [`Rejection`] naming the field and the reason, so the server can always answer
//! exactly once. What a line that will not be parsed asks for (a cut line, a refused
//! connection) is read by [`peek`]. How an answer is written is `api::render`'s. This module
//! must not know about the journal, the engine or any provider.
//!
//! Here: the limits and [`parse`]. `request` checks a line's fields, `lifepos` holds the
//! LIFE POS Checkout contract's (seed document 003) action names and per-request fields
//! (`login`, `password`, `email`, `phone`, `sign_on_screen`, `recipient_inn`).

mod lifepos;
mod peek;
mod request;

pub use lifepos::{action_of, LIFEPAY_PREFIX, LIFEPOS_FIELDS};
pub use peek::{peek, Peeked};
pub use request::{parse_request, valid_request_id, Rejection};

pub use crate::exchange::{Action, Metadata, Request, Resolution};

/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest `request_id`.
pub const MAX_REQUEST_ID: usize = 64;
/// Largest amount accepted, in minor units (a sanity bound far above any counter sale).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// The shape an answer must take: the one its request was written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// posbridge's own answer object.
    V1,
    /// The LIFE POS Checkout contract's, for a request that named its action the contract's
    /// way: `action` as sent, and the request_id as sent when the request was refused before
    /// it could be read (echoed even when it is not a valid id).
    LifePos {
        action: String,
        sent_id: Option<String>,
    },
}

/// One request line read: the request, or why it was refused, and the shape to answer in.
#[derive(Debug)]
pub struct Parsed {
    pub request: Result<Request, Rejection>,
    pub shape: Shape,
}

/// Reads one request line (without its newline).
pub fn parse(line: &[u8]) -> Parsed {
    match request::read(line) {
        Ok((request, lifepos_action)) => Parsed {
            request: Ok(request),
            shape: lifepos_action.map_or(Shape::V1, |action| Shape::LifePos {
                action,
                sent_id: None,
            }),
        },
        Err(rejection) => Parsed {
            shape: match &rejection.lifepos_action {
                Some(action) => Shape::LifePos {
                    action: action.clone(),
                    sent_id: peek(line).request_id,
                },
                None => Shape::V1,
            },
            request: Err(rejection),
        },
    }
}

/// The shape to answer a line in that will not be parsed (`start`: what arrived of it, maybe
/// only its beginning, maybe nothing): the contract's when its action can be read and is one
/// of the contract's, with its request_id echoed as sent; else v1.
pub fn shape_of_start(start: &[u8]) -> Shape {
    let peeked = peek(start);
    match peeked.action.filter(|a| a.starts_with(LIFEPAY_PREFIX)) {
        Some(action) => Shape::LifePos {
            action,
            sent_id: peeked.request_id,
        },
        None => Shape::V1,
    }
}

#[cfg(test)]
mod tests;
