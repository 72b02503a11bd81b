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
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingScreen(std::sync::Mutex<Vec<Shown>>);

#[cfg(test)]
impl RecordingScreen {
    pub fn shown(&self) -> Vec<Shown> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl Screen for RecordingScreen {
    fn show(&self, what: Shown) {
        self.0.lock().unwrap().push(what);
    }
}

/// The paired DQR display as the customer's screen. `show` queues (up to [`QUEUE`] items,
/// newer ones dropped beyond that) and one task sends them in order. With no display paired
/// nothing is queued; a display not connected right now is skipped, and one that stops
/// answering costs at most [`SEND_LIMIT`] per item — never the sale's time.
pub struct DisplayScreen {
    queue: tokio::sync::mpsc::Sender<Shown>,
    devices: std::sync::Arc<super::manager::DeviceManager>,
}

/// Items waiting for the display.
pub const QUEUE: usize = 16;
/// Longest one item may take to reach the display.
pub const SEND_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

impl DisplayScreen {
    /// Starts the sending task (on the current tokio runtime); it ends with `shutdown`.
    pub fn start(
        devices: std::sync::Arc<super::manager::DeviceManager>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> DisplayScreen {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Shown>(QUEUE);
        let screen = DisplayScreen {
            queue: tx,
            devices: devices.clone(),
        };
        tokio::spawn(async move {
            loop {
                let what = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    what = rx.recv() => match what {
                        Some(what) => what,
                        None => return,
                    },
                };
                let display = match devices.display(None, std::time::Duration::ZERO).await {
                    Ok(display) => display,
                    Err(why) => {
                        log::debug!("not shown ({what}): {why}");
                        continue;
                    }
                };
                let sent = match &what {
                    Shown::Amount { amount, currency } => {
                        match super::link::Currency::new(currency) {
                            Ok(c) => {
                                tokio::time::timeout(SEND_LIMIT, display.show_amount(*amount, c))
                                    .await
                            }
                            Err(e) => {
                                log::warn!("not shown ({what}): {e}");
                                continue;
                            }
                        }
                    }
                    Shown::Qr(payload) => {
                        tokio::time::timeout(SEND_LIMIT, display.show_qr(payload)).await
                    }
                    Shown::Status(text) => {
                        tokio::time::timeout(SEND_LIMIT, display.show_status(text)).await
                    }
                    Shown::Clear => tokio::time::timeout(SEND_LIMIT, display.clear()).await,
                };
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::warn!(device = "dqr-display"; "not shown ({what}): {e}"),
                    Err(_) => log::warn!(device = "dqr-display";
                        "not shown ({what}): the display did not answer within {} s",
                        SEND_LIMIT.as_secs()),
                }
            }
        });
        screen
    }
}

impl Screen for DisplayScreen {
    fn show(&self, what: Shown) {
        // With no display paired there is nothing to send, so the sending task is not woken.
        // Waking it twice a sale for nothing woke the runtime's other worker thread each sale
        // (docs/performance.md, "The display task's wake-ups").
        if !self.devices.has_display() {
            return;
        }
        if let Err(e) = self.queue.try_send(what) {
            log::debug!("display queue full or closed; dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // On this (current-thread) runtime the sending task runs only when the test awaits, so
    // what `show` queued is still in the queue when it is looked at.
    #[tokio::test]
    async fn with_no_display_paired_nothing_is_queued_for_the_sending_task() {
        let dir = tempfile::tempdir().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let devices =
            super::super::manager::DeviceManager::start(dir.path(), shutdown.clone()).unwrap();
        let screen = DisplayScreen::start(devices, shutdown);
        screen.show(Shown::Amount {
            amount: 2500,
            currency: "EUR".into(),
        });
        screen.show(Shown::Status("approved".into()));
        assert_eq!(
            screen.queue.capacity(),
            QUEUE,
            "queued with no display paired"
        );
    }
}
