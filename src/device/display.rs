//! The DQR display role over a link session (docs/link-protocol.md §10): show a QR code, an
//! amount, a status line, or clear. Each call returns once the display acknowledged it; the
//! display reports nothing else. It must not decide what to show (that is the caller's).

use std::sync::Arc;

use super::link::{Currency, Message};
use super::session::{LinkError, Session};

#[derive(Debug, Clone)]
pub struct Display {
    session: Arc<Session>,
}

impl Display {
    pub fn new(session: Arc<Session>) -> Display {
        Display { session }
    }

    pub async fn show_qr(&self, payload: &str) -> Result<(), LinkError> {
        self.session
            .send(Message::ShowQr {
                payload: payload.to_owned(),
            })
            .await
    }

    pub async fn show_amount(&self, amount: u64, currency: Currency) -> Result<(), LinkError> {
        self.session
            .send(Message::ShowAmount { amount, currency })
            .await
    }

    pub async fn show_status(&self, text: &str) -> Result<(), LinkError> {
        self.session
            .send(Message::ShowStatus {
                text: text.to_owned(),
            })
            .await
    }

    pub async fn clear(&self) -> Result<(), LinkError> {
        self.session.send(Message::Clear).await
    }
}
