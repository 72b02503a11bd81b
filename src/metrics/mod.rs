//! Counters, histograms and the Prometheus text format: the leaf that every layer may update.
//!
//! The engine counts outcomes and times the backends' calls, the journal's writer times its
//! commits, the daemon's main loop records the watchdog; `exporter` reads them all (and asks the
//! journal and the device manager for what is cheaper to look up at scrape time) and serves the
//! page. Nothing here knows what a sale is, does I/O, or points at another module of this crate.
//!
//! Hand-written rather than `prometheus-client`: the text format (version 0.0.4) is one page,
//! most values are read at scrape time from the journal and the device manager rather than
//! kept in a registry, and a counter box is better off without one more dependency to audit.

mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use text::Page;

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts by label values (few distinct combinations: providers x actions x outcomes).
#[derive(Debug, Default)]
pub struct CounterVec(Mutex<BTreeMap<Vec<String>, u64>>);

impl CounterVec {
    pub fn inc(&self, labels: &[&str]) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        *map.entry(key).or_insert(0) += 1;
    }

    /// Every label combination seen so far with its count, in a stable order.
    pub fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// A histogram of durations over fixed bucket bounds (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more for above the last bound.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// From half a millisecond (an fsync on a good SSD) to seconds (a dying SD card).
pub const COMMIT_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) per bucket, then the sum in seconds and the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut out = Vec::with_capacity(self.bounds.len());
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            out.push((*bound, cumulative));
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (out, sum, count)
    }
}

/// From a tenth of a millisecond (the in-process `sim`) to minutes (a customer at a terminal).
pub const CALL_BOUNDS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Histograms by label values, all over the same bounds (few distinct combinations:
/// providers x actions).
#[derive(Debug)]
pub struct HistogramVec {
    bounds: &'static [f64],
    map: Mutex<BTreeMap<Vec<String>, Histogram>>,
}

impl HistogramVec {
    pub fn new(bounds: &'static [f64]) -> HistogramVec {
        HistogramVec {
            bounds,
            map: Mutex::default(),
        }
    }

    pub fn observe(&self, labels: &[&str], d: Duration) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        map.entry(key)
            .or_insert_with(|| Histogram::new(self.bounds))
            .observe(d);
    }

    /// Every label combination seen so far with its histogram's snapshot, in a stable order.
    #[allow(clippy::type_complexity)]
    pub fn snapshot(&self) -> Vec<(Vec<String>, (Vec<(f64, u64)>, f64, u64))> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, h)| (k.clone(), h.snapshot())).collect()
    }
}

/// The main loop's liveness check: when the journal last proved it commits (and WATCHDOG=1
/// went to systemd, when its watchdog is on), and whether the last check failed, so that the
/// ping is being withheld and systemd will restart the daemon.
#[derive(Debug)]
pub struct Watchdog {
    /// systemd's watchdog is on for this process (`WATCHDOG_USEC`).
    pub enabled: bool,
    last_ok: Mutex<Instant>,
    withheld: AtomicBool,
}

impl Watchdog {
    pub fn new(enabled: bool) -> Watchdog {
        Watchdog {
            enabled,
            last_ok: Mutex::new(Instant::now()),
            withheld: AtomicBool::new(false),
        }
    }

    pub fn ok(&self) {
        *self.last_ok.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.withheld.store(false, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.withheld.store(true, Ordering::Relaxed);
    }

    pub fn since_ok(&self) -> Duration {
        self.last_ok
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    pub fn withheld(&self) -> bool {
        self.withheld.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(buckets, vec![(0.001, 1), (0.01, 2)]);
        assert_eq!(count, 3);
        assert!((sum - 0.0555).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn counter_vec_keeps_each_label_set_apart() {
        let c = CounterVec::default();
        c.inc(&["sim", "pay", "approved"]);
        c.inc(&["sim", "pay", "approved"]);
        c.inc(&["sim", "pay", "declined"]);
        let snap = c.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].1, 2);
    }
}
