//! Opening one BLE link: find the peripheral (one BlueZ knows, else one a scan finds), connect
//! and discover its services within the limits of [`BleOptions`], check for the Nordic UART
//! Service, subscribe to TX and start the pump; on any failure on the way, hang up and say
//! whether the device is unseen (waited for the whole window: the caller waits again at once),
//! absent (the radio could not reach it) or refused (BlueZ or the device said no). Runs on the
//! BLE runtime (`stack`); it must not interpret link bytes.

use std::time::Duration;

use btleplug::api::{
    BDAddr, Central, CentralEvent, CharPropFlags, Characteristic, Peripheral as _, WriteType,
};
use btleplug::platform::{Adapter, Peripheral};
use futures_util::StreamExt;
use uuid::Uuid;

use super::stack::{self, cause, first_adapter, retry_transient};
use super::{
    pump, start_nus_scan, BleOptions, ACK_TIMEOUT, DEFAULT_ATT_MTU, NUS_RX, NUS_SERVICE, NUS_TX,
};
use crate::device::transport::{Connection, TransportError};

/// Connect, discover, check NUS, subscribe, start the pump. Runs on the BLE runtime.
pub(super) async fn open(
    address: BDAddr,
    name: String,
    options: BleOptions,
) -> Result<Connection, TransportError> {
    let adapter = first_adapter(&name).await?;
    // Watch events before connecting, so a disconnect right after cannot be missed.
    let mut events = adapter.events().await.map_err(|e| {
        TransportError::Refused(format!("{name}: cannot watch BlueZ events: {}", cause(&e)))
    })?;
    let peripheral = find(&adapter, &mut events, address, &name, options.scan_timeout).await?;
    // Whether BlueZ holds a bond before this link: one made while connecting (BlueZ raising
    // the link's security itself, with no agent but its own: Just Works) is not the bond the
    // technician confirmed, and must not count as it.
    let bonded_before = stack::bonded(&address.to_string()).await;

    if let Some(e) = link_up(&peripheral, &name, &options).await {
        hang_up(&peripheral, &name).await;
        return Err(e);
    }
    let discovered =
        tokio::time::timeout(options.discovery_timeout, peripheral.discover_services()).await;
    if let Some(e) = match discovered {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(connect_error(&name, &e)),
        Err(_) => Some(unresolved(&name, options.discovery_timeout)),
    } {
        hang_up(&peripheral, &name).await;
        return Err(e);
    }

    match start_link(&peripheral, events, &name, &options, bonded_before).await {
        Ok(connection) => Ok(connection),
        Err(e) => {
            hang_up(&peripheral, &name).await;
            Err(e)
        }
    }
}

/// Connects (bluez-async's connect also waits for the services to resolve), within
/// `connect_timeout`; and once BlueZ reports the device connected, within `discovery_timeout`
/// of that: a link whose services never resolve is given up on early. `None` when linked.
async fn link_up(
    peripheral: &Peripheral,
    name: &str,
    options: &BleOptions,
) -> Option<TransportError> {
    let connecting = async {
        match retry_transient(name, || peripheral.connect()).await {
            // Left connected by an attempt that failed half-way: carry on with that link.
            Err(e) if cause(&e).contains("org.bluez.Error.AlreadyConnected") => Ok(()),
            other => other,
        }
    };
    tokio::pin!(connecting);
    let give_up = tokio::time::sleep(options.connect_timeout);
    tokio::pin!(give_up);
    let mut look = tokio::time::interval(Duration::from_millis(250));
    let mut resolve_by: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            done = &mut connecting => return done.err().map(|e| connect_error(name, &e)),
            // BlueZ and the kernel held the connect open for the device to advertise: the
            // caller waits again at once (`Unseen`).
            _ = &mut give_up => return Some(TransportError::Unseen(format!(
                "{name}: no connection within {} s (out of range or powered off?)",
                options.connect_timeout.as_secs()
            ))),
            _ = look.tick() => match resolve_by {
                None => {
                    // Bounded: while this arm runs, `connecting` and `give_up` are not polled.
                    match tokio::time::timeout(LOOK_LIMIT, peripheral.is_connected()).await {
                        Ok(Ok(true)) => {
                            resolve_by =
                                Some(tokio::time::Instant::now() + options.discovery_timeout);
                        }
                        // BlueZ forgot the device while its connect was held (`bluetoothctl
                        // remove`): that connect would wait out its limit for nothing.
                        Ok(Err(e)) if forgotten(&e) => {
                            return Some(TransportError::Absent(format!(
                                "{name}: BlueZ forgot the device while connecting to it; \
                                 looking for it afresh"
                            )));
                        }
                        _ => {}
                    }
                }
                Some(by) if tokio::time::Instant::now() >= by => {
                    return Some(unresolved(name, options.discovery_timeout));
                }
                Some(_) => {}
            },
        }
    }
}

