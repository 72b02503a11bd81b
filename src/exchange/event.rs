//! Progress events: what a running operation can tell its POS before its one answer
//! (`"progress": true` on the request), e.g. that the card was read or the QR code shown.
//! [`Event`] is every kind a request may be told before its answer: an operation's stages
//! (here) and the devices a scan hears (`found`).
//!
//! Not durable and not evidence: an event is never journaled, never changes an outcome or what
//! `get_result` answers (that is `provider::Progress`, the journaled notes). A provider, or the
//! reader session under it, calls [`Stages::tell`] on the operation it was handed; the engine
//! attached a sender only when the request asked for events and closes it once the provider
//! is done, so no event can come after the outcome. Telling never waits: the queue is
//! bounded and an event that does not fit (a client that does not read) is dropped.
//!
//! Data and a non-blocking send only: no I/O, no rendering (the API writes the lines).

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

/// How many events may wait for the connection to write them; more are dropped.
pub const EVENT_QUEUE: usize = 32;

/// A stage of an operation, as a backend or the card reader reported it. Only what one of
/// them truly told is ever sent (docs/api.md lists which provider tells which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The backend accepted the request.
    Sent,
    /// The request is on the payment terminal (the reader acknowledged it; a terminal was
    /// asked to take the payment).
    OnTerminal,
    /// The backend says it waits for the customer.
    WaitingForCustomer,
    /// The reader read the card.
    CardRead,
    /// The reader asks the customer for the PIN.
    PinEntry,
    /// The payment is being authorised (the reader asks its host; a backend confirms).
    Authorising,
    /// The QR code is on the customer's display.
    QrShown,
    /// The customer approved the payment in the app (the backend reserved it).
    CustomerApproved,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Sent => "sent",
            Stage::OnTerminal => "on_terminal",
            Stage::WaitingForCustomer => "waiting_for_customer",
            Stage::CardRead => "card_read",
            Stage::PinEntry => "pin_entry",
            Stage::Authorising => "authorising",
            Stage::QrShown => "qr_shown",
            Stage::CustomerApproved => "customer_approved",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request is told before its one answer (each kind its own event line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A stage of a running operation.
    Progress(Progress),
    /// A device a scan heard (`scan` with `"progress": true`).
    Found(super::found::Found),
}

impl Event {
    /// The stage, for a progress event.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Event::Progress(p) => Some(p.stage),
            Event::Found(_) => None,
        }
    }
}

/// One progress event of the operation `request_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub request_id: String,
    pub stage: Stage,
    /// For the cashier, in a few words.
    pub message: String,
}

/// Where an operation's stages go while it runs: nowhere (the default, and after [`close`]),
/// or the queue of the connection that asked. Clones share one slot, so closing one closes
/// them all.
///
/// [`close`]: Stages::close
#[derive(Clone, Default)]
pub struct Stages {
    slot: Option<Arc<Mutex<Option<Sink>>>>,
}

struct Sink {
    request_id: String,
    queue: mpsc::Sender<Event>,
    last: Option<Stage>,
}

impl Stages {
    /// Stages of `request_id`, sent to `queue`.
    pub fn to(request_id: &str, queue: mpsc::Sender<Event>) -> Stages {
        Stages {
            slot: Some(Arc::new(Mutex::new(Some(Sink {
                request_id: request_id.to_owned(),
                queue,
                last: None,
            })))),
        }
    }

    /// Whether anyone listens (a provider may skip building a message when not).
    pub fn listening(&self) -> bool {
        self.slot
            .as_ref()
            .is_some_and(|s| s.lock().unwrap_or_else(|p| p.into_inner()).is_some())
    }

    /// Tells `stage`. Never waits: nothing when nobody listens, or the queue is full (the
    /// event is dropped), or `stage` is the one told last (a backend polled twice says the
    /// same thing twice; the POS hears it once).
    pub fn tell(&self, stage: Stage, message: impl Into<String>) {
        let Some(slot) = &self.slot else { return };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = slot.as_mut() else { return };
        if sink.last == Some(stage) {
            return;
        }
        let event = Event::Progress(Progress {
            request_id: sink.request_id.clone(),
            stage,
            message: message.into(),
        });
        match sink.queue.try_send(event) {
            Ok(()) => sink.last = Some(stage),
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::debug!(request_id = sink.request_id.as_str();
                    "progress event {stage} dropped: the client does not read its events");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => *slot = None,
        }
    }

    /// No more events, from any clone: the engine calls it once the provider is done.
    pub fn close(&self) {
        if let Some(slot) = &self.slot {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// Always equal: where events go is no part of what an operation is.
impl PartialEq for Stages {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Stages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.listening() {
            "Stages(listening)"
        } else {
            "Stages(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_go_to_the_queue_once_each_never_wait_and_stop_at_close() {
        Stages::default().tell(Stage::Sent, "nobody listens");
        let (tx, mut rx) = mpsc::channel(2);
        let stages = Stages::to("r1", tx);
        let clone = stages.clone();
        stages.tell(Stage::Sent, "accepted");
        clone.tell(Stage::Sent, "accepted again");
        clone.tell(Stage::WaitingForCustomer, "waiting");
        stages.tell(
            Stage::CustomerApproved,
            "the queue is full: dropped, not waited for",
        );
        let Event::Progress(first) = rx.try_recv().unwrap() else {
            panic!("not a progress event");
        };
        assert_eq!(
            (
                first.request_id.as_str(),
                first.stage,
                first.message.as_str()
            ),
            ("r1", Stage::Sent, "accepted")
        );
        assert_eq!(
            rx.try_recv().unwrap().stage(),
            Some(Stage::WaitingForCustomer)
        );
        assert!(rx.try_recv().is_err());
        stages.close();
        assert!(!clone.listening());
        clone.tell(Stage::Authorising, "after close");
        assert!(rx.try_recv().is_err(), "nothing after close");
    }
}
