//! The metrics page: what an operator of many counters scrapes with Prometheus.
//!
//! Served beside the API socket (`endpoint.rs`, its HTTP/1 by hyper), off unless
//! `[metrics] listen` is set. A scrape reads the engine's counters, the journal (unknown
//! outcomes, commit latency, whether it writes), the device manager (each paired device's link)
//! and the main loop's watchdog state, and only what they expose for reading. It must never
//! move money (it starts, settles and resolves no operation), never write the journal, never
//! talk to a backend or a device, and never wait for a sale. Like the API, it sits on top: it
//! may read the engine, the journal and the devices, and nothing below points back at it.

pub mod endpoint;

use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::device::manager::DeviceManager;
use crate::engine::Engine;
use crate::metrics::{Page, Watchdog};

/// Everything a scrape reads.
pub struct Sources {
    pub engine: Arc<Engine>,
    pub devices: Arc<DeviceManager>,
    pub watchdog: Arc<Watchdog>,
    /// When the daemon started, Unix seconds.
    pub started: u64,
}

/// Outcomes shown as 0 before the first one, so that `increase()` sees the first sale.
const SEEDED_OUTCOMES: &[&str] = &["approved", "declined", "failed"];

/// A counter's rows with a 0 row added for each of `keys` it has not counted yet, sorted.
fn with_zeros(
    mut rows: Vec<(Vec<String>, u64)>,
    keys: impl Iterator<Item = Vec<String>>,
) -> Vec<(Vec<String>, u64)> {
    for key in keys {
        if !rows.iter().any(|(k, _)| *k == key) {
            rows.push((key, 0));
        }
    }
    rows.sort();
    rows
}

impl Sources {
    /// The page in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut p = Page::new();
        let engine = &self.engine;
        let journal = engine.journal();

        p.family(
            "posbridge_build_info",
            "gauge",
            "Always 1; the version of the posbridge daemon in a label.",
        );
        p.sample(
            "posbridge_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        p.single(
            "posbridge_start_time_seconds",
            "gauge",
            "When the daemon started (Unix time).",
            self.started as f64,
        );

        let stats = engine.stats();
        let providers = engine.provider_names();
        let finished = with_zeros(
            stats.finished.snapshot(),
            providers.iter().flat_map(|provider| {
                SEEDED_OUTCOMES
                    .iter()
                    .map(|outcome| vec![(*provider).into(), "pay".into(), (*outcome).into()])
            }),
        );
        p.family(
            "posbridge_operations_total",
            "counter",
            "Operations with a final outcome, by provider, action (pay, refund, cancel, \
             close_shift) and outcome (approved, declined, failed, closed, resolved_charged, \
             resolved_not_charged). An operation first answered unknown is counted here once \
             its real outcome is found.",
        );
        for (labels, n) in &finished {
            p.sample(
                "posbridge_operations_total",
                &[
                    ("provider", &labels[0]),
                    ("action", &labels[1]),
                    ("outcome", &labels[2]),
                ],
                *n as f64,
            );
        }
        let went_unknown = with_zeros(
            stats.unknown.snapshot(),
            providers
                .iter()
                .map(|provider| vec![(*provider).into(), "pay".into()]),
        );
        p.family(
            "posbridge_operations_went_unknown_total",
            "counter",
            "Operations whose outcome became unknown (timeout, lost link, crash), by provider \
             and action.",
        );
        for (labels, n) in &went_unknown {
            p.sample(
                "posbridge_operations_went_unknown_total",
                &[("provider", &labels[0]), ("action", &labels[1])],
                *n as f64,
            );
        }

