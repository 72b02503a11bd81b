//! The Paysera calls as HTTP: every request MAC-signed (providers.md, "Paysera"), answers
//! parsed into the Paysera POS document's shapes ([`Spot`] with `place_info.location_id` and
//! its orders, [`Order`] with `transaction_key` at its top level, ids as integers or strings),
//! error bodies into [`ApiError`]. Only the document's calls plus the transaction create,
//! read, confirm and revoke it names without showing (docs/providers.md, "What the documents leave open"). It decides nothing about
//! money (that is `mod.rs`), never retries, and never logs or formats the MAC key or the
//! `Authorization` header.
//!
//! The signed request URI is the path under the base URL exactly as reqwest sends it: every
//! path segment and query value we build is restricted to characters that need no escaping
//! (or percent-encoded here), so the URL parser has nothing left to normalise.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::provider::http::{snippet, Http, HttpError};
use crate::provider::sign;
use crate::secret::Secret;

/// What a call can end in, besides a usable answer.
#[derive(Debug)]
pub enum ApiError {
    /// Never sent (`NotSent`), or may have acted (`MaybeSent`, which includes every 5xx).
    Http(HttpError),
    /// Paysera answered with its JSON error object (`{error, error_description}`).
    Refused {
        status: u16,
        error: String,
        description: String,
        /// How far our clock was from the answer's `Date`, in seconds (ours ahead: positive).
        skew: Option<i64>,
    },
    /// An answer that is neither the expected JSON nor an error object. The request was
    /// received, so for a money-moving call this counts as "may have acted".
    Garbled { status: u16, detail: String },
}

impl ApiError {
    /// Whether Paysera refused with this `error` code.
    pub fn is(&self, code: &str) -> bool {
        matches!(self, ApiError::Refused { error, .. } if error == code)
    }

    /// When Paysera refused our credentials while our clock is over [`clock::SKEW_LIMIT_S`]
    /// off its own: the MAC's `ts` was stale, not the key (docs/providers.md, "What the documents leave open"). The
    /// skew in seconds, ours ahead positive.
    ///
    /// [`clock::SKEW_LIMIT_S`]: crate::clock::SKEW_LIMIT_S
    pub fn clock_skew(&self) -> Option<i64> {
        match self {
            ApiError::Refused {
                status,
                error,
                skew: Some(skew),
                ..
            } if (*status == 401 || *status == 403 || error == "unauthorized")
                && skew.abs() > crate::clock::SKEW_LIMIT_S =>
            {
                Some(*skew)
            }
            _ => None,
        }
    }

    /// Whether the backend may have acted on the request (or we cannot tell).
    pub fn maybe_acted(&self) -> bool {
        match self {
            ApiError::Http(HttpError::NotSent { .. }) => false,
            ApiError::Http(HttpError::MaybeSent { .. }) | ApiError::Garbled { .. } => true,
            // A 4xx `internal_server_error` says as little as a 500 does.
            ApiError::Refused { error, .. } => error == "internal_server_error",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Http(e) => write!(f, "{e}"),
            ApiError::Refused {
                status,
                error,
                description,
                ..
            } => write!(f, "Paysera answered {error} (HTTP {status}): {description}"),
            ApiError::Garbled { status, detail } => {
                write!(
                    f,
                    "Paysera's answer could not be read (HTTP {status}): {detail}"
                )
            }
        }
    }
}

/// Text of a JSON string or number: Paysera shows ids as integers (`"id": 52`); a string is
/// taken too.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An order as the document's "Order data structure" shows it: `id`, `transaction_key` and
/// `status` (pending, reserved, confirmed, closed), all at the order's top level.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: String,
    pub status: String,
    pub transaction_key: String,
}

impl Order {
    pub fn parse(v: &Value) -> Option<Order> {
        Some(Order {
            id: text(&v["id"])?,
            status: v["status"].as_str()?.to_owned(),
            transaction_key: v["transaction_key"].as_str()?.to_owned(),
        })
    }
}

/// A spot as the document's "Response data structure" of `GET /spot/:id` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Spot {
    pub status: String,
    pub identifier: String,
    /// `place_info.location_id`, when the place info carries it.
    pub location_id: Option<String>,
    pub orders: Vec<Order>,
}