/// What to do when the reader refused access for the link's security: BlueZ turns the ATT
/// errors "insufficient authentication / encryption" into `NotPermitted: Not paired`.
fn refused_for_the_bond(cause: &str, name: &str) -> String {
    if cause.contains("org.bluez.Error.NotPermitted") || cause.contains("Not paired") {
        format!(
            " (the device requires an authenticated bond: pair it again with `posbridge pair \
             {name} --role ROLE --rebond` and compare the code)"
        )
    } else {
        String::new()
    }
}

/// BlueZ no longer has the device's object: it forgot the device (`bluetoothctl remove`).
fn forgotten(e: &btleplug::Error) -> bool {
    cause(e).contains("org.freedesktop.DBus.Error.UnknownObject")
}

/// How long [`link_up`] waits for BlueZ to say whether the device is connected yet.
const LOOK_LIMIT: Duration = Duration::from_millis(500);

/// A connected link whose services did not resolve within `limit`.
fn unresolved(name: &str, limit: Duration) -> TransportError {
    TransportError::Absent(format!(
        "{name}: connected, but its services did not resolve within {limit:?}; hung up to try \
         afresh"
    ))
}

/// Checks for NUS, subscribes to TX and starts the pump.
async fn start_link(
    peripheral: &Peripheral,
    events: pump::Events,
    name: &str,
    options: &BleOptions,
    bonded_before: Option<bool>,
) -> Result<Connection, TransportError> {
    let characteristics = peripheral.characteristics();
    let nus_char = |uuid: Uuid| -> Option<Characteristic> {
        characteristics
            .iter()
            .find(|c| c.service_uuid == NUS_SERVICE && c.uuid == uuid)
            .cloned()
    };
    let (Some(rx), Some(tx)) = (nus_char(NUS_RX), nus_char(NUS_TX)) else {
        return Err(TransportError::Refused(format!(
            "{name} has no complete Nordic UART Service ({NUS_SERVICE} with RX and TX): \
             is it a posbridge reader?"
        )));
    };
    // Listen before subscribing: the device may send the moment notifications are on.
    let notifications = peripheral.notifications().await.map_err(|e| {
        TransportError::Refused(format!(
            "{name}: cannot receive notifications: {}",
            cause(&e)
        ))
    })?;
    peripheral.subscribe(&tx).await.map_err(|e| {
        TransportError::Refused(format!(
            "{name}: BlueZ refused to enable TX notifications: {}{}",
            cause(&e),
            refused_for_the_bond(&cause(&e), name)
        ))
    })?;

    let att_mtu = options.att_mtu.unwrap_or_else(|| peripheral.mtu());
    let chunk = usize::from(att_mtu.max(DEFAULT_ATT_MTU)) - 3;
    // Write without response where the device allows it: several chunks per connection event
    // instead of one round trip each; the link protocol's ACKs make it reliable.
    let write_type = if rx
        .properties
        .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE)
    {
        WriteType::WithoutResponse
    } else {
        WriteType::WithResponse
    };
    let bonded = match (
        bonded_before,
        stack::bonded(&peripheral.address().to_string()).await,
    ) {
        (Some(false), Some(true)) => {
            log::warn!(
                "{name}: BlueZ bonded with the device while connecting to it, not through \
                 `posbridge pair`: that bond is not trusted; pair it again to send secrets"
            );
            Some(false)
        }
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    };
    let private = bonded == Some(true);
    let rssi = match peripheral.properties().await {
        Ok(Some(props)) => props.rssi,
        _ => None,
    };
    log::info!(
        "{name}: connected over NUS, ATT MTU {att_mtu}, {chunk}-byte chunks, {write_type:?}, {}",
        match bonded {
            Some(true) => "bonded",
            Some(false) => "NOT bonded: no secrets will be sent",
            None => "bond unknown (BlueZ did not say): no secrets will be sent",
        }
    );
    let stream = pump::start(pump::Link {
        name: name.to_string(),
        peripheral: peripheral.clone(),
        rx,
        write_type,
        chunk,
        notifications,
        events,
        bus_lost: Box::pin(stack::bus_lost().await),
    });
    Ok(Connection {
        stream: Box::new(stream),
        mtu: chunk,
        ack_timeout: ACK_TIMEOUT,
        private,
        ble: Some(crate::device::transport::BleFacts { bonded, rssi }),
    })
}