        p.single(
            "posbridge_operations_in_flight",
            "gauge",
            "Operations this daemon is carrying out right now.",
            engine.running() as f64,
        );
        let counts = journal.counts().unwrap_or_default();
        p.single(
            "posbridge_operations_unknown",
            "gauge",
            "Operations whose outcome is unknown now (in the journal, waiting for \
             reconciliation or an operator).",
            counts.unknown as f64,
        );
        p.single(
            "posbridge_operations_manual_check",
            "gauge",
            "Operations whose outcome stayed unknown past daemon.manual_check_after_ms (or \
             whose backend contradicted its own evidence that long): a person must settle \
             each with `posbridge resolve`.",
            engine.manual_checks().len() as f64,
        );
        let oldest = journal
            .oldest_unknown()
            .ok()
            .flatten()
            .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok())
            .map_or(0.0, |at| {
                (crate::clock::now() - at).as_seconds_f64().max(0.0)
            });
        p.single(
            "posbridge_operations_unknown_oldest_age_seconds",
            "gauge",
            "Seconds since the oldest operation whose outcome is unknown was started; 0 when \
             none is unknown.",
            oldest,
        );
        p.single(
            "posbridge_reconcile_queue_length",
            "gauge",
            "Operations the background reconciler is watching (queued or being checked).",
            stats.reconciling() as f64,
        );

        p.histogram_vec(
            "posbridge_provider_call_duration_seconds",
            "How long each call to a backend took, from the call to its outcome (a timeout \
             counts at the provider's limit).",
            &["provider", "action"],
            &stats.backend,
        );

        let commits = journal.commits();
        p.histogram(
            "posbridge_journal_commit_duration_seconds",
            "How long each journal transaction that wrote took to commit, fsync included.",
            &commits.latency,
        );
        p.single(
            "posbridge_journal_commit_failures_total",
            "counter",
            "Journal transactions that wrote and did not commit (disk full, I/O error).",
            commits.failures.get() as f64,
        );
        p.single(
            "posbridge_journal_writable",
            "gauge",
            "1 while the journal commits, 0 while its writes fail (no sale can start).",
            if journal.health().failing() { 0.0 } else { 1.0 },
        );

        p.single(
            "posbridge_sqlite_memory_bytes",
            "gauge",
            "Bytes of heap SQLite holds in this process: the page caches of the journal's \
             connections and of a backend's own store, schemas and prepared statements.",
            crate::journal::memory::sqlite_memory_used() as f64,
        );
        p.family(
            "posbridge_sqlite_cache_bytes",
            "gauge",
            "Bytes of page cache each SQLite connection holds (part of \
             posbridge_sqlite_memory_bytes): the journal's writer and reader, and the sim \
             backend's ledger (the sim backend is always built).",
        );
        let (writer, reader) = journal.cache_bytes();
        let mut caches = vec![
            ("journal_writer".to_owned(), writer),
            ("journal_reader".to_owned(), reader),
        ];
        for provider in engine.providers().all() {
            if let Some(bytes) = provider.store_cache_bytes() {
                caches.push((format!("provider_{}", provider.name()), bytes));
            }
        }
        for (connection, bytes) in &caches {
            p.sample(
                "posbridge_sqlite_cache_bytes",
                &[("connection", connection)],
                *bytes as f64,
            );
        }

        p.family(
            "posbridge_device_connected",
            "gauge",
            "1 while the link to a paired device (card reader, DQR display) is up, else 0.",
        );
        for d in self.devices.list() {
            let text = |k: &str| d[k].as_str().unwrap_or("").to_owned();
            let (id, role, transport) = (text("id"), text("role"), text("transport"));
            let up = d["connected"].as_bool().unwrap_or(false);
            p.sample(
                "posbridge_device_connected",
                &[("device", &id), ("role", &role), ("transport", &transport)],
                if up { 1.0 } else { 0.0 },
            );
        }

        let w = &self.watchdog;
        p.single(
            "posbridge_watchdog_enabled",
            "gauge",
            "1 when systemd's watchdog watches this daemon (WatchdogSec), else 0.",
            if w.enabled { 1.0 } else { 0.0 },
        );
        p.single(
            "posbridge_watchdog_last_ping_age_seconds",
            "gauge",
            "Seconds since the main loop last found the journal committing (and sent \
             WATCHDOG=1 when the watchdog is enabled).",
            w.since_ok().as_secs_f64(),
        );
        p.single(
            "posbridge_watchdog_withheld",
            "gauge",
            "1 while the daemon withholds WATCHDOG=1 because the journal failed its last \
             check: systemd will restart it.",
            if w.withheld() { 1.0 } else { 0.0 },
        );
        p.finish()
    }
}
