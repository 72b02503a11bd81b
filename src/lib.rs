//! posbridge: the payment daemon for a shop's counter device.
//!
//! Data flows top-down: [`api`] (the socket) -> [`engine`] (intent, execute, outcome,
//! reconcile) -> [`journal`] (durable results) + [`provider`] (backends), all speaking the
//! typed request and answer of [`exchange`] at the bottom. Providers never touch the journal;
//! the API never talks to a provider; only the API reads and writes request and answer lines.

pub mod api;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod device;
pub mod doctor;
// The emulators play a device's own clock (its firmware's), not the daemon's.
#[allow(clippy::disallowed_methods)]
pub mod emulate;
pub mod engine;
pub mod exchange;
pub mod exporter;
pub mod generate;
pub mod journal;
pub mod metrics;
pub mod paths;
pub mod provider;
pub mod replica;
pub mod secret;
pub mod systemd;