impl Spot {
    pub fn parse(v: &Value) -> Option<Spot> {
        let orders = match &v["orders"] {
            Value::Null => Vec::new(),
            Value::Array(list) => list.iter().map(Order::parse).collect::<Option<_>>()?,
            _ => return None,
        };
        Some(Spot {
            status: v["status"].as_str().unwrap_or("").to_owned(),
            identifier: text(&v["identifier"])?,
            location_id: text(&v["place_info"]["location_id"]),
            orders,
        })
    }

    /// The spot's order for transaction `key`, if the spot lists it.
    pub fn order_for(&self, key: &str) -> Option<&Order> {
        self.orders.iter().find(|o| o.transaction_key == key)
    }
}

pub struct Client {
    http: Http,
    client_id: String,
    mac_key: Secret,
    host: String,
    port: u16,
    /// The base URL's own path (e.g. `/wallet`), part of every signed URI; `""` for none.
    base_path: String,
}

/// Escapes one path segment or query value (ids are alphanumeric in practice).
pub fn escape(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl Client {
    pub fn new(
        base_url: &str,
        client_id: &str,
        mac_key: Secret,
        request_timeout: Duration,
    ) -> anyhow::Result<Client> {
        use anyhow::Context;
        let url = Url::parse(base_url)
            .with_context(|| format!("providers.paysera.base_url: {base_url:?} is not a URL"))?;
        let host = url
            .host_str()
            .with_context(|| format!("providers.paysera.base_url: {base_url:?} has no host"))?
            .to_owned();
        // 443 for https, 80 for http, unless the URL names a port.
        let port = url.port_or_known_default().with_context(|| {
            format!("providers.paysera.base_url: {base_url:?} needs http or https")
        })?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Client {
            http: Http::new("Paysera", base_url, request_timeout)?,
            client_id: client_id.to_owned(),
            mac_key,
            host,
            port,
            base_path,
        })
    }

    /// The `Authorization` header for one request. Pure apart from its inputs, for tests.
    pub fn authorization(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        ts: u64,
        nonce: &str,
    ) -> String {
        let ext = body.map(sign::paysera_body_hash_ext).unwrap_or_default();
        let uri = format!("{}{path}", self.base_path);
        let parts = sign::PayseraMacParts {
            ts,
            nonce,
            method: method.as_str(),
            uri: &uri,
            host: &self.host,
            port: self.port,
            ext: &ext,
        };
        let mac = sign::paysera_mac(self.mac_key.expose(), &parts);
        sign::paysera_authorization_header(&self.client_id, ts, nonce, &mac, &ext)
    }

    /// One signed call; `path` starts with `/rest/v1/`. A JSON object comes back, or why not.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        // The counter's wall clock: when it is far off Paysera refuses the MAC (see
        // `ApiError::clock_skew`).
        let ts = crate::clock::unix_secs();
        // A fresh nonce for every request, retries of reads included: Paysera refuses reuse.
        let auth = self.authorization(&method, path, bytes.as_deref(), ts, &sign::nonce());
        let mut req = self
            .http
            .request(method, path)
            .header("Authorization", auth)
            .header("Accept", "application/json");
        if let Some(b) = bytes {
            req = req
                .header("Content-Type", "application/json;charset=utf-8")
                .body(b);
        }
        let reply = self.http.send(req).await.map_err(ApiError::Http)?;
        read_reply(reply.status, &reply.body, reply.date.as_deref())
    }

    /// `GET /rest/v1/spot/{id}`: the spot, its code parts and its orders. Reads only.
    pub async fn spot(&self, spot_id: &str) -> Result<Spot, ApiError> {
        let v = self
            .call(
                Method::GET,
                &format!("/rest/v1/spot/{}", escape(spot_id)),
                None,
            )
            .await?;
        parse_spot(&v)
    }

    /// `PUT /rest/v1/spot/{id}/close`: closes the spot and every pending order in it.
    pub async fn close_spot(&self, spot_id: &str) -> Result<Spot, ApiError> {
        let path = format!("/rest/v1/spot/{}/close", escape(spot_id));
        let v = self.call(Method::PUT, &path, None).await?;
        parse_spot(&v)
    }

    /// `POST /rest/v1/transaction`: a transaction in status `new`. Nobody can pay it until an
    /// order at the spot carries its key, so a lost answer here charges nothing. Returns the
    /// transaction key (`transaction_key`, or `key` as older Wallet API pages name it).
    pub async fn create_transaction(&self, body: &Value) -> Result<String, ApiError> {
        let v = self
            .call(Method::POST, "/rest/v1/transaction", Some(body))
            .await?;
        transaction_key(&v)
    }

    /// `POST /rest/v1/spot/{id}/order` with `{"transaction_key": ...}`: puts the transaction
    /// in front of the customer. Sent once, never retried.
    pub async fn create_order(&self, spot_id: &str, key: &str) -> Result<Order, ApiError> {
        let path = format!("/rest/v1/spot/{}/order", escape(spot_id));
        let body = serde_json::json!({ "transaction_key": key });
        let v = self.call(Method::POST, &path, Some(&body)).await?;
        parse_order(&v)
    }

    pub async fn order(&self, id: &str) -> Result<Order, ApiError> {
        let v = self
            .call(Method::GET, &format!("/rest/v1/order/{}", escape(id)), None)
            .await?;
        parse_order(&v)
    }

    /// `PUT /rest/v1/transaction/{key}/confirm`: takes the reserved money. The commit point.
    pub async fn confirm(&self, transaction_key: &str) -> Result<Value, ApiError> {
        let path = format!("/rest/v1/transaction/{}/confirm", escape(transaction_key));
        self.call(Method::PUT, &path, None).await
    }

    /// `GET /rest/v1/transaction/{key}`: the transaction's `status` (new, reserved, confirmed,
    /// revoked, rejected, ...). Reads only.
    pub async fn transaction(&self, transaction_key: &str) -> Result<String, ApiError> {
        let path = format!("/rest/v1/transaction/{}", escape(transaction_key));
        let v = self.call(Method::GET, &path, None).await?;
        v["status"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Garbled {
                status: 200,
                detail: "a transaction without status".into(),
            })
    }

    /// `DELETE /rest/v1/transaction/{key}`: revokes a transaction that is not confirmed, so it
    /// can never be paid.
    pub async fn revoke(&self, transaction_key: &str) -> Result<Value, ApiError> {
        let path = format!("/rest/v1/transaction/{}", escape(transaction_key));
        self.call(Method::DELETE, &path, None).await
    }
}

