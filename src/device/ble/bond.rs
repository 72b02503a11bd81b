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
use std::ffi::CString;
use std::time::{Duration, Instant};

use dbus::arg::{prop_cast, PropMap, Variant};
use dbus::channel::{BusType, Channel};
use dbus::message::MessageType;
use dbus::strings::ErrorName;
use dbus::{Message, Path};

use crate::exchange::BondMethod;

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
            Err(e) => {
                // Whatever went wrong, no bond is left behind.
                if let Ok((_, Some((path, k)))) = self.look(address) {
                    if k.paired {
                        let _ = self.remove_path(&adapter, &path);
                    }
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

/// The agent, registered on the connection for one pairing; unregistered on drop.
struct Agent<'a> {
    bluez: &'a Bluez,
    path: String,
}

impl<'a> Agent<'a> {
    fn register(bluez: &'a Bluez) -> Result<Agent<'a>, BondError> {
        let path = format!("/org/posbridge/agent{}", std::process::id());
        let msg = Bluez::method("/org/bluez", AGENT_MANAGER, "RegisterAgent").append2(
            Path::new(path.as_str()).expect("valid path"),
            "KeyboardDisplay",
        );
        bluez.call(msg, CALL).map_err(|e| {
            BondError::new(
                "bluetooth_unavailable",
                format!("BlueZ refused the pairing agent: {}", text(&e)),
            )
        })?;
        Ok(Agent { bluez, path })
    }

    /// Calls `Pair` and answers the agent's questions until BlueZ replies.
    fn pair(
        &self,
        device: &str,
        allow_unauthenticated: bool,
        tech: &mut dyn Technician,
    ) -> Result<BondMethod, BondError> {
        let channel = &self.bluez.channel;
        let serial = channel
            .send(Bluez::method(device, DEVICE, "Pair"))
            .map_err(|()| BondError::new("bluetooth_unavailable", "D-Bus send failed".into()))?;
        let deadline = Instant::now() + PAIRING;
        let mut seen: Option<BondMethod> = None;
        let mut refused = false;
        while Instant::now() < deadline {
            if channel
                .read_write(Some(Duration::from_millis(200)))
                .is_err()
            {
                return Err(BondError::new(
                    "bluetooth_unavailable",
                    "lost the system D-Bus while pairing".into(),
                ));
            }
            while let Some(msg) = channel.pop_message() {
                match msg.msg_type() {
                    MessageType::MethodCall if msg.path().as_deref() == Some(&*self.path) => {
                        let answer = self.answer(&msg, device, allow_unauthenticated, tech);
                        let reply = match answer {
                            Answered::Done(reply, method) => {
                                seen = method.or(seen);
                                reply
                            }
                            Answered::Refused(reply) => {
                                refused = true;
                                reply
                            }
                        };
                        let _ = channel.send(reply);
                    }
                    MessageType::MethodReturn if msg.get_reply_serial() == Some(serial) => {
                        return Ok(seen.unwrap_or(BondMethod::JustWorks));
                    }
                    MessageType::Error if msg.get_reply_serial() == Some(serial) => {
                        let mut msg = msg;
                        let why = match msg.as_result() {
                            Err(e) => text(&e),
                            Ok(_) => "an error without a name".to_string(),
                        };
                        return Err(BondError::new(
                            "bond_rejected",
                            if refused {
                                "the codes were not confirmed, so no bond was made. If the \
                                 reader showed another code, something else answered in its \
                                 place: pair again with only the reader near"
                                    .to_string()
                            } else {
                                format!("BlueZ could not bond: {why}; no bond was made")
                            },
                        ));
                    }
                    _ => {}
                }
            }
        }
        let _ = self
            .bluez
            .call(Bluez::method(device, DEVICE, "CancelPairing"), CALL);
        Err(BondError::new(
            "bond_rejected",
            format!(
                "the pairing did not finish in {} s; no bond was made",
                PAIRING.as_secs()
            ),
        ))
    }

    /// One call from BlueZ to the agent.
    fn answer(
        &self,
        msg: &Message,
        device: &str,
        allow_unauthenticated: bool,
        tech: &mut dyn Technician,
    ) -> Answered {
        let member = msg.member().map(|m| m.to_string()).unwrap_or_default();
        let ours = msg.interface().as_deref() == Some(AGENT);
        let for_device = |msg: &Message| msg.read1::<Path>().is_ok_and(|p| &*p == device);
        let reject = |why: &str| Answered::Refused(error(msg, "org.bluez.Error.Rejected", why));
        if !ours {
            return Answered::Done(
                error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "not here"),
                None,
            );
        }
        match member.as_str() {
            "RequestConfirmation" => {
                let Ok((_, code)) = msg.read2::<Path, u32>() else {
                    return reject("unreadable request");
                };
                if !for_device(msg) {
                    return reject("not the device being paired");
                }
                if tech.confirm(code) {
                    Answered::Done(msg.method_return(), Some(BondMethod::NumericComparison))
                } else {
                    reject("the technician saw another code")
                }
            }
            "RequestPasskey" => {
                if !for_device(msg) {
                    return reject("not the device being paired");
                }
                match tech.enter_passkey() {
                    Some(code) => Answered::Done(
                        msg.method_return().append1(code),
                        Some(BondMethod::PasskeyEntry),
                    ),
                    None => reject("no passkey given"),
                }
            }
            "DisplayPasskey" => {
                // Called again as the technician types (`entered` counts the keys): show it
                // once.
                if let Ok((_, code, entered)) = msg.read3::<Path, u32, u16>() {
                    if entered == 0 {
                        tech.show_passkey(code);
                    }
                }
                Answered::Done(msg.method_return(), Some(BondMethod::PasskeyDisplay))
            }
            // The reader asks to bond without a code (Just Works it started itself).
            "RequestAuthorization" if allow_unauthenticated && for_device(msg) => {
                Answered::Done(msg.method_return(), Some(BondMethod::JustWorks))
            }
            "RequestAuthorization" => reject("a bond without a code is not accepted"),
            // Legacy PIN codes are Bluetooth Classic; a BLE reader never asks for one.
            "RequestPinCode" | "DisplayPinCode" | "AuthorizeService" => {
                reject("not used by posbridge")
            }
            "Cancel" => {
                tech.step("BlueZ cancelled the request (the reader gave up or timed out)");
                Answered::Done(msg.method_return(), None)
            }
            _ => Answered::Done(msg.method_return(), None),
        }
    }
}

enum Answered {
    /// Answered; the method the answer shows, if any.
    Done(Message, Option<BondMethod>),
    /// The technician (or this agent) said no.
    Refused(Message),
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        if let Ok(path) = Path::new(self.path.as_str()) {
            let msg = Bluez::method("/org/bluez", AGENT_MANAGER, "UnregisterAgent").append1(path);
            let _ = self.bluez.call(msg, CALL);
        }
    }
}

fn error(msg: &Message, name: &str, text: &str) -> Message {
    let name = ErrorName::new(name).expect("valid error name");
    let text = CString::new(text).unwrap_or_default();
    msg.error(&name, &text)
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
