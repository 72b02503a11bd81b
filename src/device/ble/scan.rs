//! The scan behind `posbridge scan`: discovery filtered on the Nordic UART Service on the first
//! adapter, and what it hears. A scan that tells ([`scan_telling`]) asks BlueZ once a round
//! (every [`ROUND`]) which devices the adapter knows and what BlueZ knows of them (name,
//! signal, advertised services, bond: one call for them all), and hands each NUS device to its
//! caller when first heard and again when its signal, name or bond changed, at most once per
//! [`RETELL`] per device. It must not know who listens (the device manager turns entries into
//! events) and never ends a scan early or late for a listener.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use btleplug::api::{BDAddr, Central, Peripheral as _};
use btleplug::platform::Adapter;
use tokio::time::Instant;

use super::stack::{self, cause, first_adapter, on_ble_runtime};
use super::{start_nus_scan, NUS_SERVICE};
use crate::device::transport::TransportError;
use crate::exchange::Sighting;

/// How often a scan that tells asks BlueZ what it has heard.
pub const ROUND: Duration = Duration::from_millis(250);
/// A device is told again (its signal, name or bond changed) at most this often.
pub const RETELL: Duration = Duration::from_secs(1);

/// One device found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// `AA:BB:CC:DD:EE:FF` (pair it as `ble:` + this).
    pub address: String,
    pub name: Option<String>,
    /// Signal strength in dBm as last seen, if BlueZ has one.
    pub rssi: Option<i16>,
    /// Whether BlueZ holds a bond with the device (`Paired`).
    pub bonded: bool,
}

impl ScanEntry {
    /// The entry as the API tells it; `paired`: whether posbridge has it in devices.json.
    pub fn sighting(&self, paired: bool) -> Sighting {
        Sighting {
            address: self.address.clone(),
            name: self.name.clone(),
            rssi: self.rssi,
            bonded: self.bonded,
            paired,
        }
    }
}

/// What a telling scan hands each device to.
type Heard = Box<dyn FnMut(&ScanEntry) + Send>;

/// Scans for `duration` and lists the devices that advertise the Nordic UART Service, strongest
/// signal first.
pub async fn scan(duration: Duration) -> Result<Vec<ScanEntry>, TransportError> {
    run(duration, None).await
}

/// [`scan`], handing `heard` each device as it is heard: when first heard, and again when its
/// signal, name or bond changed (at most once per [`RETELL`]). `heard` runs on the Bluetooth
/// runtime, so it must not wait.
pub async fn scan_telling(
    duration: Duration,
    heard: impl FnMut(&ScanEntry) + Send + 'static,
) -> Result<Vec<ScanEntry>, TransportError> {
    run(duration, Some(Box::new(heard))).await
}

async fn run(
    duration: Duration,
    mut heard: Option<Heard>,
) -> Result<Vec<ScanEntry>, TransportError> {
    on_ble_runtime("Bluetooth scan", async move {
        let adapter = first_adapter("Bluetooth scan").await?;
        start_nus_scan(&adapter)
            .await
            .map_err(|e| TransportError::Refused(format!("Bluetooth scan: {}", cause(&e))))?;
        let end = Instant::now() + duration;
        let mut told = Told::default();
        let found = loop {
            let now = Instant::now();
            let Some(heard) = heard.as_mut() else {
                tokio::time::sleep_until(end).await;
                break round(&adapter).await;
            };
            let this = round(&adapter).await;
            match &this {
                Ok(entries) => told.due(now, entries).into_iter().for_each(&mut *heard),
                // A round BlueZ did not answer: the next one asks again; only the last counts.
                Err(e) => log::debug!("Bluetooth scan: a round failed: {}", cause(e)),
            }
            if now >= end {
                break this;
            }
            tokio::time::sleep_until((now + ROUND).min(end)).await;
        };
        if let Err(e) = adapter.stop_scan().await {
            log::warn!("Bluetooth scan: could not stop discovery: {}", cause(&e));
        }
        let mut entries =
            found.map_err(|e| TransportError::Refused(format!("Bluetooth scan: {}", cause(&e))))?;
        entries.sort_by(|a, b| b.rssi.cmp(&a.rssi).then(a.address.cmp(&b.address)));
        Ok(entries)
    })
    .await
}

