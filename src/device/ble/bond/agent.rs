//! The pairing agent (org.bluez.Agent1) for one `Pair`: registered on the CLI's connection,
//! it answers BlueZ's questions from the technician and sees which method the pairing used. It
//! must not decide what to do with the bond (`bond.rs` does).

use std::ffi::CString;
use std::time::{Duration, Instant};

use dbus::message::MessageType;
use dbus::strings::ErrorName;
use dbus::{Message, Path};

use super::{text, Bluez, BondError, Technician, AGENT, AGENT_MANAGER, CALL, DEVICE, PAIRING};
use crate::exchange::BondMethod;

/// The agent, registered on the connection for one pairing; unregistered on drop.
pub(super) struct Agent<'a> {
    bluez: &'a Bluez,
    path: String,
}

impl<'a> Agent<'a> {
    pub(super) fn register(bluez: &'a Bluez) -> Result<Agent<'a>, BondError> {
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
    pub(super) fn pair(
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
        // Why this agent said no, if it did.
        let mut refused: Option<&'static str> = None;
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
                            Answered::Refused(reply, why) => {
                                refused = Some(why);
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
                            match refused {
                                Some(SAW_ANOTHER_CODE) => {
                                    "the codes were not confirmed, so no bond was made. If the \
                                     reader showed another code, something else answered in \
                                     its place: pair again with only the reader near"
                                        .to_string()
                                }
                                Some(JUST_WORKS) => format!(
                                    "the reader asked to bond without a code ({JUST_WORKS}), \
                                     so no bond was made: use a reader with a display or keys, \
                                     or accept the risk with --allow-unauthenticated"
                                ),
                                Some(no) => {
                                    format!("posbridge's agent said no ({no}); no bond was made")
                                }
                                None => format!("BlueZ could not bond: {why}; no bond was made"),
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
        let reject =
            |why: &'static str| Answered::Refused(error(msg, "org.bluez.Error.Rejected", why), why);
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
                    reject(SAW_ANOTHER_CODE)
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
                // once. Only a call for the device being paired says how its bond is made.
                if !for_device(msg) {
                    return Answered::Done(msg.method_return(), None);
                }
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
            "RequestAuthorization" => reject(JUST_WORKS),
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

/// The agent's reasons for a no that say more than the rest.
const SAW_ANOTHER_CODE: &str = "the technician saw another code";
const JUST_WORKS: &str = "a bond without a code is not accepted";

enum Answered {
    /// Answered; the method the answer shows, if any.
    Done(Message, Option<BondMethod>),
    /// The technician (or this agent) said no, and why.
    Refused(Message, &'static str),
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
