//! One request line in, one answer line out.
//!
//! Reads the line with `protocol::parse` (the request and the shape to answer in), hands
//! valid requests to the engine (operations and results) or the device manager (devices,
//! pair, unpair, scan), and turns everything else into an `invalid_request` answer; the
//! answer is written by `render`, in the shape the request asked for. An operation or a scan
//! that asked for progress gets the connection's event queue (`server` writes the events). Never talks
//! to a provider or the journal directly, and never writes an answer's shape itself.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;

use super::access::Peer;
use super::protocol::{self, Action, Request};
use super::render;
use crate::device::manager::{DeviceError, DeviceManager};
use crate::engine::resolve::Decision;
use crate::engine::Engine;
use crate::exchange::{Answer, BondMethod, ErrorKind, Event, Sightings};

pub async fn answer(
    engine: &Arc<Engine>,
    devices: &Arc<DeviceManager>,
    peer: &Peer,
    line: &[u8],
    events: mpsc::Sender<Event>,
) -> String {
    let parsed = protocol::parse(line);
    let answer = match parsed.request {
        Ok(req) => typed_answer(engine, devices, peer, req, events).await,
        Err(rejection) => {
            log::debug!("refused a request: {}", rejection.message);
            rejection.into_answer()
        }
    };
    render::render(&answer, &parsed.shape)
}

/// The answer to a valid request.
async fn typed_answer(
    engine: &Arc<Engine>,
    devices: &Arc<DeviceManager>,
    peer: &Peer,
    req: Request,
    events: mpsc::Sender<Event>,
) -> Answer {
    match req {
        req if req.action.needs_admin() && !peer.operate => {
            log::warn!(
                "refused {} from uid {}: not in api.admin_groups",
                req.action.as_str(),
                peer.uid
            );
            Answer::refused(
                req.request_id,
                req.metadata,
                ErrorKind::DefaultError,
                "unauthorized",
                format!(
                    "this user may not run {}: it needs a group listed in api.admin_groups",
                    req.action.as_str()
                ),
            )
        }
        req if req.action == Action::Pair
            && !peer.bonds
            && (req.bond.is_some_and(|m| m != BondMethod::Unknown)
                || req.allow_unauthenticated) =>
        {
            log::warn!(
                "refused pair from {}: only root or the daemon's user may record a bond",
                peer.describe()
            );
            Answer::refused(
                req.request_id,
                req.metadata,
                ErrorKind::DefaultError,
                "unauthorized",
                "bond, allow_unauthenticated: only root or the daemon's own user may say how a \
                 Bluetooth bond was made or allow one that is not authenticated; pair with \
                 `sudo posbridge pair ble:ADDRESS`, which makes the bond itself",
            )
        }
        req if req.action.is_device_action() => device_action(devices, req, events).await,
        Request {
            action: Action::Resolve,
            request_id: Some(id),
            metadata,
            resolution: Some(r),
            ..
        } => {
            let decision = if r.charged {
                Decision::Charged
            } else {
                Decision::NotCharged
            };
            engine
                .resolve(&id, &metadata, decision, &r.note, &peer.describe())
                .await
        }
        req => {
            let events = req.progress.then_some(events);
            engine.handle_telling(req, events).await
        }
    }
}

async fn device_action(
    devices: &DeviceManager,
    req: Request,
    events: mpsc::Sender<Event>,
) -> Answer {
    let answer = match req.action {
        Action::Devices => Ok(json!({"devices": devices.list()})),
        Action::Pair => {
            let address = req.address.as_deref().unwrap_or_default();
            let role = req.role.as_deref().unwrap_or_default();
            devices
                .pair(address, role, req.baud, req.bond, req.allow_unauthenticated)
                .await
        }
        Action::Scan => {
            let sightings = match req.progress {
                true => Sightings::to(req.request_id.as_deref(), events),
                false => Sightings::default(),
            };
            devices.scan(req.seconds.unwrap_or(5), sightings).await
        }
        _ => devices.unpair(req.id.as_deref().unwrap_or_default()).await,
    };
    match answer {
        Ok(data) => Answer::done(req.request_id, req.metadata, data),
        Err(DeviceError {
            reason, message, ..
        }) => {
            log::warn!("{} refused: {message}", req.action.as_str());
            Answer::refused(
                req.request_id,
                req.metadata,
                ErrorKind::DefaultError,
                reason,
                message,
            )
        }
    }
}
