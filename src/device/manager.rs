//! The device manager: one task per paired device that connects, does HELLO, keeps the link
//! alive and reconnects with exponential backoff after a loss (0.5 s doubling to 30 s, reset
//! after a successful HELLO; none after an attempt that waited for the device itself, as a BLE
//! connect does until the reader advertises). It also pairs and unpairs (persisting in the registry) and lends
//! the connected card reader to the `lifepay` provider. It must not touch the journal or
//! decide anything about a sale; the daemon keeps serving while any device is away.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use keeper::{keep_connected, LinkState, Managed};

use super::display::Display;
use super::link::{Hello, Role};
use super::reader::CardReader;
use super::registry::{Address, Paired, Registry, RegistryError};
use super::serial::{SerialTransport, DEFAULT_BAUD};
use super::session::{parse_role, role_name, Session};
use super::transport::{Transport, TransportError};
use crate::exchange::{Sighting, Sightings};

pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest HELLO exchange (4 transmissions and the device's own HELLO fit well inside).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the transport a registry entry names.
pub fn transport_for(
    address: &Address,
    baud: Option<u32>,
) -> Result<Arc<dyn Transport>, TransportError> {
    match address {
        Address::Serial(path) => Ok(Arc::new(SerialTransport::new(
            path,
            baud.unwrap_or(DEFAULT_BAUD),
        ))),
        Address::Ble(addr) => ble_transport(addr),
    }
}

/// The BLE transport (Nordic UART Service through BlueZ) for an `AA:BB:CC:DD:EE:FF` address.
pub fn ble_transport(address: &str) -> Result<Arc<dyn Transport>, TransportError> {
    let transport = super::ble::BleTransport::new(address)
        .map_err(|e| TransportError::Refused(format!("ble:{address}: {e}")))?;
    Ok(Arc::new(transport))
}

/// Why pair or unpair failed, in the API's words: the field at fault (if any), a stable
/// reason and a message for the technician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    pub field: Option<&'static str>,
    pub reason: &'static str,
    pub message: String,
}

