//! One paired device's link, kept up: its state as `devices` shows it, and the task that
//! connects, does HELLO, watches the link and reconnects with backoff after a loss (at once
//! after an attempt that was itself a wait for the device: a BLE connect, a scan).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{INITIAL_BACKOFF, MAX_BACKOFF, OPEN_TIMEOUT};
use crate::device::link::{Hello, Role};
use crate::device::reader::CardReader;
use crate::device::registry::Paired;
use crate::device::session::Session;
use crate::device::transport::{Transport, TransportError};

#[derive(Default)]
pub(super) struct LinkState {
    pub(super) session: Option<Arc<Session>>,
    pub(super) reader: Option<Arc<CardReader>>,
    pub(super) hello: Option<Hello>,
    pub(super) last_error: Option<String>,
}

pub(super) struct Managed {
    pub(super) entry: Paired,
    pub(super) role: Role,
    pub(super) state: Mutex<LinkState>,
    pub(super) connected: watch::Sender<bool>,
    pub(super) stop: CancellationToken,
}

impl Managed {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn up(&self, session: Arc<Session>, hello: Hello) {
        let mut s = self.lock();
        s.reader = (self.role == Role::CardReader)
            .then(|| Arc::new(CardReader::new(self.entry.id.clone(), session.clone())));
        s.session = Some(session);
        s.hello = Some(hello);
        s.last_error = None;
        drop(s);
        self.connected.send_replace(true);
    }

    pub(super) fn down(&self, why: Option<String>) {
        let mut s = self.lock();
        s.session = None;
        s.reader = None;
        if why.is_some() {
            s.last_error = why;
        }
        drop(s);
        self.connected.send_replace(false);
    }

    pub(super) fn listing(&self) -> Value {
        let s = self.lock();
        let e = &self.entry;
        let hello = s.hello.as_ref();
        json!({
            "id": e.id,
            "role": e.role,
            "transport": e.transport,
            "address": e.address,
            "baud": e.baud,
            "connected": s.session.as_ref().is_some_and(|x| x.is_up()),
            "model": hello.map_or(&e.model, |h| &h.model),
            "firmware": hello.map_or(&e.firmware, |h| &h.firmware),
            "serial": e.serial,
            "paired_at": e.paired_at,
            "last_error": s.last_error,
        })
    }
}

pub(super) async fn keep_connected(
    m: Arc<Managed>,
    transport: Arc<dyn Transport>,
    mut first: Option<(Arc<Session>, Hello)>,
) {
    let id = m.entry.id.clone();
    let mut backoff = INITIAL_BACKOFF;
    // The last session that did not open went over an unbonded link: later failures keep
    // saying so (a half-open link left by the hang-up can fail the next tries otherwise), until
    // a session opens.
    let mut unbonded = false;
    loop {
        let opened = match first.take() {
            Some(open) => Ok(open),
            None => tokio::select! {
                o = connect(&*transport, m.role) => o.map(|(s, h)| (Arc::new(s), h)),
                _ = m.stop.cancelled() => return,
            },
        };
        match opened {
            // Another device at the paired address (a swapped reader, a reused pty) is never
            // used: its stored results are not the paired one's, so its "never started" would
            // make a charged sale look unpaid. Pairing it again makes it the paired device.
            Ok((session, hello)) if hello.serial != m.entry.serial => {
                drop(session);
                let why = format!(
                    "the device at {} reports serial {}, not the paired {}; it is not used \
                     (if it replaced the paired one, unpair and pair it again)",
                    transport.address(),
                    hello.serial,
                    m.entry.serial
                );
                log::warn!(device = id.as_str(); "{id}: {why}");
                m.down(Some(why));
            }
            Ok((session, hello)) => {
                backoff = INITIAL_BACKOFF;
                unbonded = false;
                log::info!(device = id.as_str(); "{id} connected ({} {}, firmware {})",
                    hello.model, hello.serial, hello.firmware);
                m.up(session.clone(), hello);
                let why = tokio::select! {
                    why = session.closed() => why,
                    _ = m.stop.cancelled() => {
                        m.down(None);
                        return;
                    }
                };
                log::warn!(device = id.as_str(); "{id} link lost: {why}");
                m.down(Some(why.to_string()));
            }
            Err(mut failed) => {
                unbonded |= failed.unbonded;
                if unbonded && !failed.unbonded {
                    failed.why = format!(
                        "{}; its last link was not bonded, and {IGNORED}",
                        failed.why
                    );
                }
                let Failed { why, waited, .. } = failed;
                if waited {
                    // The attempt itself waited for the device (a BLE connect held until the
                    // reader advertises, a scan): wait again at once, so that a reader back on the
                    // air is taken on its first advertisement, not at the next backoff step.
                    log::debug!(device = id.as_str(); "{id}: {why}; waiting for it again");
                    m.down(Some(why));
                    backoff = INITIAL_BACKOFF;
                    continue;
                }
                log::debug!(device = id.as_str(); "{id}: {why}; next try in {backoff:?}");
                m.down(Some(why));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
            // Plugged in (its udev name appeared): connect now, not at the next backoff step.
            _ = transport.appeared() => {
                log::info!(device = id.as_str(); "{id}: {} appeared; connecting",
                    transport.address());
                backoff = INITIAL_BACKOFF;
            }
            _ = m.stop.cancelled() => return,
        }
    }
}

/// Why an attempt to connect failed, and whether it was itself a wait for the device
/// ([`TransportError::Unseen`]: no pause before the next one).
struct Failed {
    why: String,
    waited: bool,
    /// The session did not open over a link that was not private (an unbonded BLE reader).
    unbonded: bool,
}

async fn connect(transport: &dyn Transport, role: Role) -> Result<(Session, Hello), Failed> {
    let conn = transport.connect().await.map_err(|e| Failed {
        waited: matches!(e, TransportError::Unseen(_)),
        why: e.to_string(),
        unbonded: false,
    })?;
    let private = conn.private;
    let failed = match tokio::time::timeout(OPEN_TIMEOUT, Session::open(conn, role)).await {
        Ok(Ok(opened)) => return Ok(opened),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no HELLO within {OPEN_TIMEOUT:?}"),
    };
    Err(Failed {
        why: if private {
            failed
        } else {
            format!("{failed}; the link is not bonded, and {IGNORED}")
        },
        waited: false,
        unbonded: !private,
    })
}

/// Why a session did not open over a link that is not private (an unbonded BLE reader): the
/// likely cause is the missing bond, since a reader that requires encryption ignores whatever
/// an unbonded host writes. Said where the technician looks (`posbridge devices`, the log, the
/// answer of a sale refused for it), after "the link is not bonded, and " or, at a later
/// failure to connect at all, "its last link was not bonded, and ".
const IGNORED: &str = "a reader that requires encryption ignores an unbonded host: bond it \
    with `bluetoothctl pair ADDRESS` (docs/operations.md, \"Bluetooth LE\")";