/// The peripheral with `address`: one BlueZ already knows, else one a scan finds in time.
async fn find(
    adapter: &Adapter,
    events: &mut pump::Events,
    address: BDAddr,
    name: &str,
    scan_timeout: Duration,
) -> Result<Peripheral, TransportError> {
    let known = adapter.peripherals().await.map_err(|e| {
        TransportError::Refused(format!("{name}: cannot list devices: {}", cause(&e)))
    })?;
    if let Some(p) = known.into_iter().find(|p| p.address() == address) {
        return Ok(p);
    }
    start_nus_scan(adapter)
        .await
        .map_err(|e| TransportError::Refused(format!("{name}: cannot scan: {}", cause(&e))))?;
    let found = tokio::time::timeout(scan_timeout, async {
        while let Some(event) = events.next().await {
            if let CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) = event {
                if let Ok(p) = adapter.peripheral(&id).await {
                    if p.address() == address {
                        return Some(p);
                    }
                }
            }
        }
        None
    })
    .await;
    if let Err(e) = adapter.stop_scan().await {
        log::warn!("{name}: could not stop discovery: {}", cause(&e));
    }
    match found {
        Ok(Some(p)) => Ok(p),
        // Scanned the whole window: the caller scans again at once (`Unseen`).
        Err(_) => Err(TransportError::Unseen(format!(
            "{name}: not found in a {} s scan (powered off, out of range, or not advertising?)",
            scan_timeout.as_secs()
        ))),
        // BlueZ's events ended before the window did (the bus went away): not a wait.
        Ok(None) => Err(TransportError::Absent(format!(
            "{name}: BlueZ's events ended during the scan"
        ))),
    }
}

/// Best-effort disconnect after a failed open; the error that matters is the one already met.
async fn hang_up(peripheral: &Peripheral, name: &str) {
    match tokio::time::timeout(Duration::from_secs(5), peripheral.disconnect()).await {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => log::debug!("{name}: disconnect after failure: {}", cause(&e)),
    }
}

/// A failed connect or discovery: absent when the radio could not reach the device, refused
/// when BlueZ or the device said no.
fn connect_error(name: &str, e: &btleplug::Error) -> TransportError {
    let text = cause(e);
    let unreachable = [
        "org.freedesktop.DBus.Error.NoReply",
        "org.bluez.Error.DoesNotExist",
        "abort-by-local",
        "page-timeout",
        "Host is down",
    ];
    if matches!(
        e,
        btleplug::Error::TimedOut(_) | btleplug::Error::DeviceNotFound
    ) || unreachable.iter().any(|u| text.contains(u))
    {
        TransportError::Absent(format!(
            "{name}: cannot reach the device ({text}); out of range or powered off?"
        ))
    } else {
        TransportError::Refused(format!("{name}: BlueZ refused the connection: {text}"))
    }
}
