//! What the customer sees: the amount while a sale runs, a QR code to scan, then the outcome.
//!
//! The engine and the QR providers (Paysera) say *what* to show; a paired DQR display (or
//! nothing) shows it. Showing is best-effort and never blocks or fails a sale: a display that is
//! away, slow or broken costs the customer a picture, never a payment. Implementations queue
//! and return at once.

use std::fmt;

/// One thing to put on the customer's screen. Each replaces what was shown before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Amount in minor units and its ISO 4217 currency.
    Amount { amount: u64, currency: String },
    /// A payload to render as a QR code (e.g. Paysera's `PAYSERA*<location>:<identifier>`).
    Qr(String),
    /// A short outcome word for the customer: `approved`, `declined`, `checking`, ...
    Status(String),
    /// Back to idle.
    Clear,
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Amount { amount, currency } => write!(f, "amount {amount} {currency}"),
            Shown::Qr(payload) => write!(f, "qr {payload}"),
            Shown::Status(status) => write!(f, "status {status}"),
            Shown::Clear => f.write_str("clear"),
        }
    }
}

/// Somewhere to show things. `show` must return at once (queue, drop when full).
pub trait Screen: Send + Sync {
    fn show(&self, what: Shown);
}

/// No display paired: nothing is shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScreen;

impl Screen for NoScreen {
    fn show(&self, _: Shown) {}
}

/// Remembers everything it was asked to show (tests).
#[derive(Debug, Default)]
pub struct RecordingScreen(std::sync::Mutex<Vec<Shown>>);

impl RecordingScreen {
    pub fn shown(&self) -> Vec<Shown> {
        self.0.lock().unwrap().clone()
    }
}

impl Screen for RecordingScreen {
    fn show(&self, what: Shown) {
        self.0.lock().unwrap().push(what);
    }
}
