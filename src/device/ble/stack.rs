//! The Bluetooth stack as the BLE transport sees it: where btleplug runs and how its failures
//! are put into words. Every btleplug call runs on a runtime of its own (`on_ble_runtime`), with
//! one btleplug `Manager` for the process, so a panic in btleplug or bluez-async ends one task
//! there and comes back as `Refused`; the daemon's runtime never runs btleplug code. This module
//! must not know about NUS or the link protocol.

use std::future::Future;
use std::sync::OnceLock;

use btleplug::api::Manager as _;
use btleplug::platform::{Adapter, Manager};
use tokio::runtime::Runtime;

use crate::device::transport::TransportError;

/// Runs `work` on the BLE runtime and waits for it. A panic inside btleplug or bluez-async ends
/// only that task and comes back as `Refused`.
pub(super) async fn on_ble_runtime<T: Send + 'static>(
    what: &str,
    work: impl Future<Output = Result<T, TransportError>> + Send + 'static,
) -> Result<T, TransportError> {
    let runtime = ble_runtime().map_err(|e| {
        TransportError::Refused(format!("{what}: cannot start the Bluetooth worker: {e}"))
    })?;
    match runtime.spawn(work).await {
        Ok(result) => result,
        Err(e) => {
            let why = if e.is_panic() {
                panic_text(e.into_panic())
            } else {
                "cancelled".to_string()
            };
            log::error!("{what}: the Bluetooth stack failed: {why}");
            Err(TransportError::Refused(format!(
                "{what}: the Bluetooth stack failed internally ({why}); the next attempt starts afresh"
            )))
        }
    }
}

/// The runtime every btleplug call and pump runs on, on its own thread. It also keeps btleplug's
/// one D-Bus connection alive whatever runtime the caller uses (tests make one per test).
fn ble_runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("posbridge-ble")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The process's connections to the system D-Bus: btleplug's manager and a bluez-async session
/// for what btleplug does not tell (whether a device is bonded). One of each for the process
/// (each `Manager::new` opens another connection and keeps it for good), made again once the bus
/// has gone away: after `systemctl restart dbus` the old connections are dead for good, and a
/// daemon that kept them would never reach BlueZ again without a restart. Both connections die
/// with the bus; the session's, which we own, says when. Only used on the BLE runtime.
#[derive(Clone)]
struct Bus {
    manager: Manager,
    session: bluez_async::BluetoothSession,
    /// Closed (its sender dropped) when the connection is lost.
    alive: tokio::sync::watch::Receiver<()>,
}

/// Resolves when the system D-Bus connection that links opened now use is lost: their BlueZ
/// event and notification streams then just stay silent, so a pump must end on this too.
/// Never resolves when there is no connection to watch.
pub(super) async fn bus_lost() -> impl Future<Output = ()> + Send + 'static {
    let alive = bus().await.ok().map(|bus| bus.alive);
    async move {
        match alive {
            Some(mut alive) => while alive.changed().await.is_ok() {},
            None => std::future::pending().await,
        }
    }
}

/// The live [`Bus`], connecting (again) when there is none or the last one was lost. A failure
/// is not kept: the next call tries again.
async fn bus() -> Result<Bus, btleplug::Error> {
    static BUS: tokio::sync::Mutex<Option<Bus>> = tokio::sync::Mutex::const_new(None);
    let mut held = BUS.lock().await;
    if let Some(bus) = held.as_ref() {
        if bus.alive.has_changed().is_ok() {
            return Ok(bus.clone());
        }
        log::info!("BLE: the system D-Bus went away; connecting to it again");
    }
    *held = None;
    let (connection, session) = bluez_async::BluetoothSession::new()
        .await
        .map_err(|e| btleplug::Error::Other(Box::new(e)))?;
    let (sender, alive) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!("BLE: lost the connection to the system D-Bus: {e}");
        }
        drop(sender);
    });
    let manager = Manager::new().await?;
    let bus = Bus {
        manager,
        session,
        alive,
    };
    *held = Some(bus.clone());
    Ok(bus)
}

/// Whether BlueZ holds a bond (`Paired`) with `address`: only then is the link encrypted and
/// may carry secrets. `None` when BlueZ cannot say.
pub(super) async fn bonded(address: &str) -> Option<bool> {
    let session = match bus().await {
        Ok(bus) => bus.session,
        Err(e) => {
            log::warn!("ble:{address}: cannot ask BlueZ whether it is bonded: {e}");
            return None;
        }
    };
    match session.get_devices().await {
        Ok(devices) => Some(
            devices
                .iter()
                .any(|d| d.mac_address.to_string().eq_ignore_ascii_case(address) && d.paired),
        ),
        Err(e) => {
            log::warn!("ble:{address}: cannot ask BlueZ whether it is bonded: {e}");
            None
        }
    }
}

