//! Making and removing the Bluetooth bond with a BLE device, for the technician's CLI
//! (`posbridge pair ble:ADDRESS`, `posbridge unpair`). It runs in the CLI's process, not the
//! daemon's: the six digits to compare are shown to, and confirmed by, the person at that
//! terminal, and BlueZ asks the agent of the D-Bus client that called `Pair`, so the agent
//! lives for this one pairing on the CLI's own connection (BlueZ's D-Bus policy lets root and
//! the `bluetooth` group do this; the daemon's sandbox has no terminal to ask).
//!
//! The agent (org.bluez.Agent1, capability KeyboardDisplay) sees which method the pairing
//! used: a code compared (RequestConfirmation) or entered (RequestPasskey, DisplayPasskey)
//! means an authenticated key; no call at all means Just Works (BlueZ accepts it without asking
//! when we started the bonding), which this module removes again unless the operator allowed
//! it. BlueZ does not tell over D-Bus how a bond it holds was made, so a bond found already
//! there is reported as such and its method is unknown.
//!
//! Blocking calls on a private system-bus connection; no tokio, no daemon, no link protocol.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dbus::arg::{prop_cast, PropMap, Variant};
use dbus::channel::{BusType, Channel};
use dbus::{Message, Path};

use crate::exchange::BondMethod;

mod agent;
use agent::Agent;

const BLUEZ: &str = "org.bluez";
const ADAPTER: &str = "org.bluez.Adapter1";
const DEVICE: &str = "org.bluez.Device1";
const AGENT: &str = "org.bluez.Agent1";
const AGENT_MANAGER: &str = "org.bluez.AgentManager1";
/// How long one ordinary call to BlueZ may take.
const CALL: Duration = Duration::from_secs(10);
/// How long a pairing may take, the technician's answer included.
const PAIRING: Duration = Duration::from_secs(120);

/// What the agent needs from the person at the terminal.
pub trait Technician {
    /// One step of the pairing, as it happens.
    fn step(&mut self, text: &str);
    /// Numeric comparison: whether the reader shows `code` too.
    fn confirm(&mut self, code: u32) -> bool;
    /// Passkey entry: the six digits the reader shows, typed in (`None`: none given).
    fn enter_passkey(&mut self) -> Option<u32>;
    /// Passkey display: the technician types `code` on the reader's keys.
    fn show_passkey(&mut self, code: u32);
}

/// Why a bond was not made (or removed), in the API's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondError {
    /// `bluetooth_unavailable`, `device_unavailable`, `bond_rejected` or
    /// `unauthenticated_bond`.
    pub reason: &'static str,
    pub message: String,
}

impl BondError {
    fn new(reason: &'static str, message: String) -> BondError {
        BondError { reason, message }
    }
}

impl std::fmt::Display for BondError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What BlueZ says of a device now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub paired: bool,
    pub trusted: bool,
}

type Objects = HashMap<Path<'static>, HashMap<String, PropMap>>;

/// A private connection to the system bus, for one command.
pub struct Bluez {
    channel: Channel,
}

impl Bluez {
    pub fn connect() -> Result<Bluez, BondError> {
        let mut channel = Channel::get_private(BusType::System).map_err(|e| {
            BondError::new(
                "bluetooth_unavailable",
                format!(
                    "cannot reach the system D-Bus ({}); is dbus running?",
                    text(&e)
                ),
            )
        })?;
        channel.register().map_err(|e| {
            BondError::new(
                "bluetooth_unavailable",
                format!("system D-Bus: {}", text(&e)),
            )
        })?;
        Ok(Bluez { channel })
    }

    fn call(&self, msg: Message, timeout: Duration) -> Result<Message, dbus::Error> {
        self.channel.send_with_reply_and_block(msg, timeout)
    }

    fn method(path: &str, iface: &str, member: &str) -> Message {
        Message::new_method_call(BLUEZ, path, iface, member).expect("valid names")
    }

    fn objects(&self) -> Result<Objects, BondError> {
        let msg = Bluez::method(
            "/",
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
        );
        let reply = self.call(msg, CALL).map_err(unreachable)?;
        reply.read1::<Objects>().map_err(|e| {
            BondError::new(
                "bluetooth_unavailable",
                format!("BlueZ's object list was unreadable: {e}"),
            )
        })
    }