/// What one answer (HTTP status and body) says: a JSON object, or why not. Pure, so the fuzz
/// targets (fuzz/) test exactly what [`Client`] does with the bytes Paysera sends.
pub fn read_reply(status: u16, body: &[u8], date: Option<&str>) -> Result<Value, ApiError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match (status, parsed) {
        (200..=299, Some(v @ Value::Object(_))) => Ok(v),
        // Some calls (confirm, revoke) may answer with an empty body.
        (200..=299, None) if body.iter().all(u8::is_ascii_whitespace) => {
            Ok(Value::Object(Default::default()))
        }
        (status, Some(v)) if v["error"].is_string() => Err(ApiError::Refused {
            status,
            error: v["error"].as_str().unwrap_or_default().to_owned(),
            description: v["error_description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned(),
            skew: crate::clock::skew_from_date(date),
        }),
        (status, _) => Err(ApiError::Garbled {
            status,
            detail: snippet(body),
        }),
    }
}

/// The key in a transaction create answer (`transaction_key`, or `key` as older Wallet API
/// pages name it).
pub fn transaction_key(v: &Value) -> Result<String, ApiError> {
    v["transaction_key"]
        .as_str()
        .or(v["key"].as_str())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Garbled {
            status: 200,
            detail: "a transaction without transaction_key".into(),
        })
}

pub fn parse_spot(v: &Value) -> Result<Spot, ApiError> {
    Spot::parse(v).ok_or_else(|| ApiError::Garbled {
        status: 200,
        detail: "a spot without identifier, or with an unreadable order list".into(),
    })
}

pub fn parse_order(v: &Value) -> Result<Order, ApiError> {
    Order::parse(v).ok_or_else(|| ApiError::Garbled {
        status: 200,
        detail: "an order without id, status or transaction_key".into(),
    })
}
