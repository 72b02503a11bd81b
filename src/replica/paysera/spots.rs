//! The replica's spots, as the document's "Getting spot", "Checking-in", "Checking-out",
//! "Finding spots by status" and "Closing spots" sections describe them: a spot answers with
//! id, status, identifier, place_info (location_id inside it) and its orders.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::{id_of, invalid, not_found, PayseraState, Replica, Shared, Spot};

impl Replica {
    /// The spot `id`, made on first use (every integer spot exists, closed).
    pub(super) fn spot_mut<'a>(&self, s: &'a mut PayseraState, id: u64) -> &'a mut Spot {
        s.spots.entry(id).or_insert_with(|| Spot {
            status: "closed".into(),
            identifier: format!("spot-{id}"),
            orders: Vec::new(),
            closes: 0,
        })
    }

    /// The document's spot data structure; `with_orders` false for the list of spots.
    fn spot_json(&self, s: &mut PayseraState, id: u64, with_orders: bool) -> Value {
        let spot = self.spot_mut(s, id).clone();
        let mut place = json!({"title": "Replica caffe", "description": "Loopback test spot",
            "address": "127.0.0.1"});
        if self.place_location {
            place["location_id"] = json!(self.location_id);
        }
        let mut v = json!({"id": id, "status": spot.status, "identifier": spot.identifier,
            "place_info": place});
        if with_orders {
            let orders: Vec<Value> = spot
                .orders
                .iter()
                .filter_map(|o| s.orders.get(o))
                .map(|o| o.json())
                .collect();
            v["orders"] = json!(orders);
        }
        v
    }
}

/// The query string's parameters, percent-decoded.
fn query(raw: Option<String>) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub async fn by_id(State(r): Shared, Path(id): Path<String>) -> Response {
    let id = match id_of(&id, "spot") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    Json(r.update(|s| r.spot_json(s, id, true))).into_response()
}

/// `GET /rest/v1/spot?code=PAYSERA*<location>:<identifier>`; an unknown identifier at this
/// location is registered on first use, as the document says.
pub async fn by_code(State(r): Shared, RawQuery(q): RawQuery) -> Response {
    let q = query(q);
    let Some(code) = q.get("code") else {
        return invalid("code is required");
    };
    let parsed = code
        .strip_prefix("PAYSERA*")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(loc, ident)| Some((loc.parse::<u64>().ok()?, ident)))
        .filter(|(_, ident)| !ident.is_empty());
    let Some((location, identifier)) = parsed else {
        return invalid("code must be PAYSERA*<location id>:<spot identifier>");
    };
    if location != r.location_id {
        return not_found("location");
    }
    Json(r.update(|s| {
        let found = s
            .spots
            .iter()
            .find(|(_, sp)| sp.identifier == identifier)
            .map(|(id, _)| *id);
        let id = found.unwrap_or_else(|| {
            let id = identifier
                .strip_prefix("spot-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| 10_000 + s.spots.len() as u64);
            r.spot_mut(s, id).identifier = identifier.to_owned();
            id
        });
        r.spot_json(s, id, true)
    }))
    .into_response()
}

pub async fn list(State(r): Shared, RawQuery(q): RawQuery) -> Response {
    let q = query(q);
    let Some(status) = q.get("status") else {
        return invalid("status is required");
    };
    if !["closed", "waiting", "open", "opened"].contains(&status.as_str()) {
        return invalid("status must be closed, waiting or open");
    }
    let num = |k: &str, default: usize| match q.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid(format!("{k} must be an integer"))),
    };
    let (limit, offset) = match (num("limit", 20), num("offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let want = if status == "opened" { "open" } else { status };
    Json(r.update(|s| {
        let ids: Vec<u64> = s
            .spots
            .iter()
            .filter(|(_, sp)| sp.status == want)
            .map(|(id, _)| *id)
            .collect();
        let spots: Vec<Value> = ids
            .iter()
            .skip(offset)
            .take(limit)
            .map(|id| r.spot_json(s, *id, false))
            .collect();
        json!({"spots": spots,
            "_metadata": {"total": ids.len(), "offset": offset, "limit": limit}})
    }))
    .into_response()
}

/// Check-in (closed -> waiting) and check-out (waiting -> closed).
fn move_spot(r: &Replica, raw: &str, from: &str, to: &str) -> Response {
    let id = match id_of(raw, "spot") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let spot = r.spot_mut(s, id);
        if spot.status == from {
            spot.status = to.into();
        }
        Json(r.spot_json(s, id, true)).into_response()
    })
}

pub async fn check_in(State(r): Shared, Path(id): Path<String>) -> Response {
    move_spot(&r, &id, "closed", "waiting")
}

pub async fn check_out(State(r): Shared, Path(id): Path<String>) -> Response {
    move_spot(&r, &id, "waiting", "closed")
}

/// Closes the spot and, as the document says, every pending order in it.
pub async fn close(State(r): Shared, Path(id): Path<String>) -> Response {
    let id = match id_of(&id, "spot") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    r.update(|s| {
        let listed = std::mem::take(&mut r.spot_mut(s, id).orders);
        for o in listed {
            if let Some(order) = s.orders.get_mut(&o) {
                if order.status == "pending" {
                    order.close();
                }
            }
        }
        let spot = r.spot_mut(s, id);
        spot.status = "closed".into();
        spot.closes += 1;
        Json(r.spot_json(s, id, true)).into_response()
    })
}