/// The NUS devices the adapter knows now, as BlueZ describes them: two calls, whatever the
/// number of devices.
async fn round(adapter: &Adapter) -> Result<Vec<ScanEntry>, btleplug::Error> {
    let here: HashSet<BDAddr> = adapter
        .peripherals()
        .await?
        .iter()
        .map(|p| p.address())
        .collect();
    let known = stack::known_devices().await?;
    Ok(known
        .into_iter()
        .filter(|d| d.services.contains(&NUS_SERVICE))
        .filter_map(|d| {
            let address = BDAddr::from(d.mac_address);
            here.contains(&address).then(|| ScanEntry {
                address: address.to_string(),
                // As btleplug names a peripheral (its local_name).
                name: d.alias.or(d.name),
                rssi: d.rssi,
                bonded: d.paired,
            })
        })
        .collect())
}

/// What a telling scan has told of each device, and when.
#[derive(Default)]
struct Told {
    last: HashMap<String, (ScanEntry, Instant)>,
}

impl Told {
    /// The entries of a round heard at `now` that are to be told: those never told, and those
    /// that differ from what was told of them at least [`RETELL`] ago. (One that changed sooner
    /// waits: a later round still differs, and tells it then.)
    fn due<'a>(&mut self, now: Instant, round: &'a [ScanEntry]) -> Vec<&'a ScanEntry> {
        let mut due = Vec::new();
        for entry in round {
            let tell = match self.last.get(&entry.address) {
                None => true,
                Some((told, at)) => told != entry && now.duration_since(*at) >= RETELL,
            };
            if tell {
                self.last
                    .insert(entry.address.clone(), (entry.clone(), now));
                due.push(entry);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, rssi: i16, bonded: bool) -> ScanEntry {
        ScanEntry {
            address: address.into(),
            name: Some("QPOS-mini".into()),
            rssi: Some(rssi),
            bonded,
        }
    }

    fn addresses_and_rssi(due: Vec<&ScanEntry>) -> Vec<(&str, Option<i16>)> {
        due.into_iter()
            .map(|e| (e.address.as_str(), e.rssi))
            .collect()
    }

    #[test]
    fn a_device_is_told_when_first_heard_then_on_a_change_at_most_once_a_second() {
        let mut told = Told::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let a = "C0:FF:EE:00:00:01";
        let b = "C0:FF:EE:00:00:02";
        assert_eq!(
            addresses_and_rssi(told.due(at(0), &[entry(a, -50, true)])),
            [(a, Some(-50))]
        );
        // Unchanged: nothing. A new device: told at once, whatever the others' pace.
        let round = [entry(a, -50, true), entry(b, -70, false)];
        assert_eq!(
            addresses_and_rssi(told.due(at(250), &round)),
            [(b, Some(-70))]
        );
        // a's signal changed within the second: it waits...
        let round = [entry(a, -44, true), entry(b, -70, false)];
        assert!(told.due(at(750), &round).is_empty());
        // ...and is told once the second has passed, as it is then.
        let round = [entry(a, -42, true), entry(b, -70, false)];
        assert_eq!(
            addresses_and_rssi(told.due(at(1000), &round)),
            [(a, Some(-42))]
        );
        // A bond made counts as a change as much as a signal.
        let round = [entry(a, -42, true), entry(b, -70, true)];
        let due = told.due(at(1250), &round);
        assert_eq!(
            (due.len(), due[0].address.as_str(), due[0].bonded),
            (1, b, true)
        );
        // Back to what was last told: nothing to tell.
        let round = [entry(a, -42, true), entry(b, -70, true)];
        assert!(told.due(at(5000), &round).is_empty());
    }
}