impl DeviceError {
    fn new(field: Option<&'static str>, reason: &'static str, message: String) -> Self {
        let message = match field {
            Some(f) => format!("{f}: {message}"),
            None => message,
        };
        DeviceError {
            field,
            reason,
            message,
        }
    }
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub struct DeviceManager {
    registry: Arc<Mutex<Registry>>,
    devices: Mutex<HashMap<String, Arc<Managed>>>,
    /// One pair/unpair at a time: two technicians must not pair the same port at once.
    admin: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl DeviceManager {
    /// Loads the registry and starts a task for every paired device.
    pub fn start(
        state_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Arc<DeviceManager>, RegistryError> {
        let registry = Registry::load(state_dir)?;
        let entries = registry.devices().to_vec();
        let manager = Arc::new(DeviceManager {
            registry: Arc::new(Mutex::new(registry)),
            devices: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            shutdown,
        });
        for entry in entries {
            log::info!(device = entry.id.as_str(); "paired device {} at {}", entry.id, entry.full_address());
            manager.manage(entry, None);
        }
        Ok(manager)
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Managed>>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts keeping `entry` connected (from `first`, an already open session, if given).
    fn manage(&self, entry: Paired, first: Option<(Session, Hello)>) {
        let transport = Address::parse(&entry.full_address())
            .map_err(TransportError::Refused)
            .and_then(|a| transport_for(&a, entry.baud));
        self.manage_with(entry, transport, first);
    }

    fn manage_with(
        &self,
        entry: Paired,
        transport: Result<Arc<dyn Transport>, TransportError>,
        first: Option<(Session, Hello)>,
    ) {
        let first = first.map(|(s, h)| (Arc::new(s), h));
        let role = parse_role(&entry.role).unwrap_or(Role::CardReader);
        let (connected, _) = watch::channel(false);
        let managed = Arc::new(Managed {
            entry: entry.clone(),
            registry: self.registry.clone(),
            role,
            state: Mutex::new(LinkState {
                bond: entry.bond.clone(),
                ..LinkState::default()
            }),
            connected,
            stop: self.shutdown.child_token(),
        });
        if let Some(old) = self.devices().insert(entry.id.clone(), managed.clone()) {
            old.stop.cancel();
        }
        if let Some((session, hello)) = &first {
            // Shown as connected at once: `pair` answers with this state.
            managed.up(session.clone(), hello.clone());
        }
        match transport {
            Ok(t) => {
                tokio::spawn(keep_connected(managed, t, first));
            }
            Err(e) => {
                log::error!(device = entry.id.as_str(); "{}: {e}", entry.id);
                managed.down(Some(e.to_string()));
            }
        }
    }

    /// Every paired device with its link state, for `posbridge devices`.
    pub fn list(&self) -> Vec<Value> {
        let order: Vec<String> = self
            .registry()
            .devices()
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let devices = self.devices();
        order
            .iter()
            .filter_map(|id| devices.get(id).map(|m| m.listing()))
            .collect()
    }

    /// Listens `seconds` for BLE devices advertising the link service (Nordic UART Service);
    /// each with address, name, RSSI, whether BlueZ holds a bond with it and whether it is
    /// paired already. Each device is told to `sightings` as it is heard (when anyone listens).
    pub async fn scan(&self, seconds: u64, sightings: Sightings) -> Result<Value, DeviceError> {
        let duration = Duration::from_secs(seconds);
        let scanning = if sightings.listening() {
            let paired = self.ble_paired();
            super::ble::scan_telling(duration, move |e| {
                sightings.tell(e.sighting(paired.contains(&e.address.to_ascii_uppercase())))
            })
            .await
        } else {
            super::ble::scan(duration).await
        };
        let found =
            scanning.map_err(|e| DeviceError::new(None, "ble_unavailable", e.to_string()))?;
        let paired = self.ble_paired();
        let devices: Vec<Sighting> = found
            .iter()
            .map(|e| e.sighting(paired.contains(&e.address.to_ascii_uppercase())))
            .collect();
        Ok(serde_json::json!({"found": devices}))
    }

    /// The addresses of the paired BLE devices, upper case.
    fn ble_paired(&self) -> HashSet<String> {
        self.registry()
            .devices()
            .iter()
            .filter(|d| d.transport == "ble")
            .map(|d| d.address.to_ascii_uppercase())
            .collect()
    }

    fn listing(&self, id: &str) -> Option<Value> {
        self.devices().get(id).map(|m| m.listing())
    }

    /// The paired card reader (`id`, or the only one), waiting up to `wait` for it to be
    /// connected. Errors say which reader and why, for the cashier.
    pub async fn card_reader(
        &self,
        id: Option<&str>,
        wait: Duration,
    ) -> Result<Arc<CardReader>, String> {
        let managed = self.connected(Role::CardReader, id, wait).await?;
        let state = managed.lock();
        match &state.reader {
            Some(r) if r.session().is_up() => Ok(r.clone()),
            _ => Err(not_connected(&managed.entry.id, &state)),
        }
    }

    /// Whether a DQR display is paired (connected or not): a cheap look, no waiting.
    pub fn has_display(&self) -> bool {
        self.devices().values().any(|m| m.role == Role::DqrDisplay)
    }

    /// The paired DQR display (`id`, or the only one), connected within `wait`.
    pub async fn display(&self, id: Option<&str>, wait: Duration) -> Result<Display, String> {
        let managed = self.connected(Role::DqrDisplay, id, wait).await?;
        let state = managed.lock();
        match &state.session {
            Some(s) if s.is_up() => Ok(Display::new(s.clone())),
            _ => Err(not_connected(&managed.entry.id, &state)),
        }
    }

    /// The one paired device of `role` (named `id`, if given), after waiting up to `wait` for
    /// it to be connected (it may still not be: callers check).
    async fn connected(
        &self,
        role: Role,
        id: Option<&str>,
        wait: Duration,
    ) -> Result<Arc<Managed>, String> {
        let what = match role {
            Role::DqrDisplay => "DQR display",
            _ => "card reader",
        };
        let managed = {
            let devices = self.devices();
            let found: Vec<&Arc<Managed>> = devices
                .values()
                .filter(|m| m.role == role && id.is_none_or(|id| m.entry.id == id))
                .collect();
            match (found.as_slice(), id) {
                ([one], _) => (*one).clone(),
                ([], Some(id)) => return Err(format!("the {what} {id} is not paired")),
                ([], None) => {
                    return Err(format!(
                        "no {what} is paired; pair one with `posbridge pair`"
                    ))
                }
                (_, _) => {
                    return Err(format!(
                        "several {what}s are paired; name the one to use in the configuration"
                    ))
                }
            }
        };
        let mut connected = managed.connected.subscribe();
        let _ = tokio::time::timeout(wait, connected.wait_for(|up| *up)).await;
        Ok(managed)
    }
}

fn not_connected(id: &str, state: &LinkState) -> String {
    let why = state
        .last_error
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    format!("{id} is not connected{why}")
}

mod keeper;
mod pairing;
use pairing::bond_words;
#[cfg(test)]
mod tests;
