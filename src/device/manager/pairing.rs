//! Pairing and unpairing: the device manager's technician side. It checks the address and
//! role, records the device with its BLE bond as the technician's CLI reported it (refusing a
//! bond that is not authenticated unless the operator allowed it), and starts or stops keeping
//! it connected. It must not make or remove Bluetooth bonds (the CLI does: `ble::bond`).

use serde_json::{json, Value};

use super::{role_name, transport_for, DeviceError, DeviceManager, DEFAULT_BAUD, OPEN_TIMEOUT};
use crate::device::registry::{Address, Bond, Paired};
use crate::device::session::{parse_role, LinkError, Session};
use crate::exchange::BondMethod;

impl DeviceManager {
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
                // Bonded again (or allowed now): the new bond is the one the link must have,
                // recorded anew even with the same method (a `--rebond`: its time, and a
                // keeper that read the old bond's loss meanwhile must not forget this one).
                if e.bond != bond {
                    let updated = Paired { bond, ..e.clone() };
                    self.save(updated.clone())?;
                    let authenticated = updated
                        .bond
                        .as_ref()
                        .is_some_and(|b| b.method.authenticated());
                    let level = if authenticated {
                        log::Level::Info
                    } else {
                        log::Level::Warn
                    };
                    log::log!(level, device = e.id.as_str(); "{}: bond recorded anew: {}",
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
}

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