    /// The first adapter and the device at `address` on it, if BlueZ knows it.
    fn look(&self, address: &str) -> Result<(String, Option<(String, Known)>), BondError> {
        let objects = self.objects()?;
        let mut adapters: Vec<&Path> = objects
            .iter()
            .filter(|(_, ifaces)| ifaces.contains_key(ADAPTER))
            .map(|(p, _)| p)
            .collect();
        adapters.sort();
        let Some(adapter) = adapters.first().map(|p| p.to_string()) else {
            return Err(BondError::new(
                "bluetooth_unavailable",
                "BlueZ sees no Bluetooth adapter (is one plugged in and not blocked by rfkill?)"
                    .into(),
            ));
        };
        let device = objects.iter().find_map(|(path, ifaces)| {
            let props = ifaces.get(DEVICE)?;
            let same = prop_cast::<String>(props, "Address")
                .is_some_and(|a| a.eq_ignore_ascii_case(address));
            let on = prop_cast::<Path>(props, "Adapter").is_some_and(|a| **a == *adapter);
            (same && on).then(|| {
                let flag = |k: &str| prop_cast::<bool>(props, k).copied().unwrap_or(false);
                let known = Known {
                    paired: flag("Paired"),
                    trusted: flag("Trusted"),
                };
                (path.to_string(), known)
            })
        });
        Ok((adapter, device))
    }

    /// What BlueZ says of `address` (`None`: it does not know the device).
    pub fn known(&self, address: &str) -> Result<Option<Known>, BondError> {
        Ok(self.look(address)?.1.map(|(_, k)| k))
    }

