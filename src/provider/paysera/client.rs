//! The Paysera Wallet API as HTTP calls: every request MAC-signed (providers.md, "Paysera"),
//! answers parsed into [`Order`]s, error bodies into [`ApiError`]. It decides nothing about
//! money (that is `mod.rs`), never retries, and never logs or formats the MAC key or the
//! `Authorization` header.
//!
//! The signed request URI is the path under the base URL exactly as reqwest sends it: every
//! path segment and query value we build is restricted to characters that need no escaping
//! (or percent-encoded here), so the URL parser has nothing left to normalise.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    },
    /// An answer that is neither the expected JSON nor an error object. The request was
    /// received, so for a money-moving call this counts as "may have acted".
    Garbled { status: u16, detail: String },
}

impl ApiError {
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

/// An order as `GET /rest/v1/order/{id}` shows it, with its transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: String,
    /// pending, reserved, confirmed, closed.
    pub status: String,
    pub transaction_key: String,
    /// Transaction status: new, waiting, reserved, confirmed, revoked, rejected, ...
    pub transaction_status: String,
}

impl Order {
    pub fn parse(v: &Value) -> Option<Order> {
        let id = match &v["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let tx = &v["transaction"];
        Some(Order {
            id,
            status: v["status"].as_str()?.to_owned(),
            transaction_key: tx["transaction_key"].as_str()?.to_owned(),
            transaction_status: tx["status"].as_str().unwrap_or("").to_owned(),
        })
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
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
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
        let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
        match (reply.status, parsed) {
            (200..=299, Some(v @ Value::Object(_))) => Ok(v),
            // Some calls (confirm, revoke) may answer with an empty body.
            (200..=299, None) if reply.body.iter().all(u8::is_ascii_whitespace) => {
                Ok(Value::Object(Default::default()))
            }
            (status, Some(v)) if v["error"].is_string() => Err(ApiError::Refused {
                status,
                error: v["error"].as_str().unwrap_or_default().to_owned(),
                description: v["error_description"]
                    .as_str()
                    .unwrap_or("no description")
                    .to_owned(),
            }),
            (status, _) => Err(ApiError::Garbled {
                status,
                detail: snippet(&reply.body),
            }),
        }
    }

    /// `GET /rest/v1/spot/{id}`: the spot, for its QR code. Reads only.
    pub async fn spot(&self, spot_id: &str) -> Result<Value, ApiError> {
        self.call(
            Method::GET,
            &format!("/rest/v1/spot/{}", escape(spot_id)),
            None,
        )
        .await
    }

    /// `POST /rest/v1/spot/{id}/order`: the money-moving call. Sent once, never retried.
    pub async fn create_order(&self, spot_id: &str, body: &Value) -> Result<Value, ApiError> {
        let path = format!("/rest/v1/spot/{}/order", escape(spot_id));
        self.call(Method::POST, &path, Some(body)).await
    }

    pub async fn order(&self, id: &str) -> Result<Order, ApiError> {
        let v = self
            .call(Method::GET, &format!("/rest/v1/order/{}", escape(id)), None)
            .await?;
        parse_order(&v)
    }

    /// The orders of `spot_id` whose payment carries `key` as its `order_id`: how a sale is
    /// found again from its request_id alone. `GET /rest/v1/orders?spot_id=..&order_id=..`,
    /// answering `{"orders": [...]}`. providers.md documents no such search; see `mod.rs`.
    pub async fn find_order(&self, spot_id: &str, key: &str) -> Result<Option<Order>, ApiError> {
        let path = format!(
            "/rest/v1/orders?spot_id={}&order_id={}",
            escape(spot_id),
            escape(key)
        );
        let v = self.call(Method::GET, &path, None).await?;
        let Some(list) = v["orders"].as_array() else {
            return Err(ApiError::Garbled {
                status: 200,
                detail: "no `orders` list".into(),
            });
        };
        // Oldest first; posbridge creates one order per key, so there is one at most.
        list.first().map(parse_order).transpose()
    }

    /// `PUT /rest/v1/transaction/{key}/confirm`: takes the reserved money. The commit point.
    pub async fn confirm(&self, transaction_key: &str) -> Result<Value, ApiError> {
        let path = format!("/rest/v1/transaction/{}/confirm", escape(transaction_key));
        self.call(Method::PUT, &path, None).await
    }

    /// `DELETE /rest/v1/transaction/{key}`: releases a transaction that is not confirmed.
    pub async fn revoke(&self, transaction_key: &str) -> Result<Value, ApiError> {
        let path = format!("/rest/v1/transaction/{}", escape(transaction_key));
        self.call(Method::DELETE, &path, None).await
    }

    /// `DELETE /rest/v1/order/{id}`: closes the order at the spot.
    pub async fn delete_order(&self, id: &str) -> Result<Value, ApiError> {
        self.call(
            Method::DELETE,
            &format!("/rest/v1/order/{}", escape(id)),
            None,
        )
        .await
    }
}

fn parse_order(v: &Value) -> Result<Order, ApiError> {
    Order::parse(v).ok_or_else(|| ApiError::Garbled {
        status: 200,
        detail: "an order without id, status or transaction_key".into(),
    })
}