/// What BlueZ knows of every device it lists (address, name, signal, advertised services,
/// `Paired`), in one call for them all: a scan asks this once a round, not once a device.
pub(super) async fn known_devices() -> Result<Vec<bluez_async::DeviceInfo>, btleplug::Error> {
    let session = bus().await?.session;
    session
        .get_devices()
        .await
        .map_err(|e| btleplug::Error::Other(Box::new(e)))
}

/// How long a scan, pair or connect waits for a Bluetooth adapter to appear: a dongle that
/// comes late, or bluetoothd still starting (or restarting) when the technician's first
/// command arrives.
pub(super) const ADAPTER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// BlueZ's answers that mean "not now" rather than "no": right after bluetoothd (re)starts or
/// while the adapter powers up, and while another discovery or connection is being set up.
pub(super) fn transient(cause: &str) -> bool {
    [
        "org.bluez.Error.Busy",
        "org.bluez.Error.NotReady",
        "org.bluez.Error.InProgress",
    ]
    .iter()
    .any(|name| cause.contains(name))
}

/// Runs `attempt` again while BlueZ answers [`transient`]ly, for up to [`ADAPTER_WAIT`].
pub(super) async fn retry_transient<T, F, Fut>(
    what: &str,
    mut attempt: F,
) -> Result<T, btleplug::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, btleplug::Error>>,
{
    let deadline = tokio::time::Instant::now() + ADAPTER_WAIT;
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match attempt().await {
            Err(e) if transient(&cause(&e)) && tokio::time::Instant::now() + pause < deadline => {
                log::info!(
                    "{what}: BlueZ says {}; trying again in {pause:?}",
                    cause(&e)
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// The first Bluetooth adapter, waiting up to [`ADAPTER_WAIT`] for BlueZ and an adapter to
/// be there.
pub(super) async fn first_adapter(what: &str) -> Result<Adapter, TransportError> {
    let deadline = tokio::time::Instant::now() + ADAPTER_WAIT;
    let mut waited = false;
    loop {
        match try_first_adapter(what).await {
            Err(TransportError::Absent(text)) if tokio::time::Instant::now() < deadline => {
                if !waited {
                    log::info!("{text}; waiting up to {} s for it", ADAPTER_WAIT.as_secs());
                    waited = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

async fn try_first_adapter(what: &str) -> Result<Adapter, TransportError> {
    let manager = bus().await.map(|bus| bus.manager).map_err(|e| {
        TransportError::Absent(format!(
            "{what}: cannot reach BlueZ on the system D-Bus ({}); is bluetoothd running?",
            cause(&e)
        ))
    })?;
    let adapters = manager.adapters().await.map_err(|e| {
        TransportError::Absent(format!(
            "{what}: cannot list Bluetooth adapters: {}",
            cause(&e)
        ))
    })?;
    adapters.into_iter().next().ok_or_else(|| {
        TransportError::Absent(format!(
            "{what}: no Bluetooth adapter (is one plugged in and not blocked by rfkill?)"
        ))
    })
}

/// An error from btleplug in words, with the D-Bus error name when BlueZ sent one
/// (`org.bluez.Error.Failed: le-connection-abort-by-local`).
pub(super) fn cause(e: &btleplug::Error) -> String {
    if let btleplug::Error::Other(inner) = e {
        if let Some(bluez_async::BluetoothError::DbusError(dbus)) =
            inner.downcast_ref::<bluez_async::BluetoothError>()
        {
            return match (dbus.name(), dbus.message()) {
                (Some(n), Some(m)) => format!("{n}: {m}"),
                (Some(n), None) => n.to_string(),
                _ => dbus.to_string(),
            };
        }
    }
    e.to_string()
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_on_the_ble_runtime_comes_back_as_refused() {
        let err = on_ble_runtime("ble:C0:FF:EE:00:00:01", async {
            if true {
                panic!("bluez-async unwrapped a None");
            }
            Ok(())
        })
        .await
        .unwrap_err();
        let TransportError::Refused(text) = err else {
            panic!("expected Refused, got {err:?}");
        };
        assert!(text.starts_with("ble:C0:FF:EE:00:00:01: "), "{text}");
        assert!(text.contains("bluez-async unwrapped a None"), "{text}");
        // The runtime survives: the next piece of work runs.
        assert_eq!(on_ble_runtime("again", async { Ok(7) }).await.unwrap(), 7);
    }
}
