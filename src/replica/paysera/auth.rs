//! MAC access authentication as the Paysera replica checks it: the `Authorization` header is
//! parsed, the mac recomputed with `provider::sign` from the request exactly as received
//! (method, path and query, Host without port, port — 80 unless the Host names one — ts, nonce,
//! `body_hash` ext over the exact body bytes) and compared in constant time. A stale `ts`
//! (more than `max_skew_s` away from now) and a reused nonce are refused with `unauthorized`,
//! as Paysera does. It never echoes the expected mac or the key.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

use crate::provider::sign;
use crate::secret::Secret;

pub struct Verifier {
    pub secret: Secret,
    /// When set, the MAC `id` must be this client id.
    pub client_id: Option<String>,
    pub max_skew_s: u64,
    /// Nonces seen within the skew window, with their ts.
    nonces: Mutex<HashMap<String, u64>>,
}

/// The parameters of `Authorization: MAC k="v", ...`.
fn params(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.strip_prefix("MAC ")?;
    let mut out = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Some(out)
}

impl Verifier {
    pub fn new(secret: Secret, client_id: Option<String>, max_skew_s: u64) -> Verifier {
        Verifier {
            secret,
            client_id,
            max_skew_s,
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
        let p = params(header).ok_or("malformed MAC Authorization header")?;
        let field = |k: &str| {
            p.get(k)
                .map(String::as_str)
                .ok_or(format!("no {k} in MAC header"))
        };
        let (id, nonce, mac) = (field("id")?, field("nonce")?, field("mac")?);
        if self.client_id.as_deref().is_some_and(|want| want != id) {
            return Err(format!("unknown client {id:?}"));
        }
        let ts: u64 = field("ts")?.parse().map_err(|_| "ts is not a number")?;
        if now.abs_diff(ts) > self.max_skew_s {
            return Err(format!("stale timestamp {ts} (now {now})"));
        }
        let ext = p.get("ext").map(String::as_str).unwrap_or("");
        let want_ext = if body.is_empty() {
            String::new()
        } else {
            sign::paysera_body_hash_ext(body)
        };
        if ext != want_ext {
            return Err("body_hash does not match the body".into());
        }
        let host_header = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .ok_or("no Host header")?;
        let (host, port) = match host_header.rsplit_once(':') {
            Some((h, port)) => (h, port.parse().map_err(|_| "bad port in Host")?),
            None => (host_header, 80),
        };
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let parts = sign::PayseraMacParts {
            ts,
            nonce,
            method: method.as_str(),
            uri: path_and_query,
            host,
            port,
            ext,
        };
        let expected = sign::paysera_mac(self.secret.expose(), &parts);
        let same =
            expected.len() == mac.len() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()));
        if !same {
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
mod tests {
    use super::*;

    fn signed(verifier_key: &str, ts: u64, nonce: &str, body: &[u8]) -> HeaderMap {
        let ext = if body.is_empty() {
            String::new()
        } else {
            sign::paysera_body_hash_ext(body)
        };
        let parts = sign::PayseraMacParts {
            ts,
            nonce,
            method: "POST",
            uri: "/rest/v1/spot/7/order?x=1",
            host: "127.0.0.1",
            port: 4000,
            ext: &ext,
        };
        let mac = sign::paysera_mac(verifier_key, &parts);
        let mut h = HeaderMap::new();
        let auth = sign::paysera_authorization_header("cid", ts, nonce, &mac, &ext);
        h.insert("authorization", auth.parse().unwrap());
        h.insert("host", "127.0.0.1:4000".parse().unwrap());
        h
    }

    #[test]
    fn accepts_good_and_refuses_forged_stale_and_replayed() {
        let v = Verifier::new(Secret::new("k"), Some("cid".into()), 300);
        let uri: Uri = "/rest/v1/spot/7/order?x=1".parse().unwrap();
        let body = br#"{"a":1}"#;
        let check = |h: &HeaderMap, b: &[u8], now| v.verify(&Method::POST, &uri, h, b, now);
        assert_eq!(check(&signed("k", 1000, "n1", body), body, 1000), Ok(()));
        let replay = check(&signed("k", 1000, "n1", body), body, 1001).unwrap_err();
        assert!(replay.contains("nonce"), "{replay}");
        let forged = check(&signed("other", 1000, "n2", body), body, 1000).unwrap_err();
        assert!(forged.contains("mac"), "{forged}");
        let tampered = check(&signed("k", 1000, "n3", body), b"{\"a\":2}", 1000).unwrap_err();
        assert!(tampered.contains("body_hash"), "{tampered}");
        let stale = check(&signed("k", 1000, "n4", body), body, 1400).unwrap_err();
        assert!(stale.contains("stale"), "{stale}");
        // A forged request did not use up its nonce.
        assert_eq!(check(&signed("k", 1000, "n2", body), body, 1000), Ok(()));
    }
}
