//! The exchange: the typed request every room above receives and the typed answer it gives.
//!
//! [`Request`] is a request that passed the API's checks, whatever shape it came in (v1 or
//! the LIFE POS contract's: the API keeps the shape to answer in on the side). [`Answer`] is
//! what the engine decides and the journal keeps; its serde form is exactly the v1 answer
//! object (`code`, `request_id`, `metadata`, then `data`, or `error_type`, `reason`,
//! `message`), so a stored answer replays byte for byte, and journals written before these
//! types existed still read.
//!
//! [`Event`] is what a request is told before its answer (never journaled): a progress event
//! a running operation tells its POS through the operation's [`Stages`], or a device a scan
//! heard, through the scan's [`Sightings`].
//!
//! Pure data (and the events' non-blocking queue): no I/O, no parsing of request lines, no
//! rendering of the LIFE POS shape or of event lines (the API does both), and no import of
//! any other posbridge room.

mod action;
mod answer;
mod event;
mod found;
mod request;
mod status;

pub use action::Action;
pub use answer::{Answer, Body, Data, ErrorKind, PrimaryRef, Refusal, Transaction};
pub use event::{Event, Progress, Stage, Stages, EVENT_QUEUE};
pub use found::{Found, Sighting, Sightings};
pub use request::{BondMethod, Request, Resolution};
pub use status::{JournalStatus, ProviderStatus, Status};

/// `metadata`: the POS's own key/value pairs, echoed back unchanged and stored with the
/// result (and with the operation that carries it).
pub type Metadata = std::collections::BTreeMap<String, String>;