    /// The device's object, discovering for up to `wait` when BlueZ does not know it yet.
    fn find(
        &self,
        address: &str,
        wait: Duration,
        tech: &mut dyn Technician,
    ) -> Result<(String, String, Known), BondError> {
        let (adapter, device) = self.look(address)?;
        if let Some((path, known)) = device {
            return Ok((adapter, path, known));
        }
        tech.step(&format!(
            "looking for {address} (up to {} s; is the reader on and near?)",
            wait.as_secs()
        ));
        // LE only: a reader is never a Bluetooth Classic device.
        let mut filter: PropMap = HashMap::new();
        filter.insert("Transport".into(), Variant(Box::new("le".to_string())));
        let set = Bluez::method(&adapter, ADAPTER, "SetDiscoveryFilter").append1(filter);
        if let Err(e) = self.call(set, CALL) {
            tech.step(&format!(
                "BlueZ took no LE-only filter ({}); discovering all",
                text(&e)
            ));
        }
        let start = Bluez::method(&adapter, ADAPTER, "StartDiscovery");
        let started = self.call(start, CALL);
        if let Err(e) = &started {
            // InProgress: the daemon or another client discovers already; ride along.
            if e.name() != Some("org.bluez.Error.InProgress") {
                return Err(unreachable(e.clone_error()));
            }
        }
        let deadline = Instant::now() + wait;
        let found = loop {
            if let (_, Some((path, known))) = self.look(address)? {
                break Some((path, known));
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if started.is_ok() {
            let _ = self.call(Bluez::method(&adapter, ADAPTER, "StopDiscovery"), CALL);
        }
        match found {
            Some((path, known)) => Ok((adapter, path, known)),
            None => Err(BondError::new(
                "device_unavailable",
                format!(
                    "{address} was not heard in {} s: is it on, near, and advertising (not \
                     connected to another host)? `posbridge scan` lists what is heard",
                    wait.as_secs()
                ),
            )),
        }
    }

    /// Removes BlueZ's bond with `address` (and its record of the device). `false` when
    /// BlueZ did not know the device.
    pub fn remove(&self, address: &str) -> Result<bool, BondError> {
        let (adapter, device) = self.look(address)?;
        let Some((path, _)) = device else {
            return Ok(false);
        };
        self.remove_path(&adapter, &path)?;
        Ok(true)
    }

    fn remove_path(&self, adapter: &str, device: &str) -> Result<(), BondError> {
        let msg = Bluez::method(adapter, ADAPTER, "RemoveDevice")
            .append1(Path::new(device).expect("BlueZ's own path"));
        self.call(msg, CALL).map(drop).map_err(|e| {
            BondError::new(
                "bluetooth_unavailable",
                format!("BlueZ did not remove the bond: {}", text(&e)),
            )
        })
    }

    /// Bonds with `address`: finds it (discovering up to `find_for`), registers the agent,
    /// pairs, and trusts it. Answers how the bond was made. A Just Works bond is removed again
    /// and refused unless `allow_unauthenticated`; a failed or refused pairing leaves no bond.
    /// A device BlueZ holds a bond with already is `bond_exists`: the caller decides.
    pub fn make(
        &self,
        address: &str,
        find_for: Duration,
        allow_unauthenticated: bool,
        tech: &mut dyn Technician,
    ) -> Result<BondMethod, BondError> {
        let (adapter, device, known) = self.find(address, find_for, tech)?;
        if known.paired {
            return Err(BondError::new(
                "bond_exists",
                format!("BlueZ already holds a bond with {address}"),
            ));
        }
        let agent = Agent::register(self)?;
        tech.step(&format!(
            "bonding with {address} (LE Secure Connections; a code to compare comes next)"
        ));
        let outcome = agent.pair(&device, allow_unauthenticated, tech);
        drop(agent);
        let method = match outcome {
            Ok(method) => method,
            Err(mut e) => {
                // Whatever went wrong, no bond is left behind; if one may be, say so.
                let left = match self.look(address) {
                    Ok((_, Some((path, k)))) if k.paired => {
                        self.remove_path(&adapter, &path).err().map(|r| r.message)
                    }
                    Ok(_) => None,
                    Err(l) => Some(l.message),
                };
                if let Some(why) = left {
                    e.message = format!(
                        "{}. But BlueZ may still hold a bond with {address} ({why}): remove it \
                         with `bluetoothctl remove {address}` before pairing again",
                        e.message
                            .replace("; no bond was made", "")
                            .replace(", so no bond was made", "")
                    );
                }
                return Err(e);
            }
        };
        if method == BondMethod::JustWorks && !allow_unauthenticated {
            let removed = self.remove_path(&adapter, &device);
            return Err(BondError::new(
                "unauthenticated_bond",
                format!(
                    "{address} bonded by Just Works: it showed no code to compare, so a device \
                     in radio range could have sat in the middle and would read the acquirer's \
                     credentials. {} Use a reader with a display or keys, or accept the risk \
                     with --allow-unauthenticated",
                    match removed {
                        Ok(()) => "The bond was removed.".to_string(),
                        Err(e) => format!(
                            "Removing the bond failed too ({e}): remove it with \
                                           `bluetoothctl remove {address}`."
                        ),
                    }
                ),
            ));
        }
        tech.step(&format!(
            "bonded by {}{}",
            method.as_str().replace('_', " "),
            if method.authenticated() {
                " (authenticated)"
            } else {
                " (NOT authenticated: allowed by --allow-unauthenticated)"
            }
        ));
        let trust = Bluez::method(&device, "org.freedesktop.DBus.Properties", "Set").append3(
            DEVICE,
            "Trusted",
            Variant(true),
        );
        match self.call(trust, CALL) {
            Ok(_) => tech.step("trusted: BlueZ lets it reconnect on its own"),
            Err(e) => tech.step(&format!(
                "BlueZ did not mark it trusted ({}); it still works, reconnecting may be slower",
                text(&e)
            )),
        }
        Ok(method)
    }
}

/// A D-Bus error in words, with BlueZ's error name.
fn text(e: &dbus::Error) -> String {
    match (e.name(), e.message()) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (Some(n), None) => n.to_string(),
        _ => e.to_string(),
    }
}

fn unreachable(e: dbus::Error) -> BondError {
    let fix = match e.name() {
        Some("org.freedesktop.DBus.Error.AccessDenied") => {
            "; run it as root (sudo) or as a member of the bluetooth group"
        }
        Some("org.freedesktop.DBus.Error.ServiceUnknown") => {
            "; is bluetoothd running? (`systemctl status bluetooth`)"
        }
        _ => "",
    };
    BondError::new(
        "bluetooth_unavailable",
        format!("cannot talk to BlueZ: {}{fix}", text(&e)),
    )
}

trait CloneError {
    fn clone_error(&self) -> dbus::Error;
}

impl CloneError for dbus::Error {
    fn clone_error(&self) -> dbus::Error {
        dbus::Error::new_custom(
            self.name().unwrap_or("org.freedesktop.DBus.Error.Failed"),
            self.message().unwrap_or(""),
        )
    }
}
