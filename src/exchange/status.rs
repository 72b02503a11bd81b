//! The `status` answer's data: what the daemon runs and how its journal stands.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `status`. Field order is the wire order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// posbridge's version.
    pub version: String,
    pub uptime_s: u64,
    pub default_provider: String,
    /// The configured providers, by name.
    pub providers: Vec<ProviderStatus>,
    /// Operations running now.
    pub running: usize,
    pub journal: JournalStatus,
    /// The request_ids of the unknown outcomes a person must check (`manual_check`).
    pub manual_check: Vec<String>,
}

/// One configured provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    /// Its default currency.
    pub currency: String,
    /// The operations it supports, of pay, refund, cancel, close_shift.
    pub operations: Vec<String>,
}

/// The journal's file, fill and health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalStatus {
    pub path: PathBuf,
    pub capacity: usize,
    pub entries: usize,
    pub in_flight: usize,
    pub unknown: usize,
    /// How many unknown outcomes need a person.
    pub manual_check: usize,
    /// The journal's own health report (commits, failures, free bytes): its keys are the
    /// journal's to choose.
    #[serde(flatten)]
    pub health: Map<String, Value>,
}
