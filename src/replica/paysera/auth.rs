//! MAC access authentication as the Paysera replica checks it, written from the documents and
//! sharing no code with the client's signer (`provider::sign`), so that a signing bug in the
//! client is refused here instead of being reproduced: the replica is a witness, not a mirror.
//!
//! The rule (docs/providers.md, Paysera, "MAC access authentication", from Paysera's public
//! Wallet API pages; the POS document shows only the resulting headers, ten of them, which the
//! tests in `auth_tests.rs` verify as printed): the normalized request string is seven lines,
//! each ending in `\n` — `ts`, `nonce`, the method, the request URI (path and `?query` as
//! received), the host without port, the port (from the `Host` header, else the scheme's:
//! `default_port`), `ext` — and `mac` = base64(HMAC-SHA256(mac key, that string)). A request
//! with a body must carry `ext="body_hash=<form-url-encoded base64(SHA-256(body bytes))>"`, one
//! without a body no `ext`. A stale `ts` (more than `max_skew_s` from now) and a reused nonce
//! are refused with `unauthorized`, as Paysera does. It never echoes the expected mac or the key.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use hmac::Mac as _;

use crate::secret::Secret;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct Verifier {
    pub secret: Secret,
    /// When set, the MAC `id` must be this client id.
    pub client_id: Option<String>,
    pub max_skew_s: u64,
    /// The port signed when the `Host` header names none: the scheme's (80 for the loopback
    /// replica, which speaks plain HTTP; 443 for `https://wallet.paysera.com`).
    pub default_port: u16,
    /// Nonces seen within the skew window, with their ts.
    nonces: Mutex<HashMap<String, u64>>,
}

/// The parameters of `Authorization: MAC k="v", k="v", ...`; `None` when the header is not in
/// that form or names a parameter twice.
fn mac_header_params(header: &str) -> Option<HashMap<&str, &str>> {
    let rest = header.strip_prefix("MAC ")?;
    let mut out = HashMap::new();
    for item in rest.split(',') {
        let (name, quoted) = item.trim().split_once('=')?;
        let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
        if out.insert(name, value).is_some() {
            return None;
        }
    }
    Some(out)
}

/// application/x-www-form-urlencoded, as `http_build_query` writes a value (Paysera's PHP
/// client builds `ext` with it): letters, digits and `-_.` stay, a space is `+`, every other
/// byte is `%XX` in upper-case hex.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// The `ext` a request with these body bytes must carry: empty without a body.
fn ext_for_body(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("body_hash={}", form_urlencode(&b64))
}

/// `Host: name[:port]` as (name, port); a bracketed IPv6 literal keeps its brackets.
fn host_and_port(host: &str, default_port: u16) -> Result<(&str, u16), String> {
    let bad = || format!("bad port in Host {host:?}");
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let end = v6.find(']').ok_or_else(bad)?;
            let (name, after) = host.split_at(end + 2);
            (name, after.strip_prefix(':'))
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    Ok((name, port))
}

/// The seven lines of the normalized request string, in the document's order.
struct Normalized<'a> {
    ts: &'a str,
    nonce: &'a str,
    method: &'a str,
    uri: &'a str,
    host: &'a str,
    port: u16,
    ext: &'a str,
}

impl Normalized<'_> {
    fn text(&self) -> String {
        let port = self.port.to_string();
        let lines = [
            self.ts,
            self.nonce,
            self.method,
            self.uri,
            self.host,
            &port,
            self.ext,
        ];
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

impl Verifier {
    pub fn new(
        secret: Secret,
        client_id: Option<String>,
        max_skew_s: u64,
        default_port: u16,
    ) -> Verifier {
        Verifier {
            secret,
            client_id,
            max_skew_s,
            default_port,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok(())` when the request is signed correctly; else why not (for error_description).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: u64,
    ) -> Result<(), String> {
        let header = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or("no MAC Authorization header")?;
        let p = mac_header_params(header).ok_or("malformed MAC Authorization header")?;
        let field = |k: &str| p.get(k).copied().ok_or(format!("no {k} in MAC header"));
        let (id, ts_text, nonce, mac) =
            (field("id")?, field("ts")?, field("nonce")?, field("mac")?);
        if self.client_id.as_deref().is_some_and(|want| want != id) {
            return Err(format!("unknown client {id:?}"));
        }
        let ts: u64 = ts_text.parse().map_err(|_| "ts is not a number")?;
        if now.abs_diff(ts) > self.max_skew_s {
            return Err(format!("stale timestamp {ts} (now {now})"));
        }
        let ext = p.get("ext").copied().unwrap_or("");
        if ext != ext_for_body(body) {
            return Err("body_hash does not match the body".into());
        }
        let host_header = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .ok_or("no Host header")?;
        let (host, port) = host_and_port(host_header, self.default_port)?;
        let normalized = Normalized {
            ts: ts_text,
            nonce,
            method: method.as_str(),
            uri: uri.path_and_query().map_or("/", |pq| pq.as_str()),
            host,
            port,
            ext,
        };
        let claimed = base64::engine::general_purpose::STANDARD
            .decode(mac)
            .map_err(|_| "mac is not base64")?;
        let mut hmac = HmacSha256::new_from_slice(self.secret.expose().as_bytes())
            .map_err(|_| "unusable mac key")?;
        hmac.update(normalized.text().as_bytes());
        // Constant-time comparison of the raw HMAC bytes.
        if hmac.verify_slice(&claimed).is_err() {
            return Err("mac does not match the request".into());
        }
        // Only a correctly signed request uses up its nonce (forgeries cannot burn nonces).
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.max_skew_s * 2;
        nonces.retain(|_, seen| now.abs_diff(*seen) <= window);
        if nonces.insert(nonce.to_owned(), ts).is_some() {
            return Err("nonce already used".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
