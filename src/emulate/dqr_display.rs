//! The emulated DQR display: prints what it is told to show, one line each, on stdout
//! (`qr PAYLOAD`, `amount 2500 INR`, `status TEXT`, `clear`), flushed at once so a test or a
//! person watching sees it as it happens.

use std::io::Write;
use std::sync::Arc;

use super::Firmware;
use crate::device::link::Message;
use crate::device::session::Sender;

pub struct DqrDisplay;

impl Firmware for DqrDisplay {
    fn handle(self: Arc<Self>, msg: Message, _link: Sender) {
        let one_line = |s: &str| s.replace('\n', "\\n");
        let line = match msg {
            Message::ShowQr { payload } => format!("qr {}", one_line(&payload)),
            Message::ShowAmount { amount, currency } => format!("amount {amount} {currency}"),
            Message::ShowStatus { text } => format!("status {}", one_line(&text)),
            Message::Clear => "clear".into(),
            other => {
                log::debug!("a display ignores {}", crate::device::session::what(&other));
                return;
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
