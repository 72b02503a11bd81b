//! One request line in, one response line out.
//!
//! Parses with `protocol`, hands valid requests to the engine (operations and results) or the
//! device manager (devices, pair, unpair, scan), and turns everything else into an
//! `invalid_request` answer. A request named the LIFE POS way gets its answer turned into the
//! contract's shape here, at the edge ([`protocol::contract_line`]): the engine and the
//! journal only ever hold the v1 answer. Never talks to a provider or the journal directly.

use std::sync::Arc;

use serde_json::json;

use super::access::Peer;
use super::protocol::{self, Action, ErrorType, Request, Response};
use crate::device::manager::{DeviceError, DeviceManager};
use crate::engine::resolve::Decision;
use crate::engine::Engine;

pub async fn answer(
    engine: &Arc<Engine>,
    devices: &Arc<DeviceManager>,
    peer: &Peer,
    line: &[u8],
) -> String {
    let (answer, lifepos_action, sent_id) = v1_answer(engine, devices, peer, line).await;
    match lifepos_action {
        Some(action) => protocol::contract_line(&answer, &action, sent_id.as_deref()),
        None => answer,
    }
}

/// The v1 answer line, the LIFE POS action name when the request used one, and the
/// request_id as sent when the request was refused (for the contract's echo, valid or not).
async fn v1_answer(
    engine: &Arc<Engine>,
    devices: &Arc<DeviceManager>,
    peer: &Peer,
    line: &[u8],
) -> (String, Option<String>, Option<String>) {
    let parsed = protocol::parse_request(line);
    let (lifepos_action, sent_id) = match &parsed {
        Ok(req) => (req.lifepos_action.clone(), None),
        Err(rejection) => (
            rejection.lifepos_action.clone(),
            protocol::peek(line).request_id,
        ),
    };
    let answer = match parsed {
        Ok(req) if req.action.needs_admin() && !peer.operate => {
            log::warn!(
                "refused {} from uid {}: not in api.admin_groups",
                req.action.as_str(),
                peer.uid
            );
            Response::error(
                req.request_id,
                req.metadata,
                ErrorType::DefaultError,
                "unauthorized",
                format!(
                    "this user may not run {}: it needs a group listed in api.admin_groups",
                    req.action.as_str()
                ),
            )
            .to_line()
        }
        Ok(req) if req.action.is_device_action() => device_action(devices, req).await,
        Ok(Request {
            action: Action::Resolve,
            request_id: Some(id),
            metadata,
            resolution: Some(r),
            ..
        }) => {
            let decision = if r.charged {
                Decision::Charged
            } else {
                Decision::NotCharged
            };
            engine
                .resolve(&id, &metadata, decision, &r.note, &peer.describe())
                .await
        }
        Ok(req) => engine.handle(req).await,
        Err(rejection) => {
            log::debug!("refused a request: {}", rejection.message);
            rejection.into_response().to_line()
        }
    };
    (answer, lifepos_action, sent_id)
}

async fn device_action(devices: &DeviceManager, req: Request) -> String {
    let answer = match req.action {
        Action::Devices => Ok(json!({"devices": devices.list()})),
        Action::Pair => {
            let address = req.address.as_deref().unwrap_or_default();
            let role = req.role.as_deref().unwrap_or_default();
            devices.pair(address, role, req.baud).await
        }
        Action::Scan => devices.scan(req.seconds.unwrap_or(5)).await,
        _ => devices.unpair(req.id.as_deref().unwrap_or_default()).await,
    };
    match answer {
        Ok(data) => Response::ok(req.request_id, req.metadata, data).to_line(),
        Err(DeviceError {
            reason, message, ..
        }) => {
            log::warn!("{} refused: {message}", req.action.as_str());
            Response::error(
                req.request_id,
                req.metadata,
                ErrorType::DefaultError,
                reason,
                message,
            )
            .to_line()
        }
    }
}

/// A refusal made before a request could be parsed, in the shape the request asked for: the
/// LIFE POS contract's when its action (read from `line` by `protocol::peek`, which may be
/// only the start of the line, or empty) is one of the contract's, with its request_id echoed
/// as sent; else v1.
fn in_asked_shape(v1: String, line: &[u8]) -> String {
    let peeked = protocol::peek(line);
    match peeked
        .action
        .filter(|a| a.starts_with(protocol::LIFEPAY_PREFIX))
    {
        Some(action) => protocol::contract_line(&v1, &action, peeked.request_id.as_deref()),
        None => v1,
    }
}

/// The answer to a line longer than [`protocol::MAX_LINE`] (`start`: its first bytes); the
/// connection then closes.
pub fn too_long(start: &[u8]) -> String {
    in_asked_shape(too_long_v1(), start)
}

fn too_long_v1() -> String {
    Response::error(
        None,
        Default::default(),
        ErrorType::DefaultError,
        "invalid_request",
        format!(
            "the request line is longer than {} bytes; this connection will be closed",
            protocol::MAX_LINE
        ),
    )
    .to_line()
}

/// The one answer a peer outside `api.allowed_groups` gets before it is disconnected
/// (`first`: what arrived of its first request, maybe nothing).
pub fn unauthorized(uid: u32, first: &[u8]) -> String {
    let v1 = Response::error(
        None,
        Default::default(),
        ErrorType::DefaultError,
        "unauthorized",
        format!("user {uid} may not use posbridge: add it to a group listed in api.allowed_groups"),
    )
    .to_line();
    in_asked_shape(v1, first)
}

/// The answer to a connection beyond `api.max_connections`; it then closes (`first`: what
/// arrived of its first request, maybe nothing).
pub fn busy(limit: usize, first: &[u8]) -> String {
    let v1 = Response::error(
        None,
        Default::default(),
        ErrorType::DefaultError,
        "busy",
        format!("posbridge is serving its limit of {limit} connections; try again shortly"),
    )
    .to_line();
    in_asked_shape(v1, first)
}
