//! Paired devices, persisted as `devices.json` in the state directory (atomic write: temp
//! file, fsync, rename, fsync of the directory). It owns the file format and address syntax;
//! it must not open links (that is `manager.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exchange::BondMethod;

pub const FILE: &str = "devices.json";

/// One paired device, as `posbridge devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paired {
    /// `card-reader-<serial>` or `dqr-display-<serial>`.
    pub id: String,
    /// `card-reader` or `dqr-display`.
    pub role: String,
    /// `serial` or `ble`.
    pub transport: String,
    /// The tty path, or the BLE address.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baud: Option<u32>,
    pub model: String,
    pub firmware: String,
    pub serial: String,
    pub paired_at: String,
    /// BLE only: the Bluetooth bond posbridge was told of when the device was paired. Absent
    /// for an entry from before bonds were recorded, and once BlueZ was seen without the bond:
    /// then the link carries no secrets until the device is paired again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond: Option<Bond>,
}

/// A BLE device's bond as posbridge knows it: how it was made (the technician's CLI ran
/// BlueZ's agent and saw the method), and whether the operator let the acquirer's credentials
/// go over it although it is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bond {
    pub method: BondMethod,
    #[serde(default)]
    pub allowed_unauthenticated: bool,
    pub bonded_at: String,
}

impl Bond {
    /// Whether the key resists a man in the middle (a code was compared or entered).
    pub fn authenticated(&self) -> bool {
        self.method.authenticated()
    }

    /// Whether secrets may go over a link with this bond.
    pub fn carries_secrets(&self) -> bool {
        self.authenticated() || self.allowed_unauthenticated
    }
}

impl Paired {
    /// The address as the technician writes it: `serial:/dev/...` or `ble:AA:BB:...`.
    pub fn full_address(&self) -> String {
        format!("{}:{}", self.transport, self.address)
    }
}

/// Where a device is: parsed from `serial:PATH` or `ble:ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Serial(PathBuf),
    Ble(String),
}

impl Address {
    pub fn parse(text: &str) -> Result<Address, String> {
        match text.split_once(':') {
            Some(("serial", path)) if path.starts_with('/') => Ok(Address::Serial(path.into())),
            Some(("serial", _)) => Err(format!(
                "{text:?}: a serial address needs an absolute path, e.g. serial:/dev/posbridge/reader"
            )),
            Some(("ble", mac)) if is_ble_address(mac) => Ok(Address::Ble(mac.to_ascii_uppercase())),
            Some(("ble", _)) => Err(format!(
                "{text:?}: a BLE address is six hex pairs, e.g. ble:AA:BB:CC:DD:EE:FF"
            )),
            _ => Err(format!(
                "{text:?} is not serial:PATH or ble:ADDRESS"
            )),
        }
    }

    /// (`serial`|`ble`, the address part).
    pub fn parts(&self) -> (&'static str, String) {
        match self {
            Address::Serial(p) => ("serial", p.display().to_string()),
            Address::Ble(a) => ("ble", a.clone()),
        }
    }
}

fn is_ble_address(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({source}); fix or remove it, then pair the devices again")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    devices: Vec<Paired>,
}

#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    devices: Vec<Paired>,
}

impl Registry {
    pub fn load(state_dir: &Path) -> Result<Registry, RegistryError> {
        let path = state_dir.join(FILE);
        let devices = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<FileFormat>(&bytes)
                    .map_err(|source| RegistryError::Parse {
                        path: path.clone(),
                        source,
                    })?
                    .devices
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(RegistryError::Read { path, source }),
        };
        Ok(Registry { path, devices })
    }

    pub fn devices(&self) -> &[Paired] {
        &self.devices
    }

    pub fn get(&self, id: &str) -> Option<&Paired> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Adds `entry`, replacing one with the same id (a device moved to another port).
    pub fn upsert(&mut self, entry: Paired) -> Result<(), RegistryError> {
        let mut devices = self.devices.clone();
        devices.retain(|d| d.id != entry.id);
        devices.push(entry);
        self.save(devices)
    }

    pub fn remove(&mut self, id: &str) -> Result<Option<Paired>, RegistryError> {
        let Some(found) = self.get(id).cloned() else {
            return Ok(None);
        };
        let devices = self
            .devices
            .iter()
            .filter(|d| d.id != id)
            .cloned()
            .collect();
        self.save(devices)?;
        Ok(Some(found))
    }

    /// Writes the new list durably, then adopts it (so memory never runs ahead of the disk).
    fn save(&mut self, devices: Vec<Paired>) -> Result<(), RegistryError> {
        let err = |source| RegistryError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&FileFormat {
            devices: devices.clone(),
        })
        .expect("the registry always serializes");
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        file.write_all(&body).map_err(err)?;
        file.sync_all().map_err(err)?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(err)?;
        }
        self.devices = devices;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Paired {
        Paired {
            id: id.into(),
            role: "card-reader".into(),
            transport: "serial".into(),
            address: "/dev/ttyACM0".into(),
            baud: Some(115_200),
            model: "m".into(),
            firmware: "f".into(),
            serial: "s".into(),
            paired_at: "2026-11-23T00:00:00Z".into(),
            bond: None,
        }
    }

    #[test]
    fn entries_persist_replace_by_id_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Registry::load(dir.path()).unwrap();
        assert!(r.devices().is_empty());
        r.upsert(entry("a")).unwrap();
        r.upsert(entry("b")).unwrap();
        let mut moved = entry("a");
        moved.address = "/dev/ttyACM1".into();
        r.upsert(moved.clone()).unwrap();
        let again = Registry::load(dir.path()).unwrap();
        assert_eq!(again.devices().len(), 2);
        assert_eq!(again.get("a"), Some(&moved));
        let mut again = again;
        assert_eq!(again.remove("b").unwrap().map(|e| e.id), Some("b".into()));
        assert_eq!(again.remove("b").unwrap(), None);
        assert_eq!(Registry::load(dir.path()).unwrap().devices().len(), 1);
    }

    #[test]
    fn damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        let err = Registry::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("devices.json is damaged"), "{err}");
    }

    #[test]
    fn addresses_parse_or_say_why_not() {
        assert_eq!(
            Address::parse("serial:/dev/ttyUSB0"),
            Ok(Address::Serial("/dev/ttyUSB0".into()))
        );
        assert_eq!(
            Address::parse("ble:aa:bb:cc:dd:ee:ff"),
            Ok(Address::Ble("AA:BB:CC:DD:EE:FF".into()))
        );
        assert!(Address::parse("serial:ttyUSB0")
            .unwrap_err()
            .contains("absolute path"));
        assert!(Address::parse("ble:nope")
            .unwrap_err()
            .contains("six hex pairs"));
        assert!(Address::parse("/dev/ttyUSB0")
            .unwrap_err()
            .contains("serial:PATH"));
    }
}
