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

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use keeper::{keep_connected, LinkState, Managed};

use super::display::Display;
use super::link::{Hello, Role};
use super::reader::CardReader;
use super::registry::{Address, Bond, Paired, Registry, RegistryError};
use super::serial::{SerialTransport, DEFAULT_BAUD};
use super::session::{parse_role, role_name, LinkError, Session};
use super::transport::{Transport, TransportError};
use crate::exchange::{BondMethod, Sighting, Sightings};

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

    /// Connects to the device at `address`, checks that it answers HELLO as `role`, records
    /// it in the registry and keeps it connected from now on. `bond`, BLE only: how the
    /// technician's CLI made the bond (`None`: it did not say, as a bond made with
    /// bluetoothctl); `allow_unauthenticated`: the operator lets secrets go over a bond that is
    /// not authenticated.
    pub async fn pair(
        &self,
        address: &str,
        role: &str,
        baud: Option<u32>,
        bond: Option<BondMethod>,
        allow_unauthenticated: bool,
    ) -> Result<Value, DeviceError> {
        let _one = self.admin.lock().await;
        let addr = Address::parse(address)
            .map_err(|m| DeviceError::new(Some("address"), "invalid_request", m))?;
        let role = parse_role(role).ok_or_else(|| {
            DeviceError::new(
                Some("role"),
                "invalid_request",
                format!("{role:?} is not a role; expected card-reader or dqr-display"),
            )
        })?;
        if matches!(addr, Address::Ble(_)) && baud.is_some() {
            return Err(DeviceError::new(
                Some("baud"),
                "invalid_request",
                "is for serial devices only".into(),
            ));
        }
        let bond = match addr {
            Address::Ble(_) => Some(Bond {
                method: bond.unwrap_or(BondMethod::Unknown),
                allowed_unauthenticated: allow_unauthenticated,
                bonded_at: crate::clock::now_rfc3339(),
            }),
            Address::Serial(_) => None,
        };
        if let Some(b) = bond.as_ref().filter(|b| !b.carries_secrets()) {
            return Err(DeviceError::new(
                Some("bond"),
                "unauthenticated_bond",
                unauthenticated(address, b.method),
            ));
        }
        let (kind, place) = addr.parts();
        let existing = self
            .registry()
            .devices()
            .iter()
            .find(|d| d.transport == kind && d.address == place)
            .cloned();
        if let Some(e) = existing {
            if e.role == role_name(role) {
                // Bonded again (or allowed now): the new bond is the one the link must have.
                let same = |a: &Option<Bond>, b: &Option<Bond>| {
                    a.as_ref().map(|x| (x.method, x.allowed_unauthenticated))
                        == b.as_ref().map(|x| (x.method, x.allowed_unauthenticated))
                };
                if !same(&e.bond, &bond) {
                    let updated = Paired { bond, ..e.clone() };
                    self.save(updated.clone())?;
                    log::info!(device = e.id.as_str(); "{}: bond recorded anew: {}",
                        e.id, bond_words(updated.bond.as_ref()));
                    self.manage(updated, None);
                }
                return Ok(self.listing(&e.id).unwrap_or_else(|| json!(e)));
            }
            return Err(DeviceError::new(
                Some("address"),
                "already_paired",
                format!("{address} is already paired as {}; unpair it first", e.id),
            ));
        }
        let transport = transport_for(&addr, baud)
            .map_err(|e| DeviceError::new(None, "device_unavailable", e.to_string()))?;
        // Transport errors name the device and the cause themselves.
        let conn = transport
            .connect()
            .await
            .map_err(|e| DeviceError::new(None, "device_unavailable", e.to_string()))?;
        let facts = conn.ble;
        let (session, hello) = match tokio::time::timeout(OPEN_TIMEOUT, Session::open(conn, role)).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(LinkError::WrongRole { got, .. })) => {
                return Err(DeviceError::new(
                    Some("role"),
                    "wrong_role",
                    format!(
                        "the device at {address} answered as a {got}, not a {}; pair it with --role {got}",
                        role_name(role)
                    ),
                ))
            }
            Ok(Err(e)) => {
                return Err(DeviceError::new(
                    None,
                    "device_unavailable",
                    format!("the device at {address} is not answering: {e}"),
                ))
            }
            Err(_) => {
                return Err(DeviceError::new(
                    None,
                    "device_unavailable",
                    format!("the device at {address} did not finish HELLO in {OPEN_TIMEOUT:?}"),
                ))
            }
        };
        let entry = Paired {
            id: format!("{}-{}", role_name(role), hello.serial),
            role: role_name(role).into(),
            transport: kind.into(),
            address: place,
            baud: match addr {
                Address::Serial(_) => Some(baud.unwrap_or(DEFAULT_BAUD)),
                Address::Ble(_) => None,
            },
            model: hello.model.clone(),
            firmware: hello.firmware.clone(),
            serial: hello.serial.clone(),
            paired_at: crate::clock::now_rfc3339(),
            bond,
        };
        self.save(entry.clone())?;
        match entry.bond.as_ref() {
            Some(b) if !b.authenticated() => {
                log::warn!(device = entry.id.as_str(); "paired {} at {address}; {}",
                    entry.id, bond_words(Some(b)));
            }
            _ => log::info!(device = entry.id.as_str(); "paired {} at {address}", entry.id),
        }
        let id = entry.id.clone();
        self.manage(entry, Some((session, hello)));
        if let (Some(facts), Some(m)) = (facts, self.devices().get(&id)) {
            m.saw(facts);
        }
        Ok(self.listing(&id).expect("just added"))
    }

    fn save(&self, entry: Paired) -> Result<(), DeviceError> {
        self.registry().upsert(entry).map_err(|e| {
            DeviceError::new(
                None,
                "state_unavailable",
                format!("the pairing could not be saved: {e}"),
            )
        })
    }

    /// Forgets a paired device and closes its link.
    pub async fn unpair(&self, id: &str) -> Result<Value, DeviceError> {
        let _one = self.admin.lock().await;
        let removed = self.registry().remove(id).map_err(|e| {
            DeviceError::new(
                None,
                "state_unavailable",
                format!("the change could not be saved: {e}"),
            )
        })?;
        let Some(entry) = removed else {
            return Err(DeviceError::new(
                Some("id"),
                "not_found",
                format!("no paired device {id:?}; `posbridge devices` lists them"),
            ));
        };
        if let Some(m) = self.devices().remove(id) {
            m.stop.cancel();
            m.down(None);
        }
        log::info!(device = id; "unpaired {id}");
        let mut shown = json!(entry);
        shown["connected"] = json!(false);
        Ok(shown)
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
#[cfg(test)]
mod tests;

/// Why a BLE bond that is not authenticated is refused.
fn unauthenticated(address: &str, method: BondMethod) -> String {
    let how = match method {
        BondMethod::JustWorks => "was made by Just Works (no code compared)",
        _ => "was not made by posbridge, so whether a code was compared is not known",
    };
    format!(
        "the Bluetooth bond with {address} {how}: a device in radio range while it was made \
         could sit in the middle and read the acquirer's credentials. Pair with `posbridge pair \
         {address} --role ROLE`, which bonds with a code to compare, or accept the risk with \
         --allow-unauthenticated"
    )
}

/// A bond in words, for the log and `doctor`.
pub fn bond_words(bond: Option<&Bond>) -> String {
    match bond {
        None => "no bond recorded: no secrets go over its link until it is paired again".into(),
        Some(b) if b.authenticated() => format!("bond authenticated ({})", b.method),
        Some(b) if b.allowed_unauthenticated => format!(
            "bond not authenticated ({}), allowed by the operator: credentials go over it",
            b.method
        ),
        Some(b) => format!(
            "bond not authenticated ({}): no secrets go over its link",
            b.method
        ),
    }
}
