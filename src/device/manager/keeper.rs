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
use crate::device::registry::{Bond, Paired, Registry};
use crate::device::session::Session;
use crate::device::transport::{BleFacts, Transport, TransportError};

#[derive(Default)]
pub(super) struct LinkState {
    pub(super) session: Option<Arc<Session>>,
    pub(super) reader: Option<Arc<CardReader>>,
    pub(super) hello: Option<Hello>,
    pub(super) last_error: Option<String>,
    /// BLE: the bond as recorded (the entry's, until BlueZ is seen without it).
    pub(super) bond: Option<Bond>,
    /// BLE: what BlueZ said when the link last opened.
    pub(super) ble: Option<BleFacts>,
}

pub(super) struct Managed {
    pub(super) entry: Paired,
    /// The registry, to forget a bond BlueZ no longer holds.
    pub(super) registry: Arc<Mutex<Registry>>,
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
        let mut listing = json!({
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
        });
        if e.transport == "ble" {
            let facts = s.ble.unwrap_or_default();
            listing["bond"] = match &s.bond {
                Some(b) => json!({
                    "method": b.method,
                    "authenticated": b.authenticated(),
                    "allowed_unauthenticated": b.allowed_unauthenticated,
                    "bonded_at": b.bonded_at,
                }),
                None => Value::Null,
            };
            listing["bonded"] = json!(facts.bonded);
            listing["rssi"] = json!(facts.rssi);
        }
        listing
    }

    /// Takes in what BlueZ said of a link that just opened, and answers the bond that holds
    /// now. BlueZ without the bond: the recorded one is gone for good (a bond made again
    /// outside posbridge is not known to be authenticated), in memory and in the registry.
    pub(super) fn saw(&self, facts: BleFacts) -> Option<Bond> {
        let mut s = self.lock();
        s.ble = Some(facts);
        if facts.bonded == Some(false) {
            if let Some(old) = s.bond.take() {
                let id = self.entry.id.as_str();
                log::warn!(device = id; "{id}: BlueZ no longer holds the bond made {} ({}); no \
                    secrets go over its link until it is paired again", old.bonded_at, old.method);
                let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
                // Only the bond this task knew: a pairing since has saved a newer one.
                if let Some(entry) = registry.get(id).filter(|e| e.bond.as_ref() == Some(&old)) {
                    let entry = Paired {
                        bond: None,
                        ..entry.clone()
                    };
                    if let Err(e) = registry.upsert(entry) {
                        log::error!(device = id; "{id}: could not save that its bond is gone: {e}");
                    }
                }
            }
        }
        s.bond.clone()
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
                o = connect(&m, &*transport) => o.map(|(s, h)| (Arc::new(s), h)),
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
                // A bond that is not authenticated is said at every connect while it lives.
                if let Some(b) = m.lock().bond.clone().filter(|b| !b.authenticated()) {
                    log::warn!(device = id.as_str(); "{id}: {}",
                        super::bond_words(Some(&b)));
                }
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

async fn connect(m: &Managed, transport: &dyn Transport) -> Result<(Session, Hello), Failed> {
    let mut conn = transport.connect().await.map_err(|e| Failed {
        waited: matches!(e, TransportError::Unseen(_)),
        why: e.to_string(),
        unbonded: false,
    })?;
    let bonded = conn.private;
    if let Some(facts) = conn.ble {
        let bond = m.saw(facts);
        conn.private &= bond.as_ref().is_some_and(Bond::carries_secrets);
    }
    let failed = match tokio::time::timeout(OPEN_TIMEOUT, Session::open(conn, m.role)).await {
        Ok(Ok(opened)) => return Ok(opened),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no HELLO within {OPEN_TIMEOUT:?}"),
    };
    Err(Failed {
        why: if bonded {
            failed
        } else {
            format!("{failed}; the link is not bonded, and {IGNORED}")
        },
        waited: false,
        unbonded: !bonded,
    })
}

/// Why a session did not open over a link that is not private (an unbonded BLE reader): the
/// likely cause is the missing bond, since a reader that requires encryption ignores whatever
/// an unbonded host writes. Said where the technician looks (`posbridge devices`, the log, the
/// answer of a sale refused for it), after "the link is not bonded, and " or, at a later
/// failure to connect at all, "its last link was not bonded, and ".
const IGNORED: &str = "a reader that requires encryption ignores an unbonded host: pair it \
    again with `posbridge pair ble:ADDRESS --role ROLE`, which bonds it (docs/operations.md, \
    \"Bluetooth LE\")";
