//! Paysera Wallet API MAC access authentication: the seven-line normalized request string, the
//! `body_hash` ext, the HMAC-SHA256 mac, the `Authorization` header and nonces. It must not read
//! the clock (the caller passes `ts`), send anything, or keep or print the mac key.

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use sha2::{Digest, Sha256};

/// The request facts Paysera's MAC covers. Holds no secret, so `Debug` is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayseraMacParts<'a> {
    /// Unix seconds; the same value goes into the `ts` of the header.
    pub ts: u64,
    pub nonce: &'a str,
    /// HTTP method; upper-cased when normalized.
    pub method: &'a str,
    /// Path plus `?query`, byte for byte as sent (already percent-encoded).
    pub uri: &'a str,
    /// Host name without a port.
    pub host: &'a str,
    /// 443 for https unless the URL names another port.
    pub port: u16,
    /// `""` without a body, else [`paysera_body_hash_ext`] of the body.
    pub ext: &'a str,
}

impl PayseraMacParts<'_> {
    /// The seven-line normalized request string, every line ending in `\n`.
    pub fn normalized(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.ts,
            self.nonce,
            self.method.to_ascii_uppercase(),
            self.uri,
            self.host,
            self.port,
            self.ext
        )
    }
}

/// Form-url-encoding of a base64 string: of its alphabet only `+`, `/` and `=` need escaping.
const BASE64_FORM: &AsciiSet = &CONTROLS.add(b'+').add(b'/').add(b'=');

/// `ext` for a request with a body: `body_hash=` + form-url-encoded base64(SHA-256(body)), over the
/// exact bytes sent.
pub fn paysera_body_hash_ext(body: &[u8]) -> String {
    let b64 = B64.encode(Sha256::digest(body));
    format!("body_hash={}", utf8_percent_encode(&b64, BASE64_FORM))
}

/// `mac` = base64(HMAC-SHA256(mac_key, normalized request string)).
pub fn paysera_mac(mac_key: &str, parts: &PayseraMacParts<'_>) -> String {
    let mut m =
        Hmac::<Sha256>::new_from_slice(mac_key.as_bytes()).expect("HMAC takes keys of any length");
    m.update(parts.normalized().as_bytes());
    B64.encode(m.finalize().into_bytes())
}

/// `MAC id="..", ts="..", nonce="..", mac=".."` plus `, ext=".."` when `ext` is non-empty.
pub fn paysera_authorization_header(
    client_id: &str,
    ts: u64,
    nonce: &str,
    mac: &str,
    ext: &str,
) -> String {
    let mut header = format!(r#"MAC id="{client_id}", ts="{ts}", nonce="{nonce}", mac="{mac}""#);
    if !ext.is_empty() {
        header.push_str(&format!(r#", ext="{ext}""#));
    }
    header
}

/// A fresh Paysera MAC nonce: 32 random lowercase hex characters (a v4 UUID in simple form,
/// 122 random bits), so no extra RNG dependency is needed.
pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paysera's PHP client tests and docs.
    const PS_KEY: &str = "IrdTc8uQodU7PRpLzzLTW6wqZAO6tAMU";
    const PS_NONCE: &str = "nQnNaSNyubfPErjRO55yaaEYo9YZfKHN";

    fn ps_parts<'a>(ts: u64, method: &'a str, uri: &'a str, ext: &'a str) -> PayseraMacParts<'a> {
        PayseraMacParts {
            ts,
            nonce: PS_NONCE,
            method,
            uri,
            host: "wallet.paysera.com",
            port: 443,
            ext,
        }
    }

    #[test]
    fn paysera_public_mac_vectors() {
        let cases = [
            (
                1343818800,
                "/wallet/rest/v1/payment/10145",
                "d1OlqI77u2P1IVYIv2ppL3hnrBhyaQ+gDqYMxCH+0e0=",
            ),
            (
                1343811600,
                "/rest/v1/payment/10145",
                "/qxTA8FOgT0Dd0MHh9k/sUQ3Q38ckx8+S0PBxpIuttY=",
            ),
            (
                1343811600,
                "/rest/v1/spots?status=waiting",
                "irSg0m2b8N87EIhAENNkP+2O3E2x0KkddoTMSOEmHt8=",
            ),
        ];
        for (ts, uri, want) in cases {
            assert_eq!(
                paysera_mac(PS_KEY, &ps_parts(ts, "GET", uri, "")),
                want,
                "{uri}"
            );
        }
    }

    #[test]
    fn paysera_public_post_vector_with_body_hash() {
        let body = b"grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=http%3A%2F%2Flocalhost%2Fabc";
        let ext = paysera_body_hash_ext(body);
        assert_eq!(
            ext,
            "body_hash=IftzxAtYliLQx46c2JAPidlHKqck0OXD7KmsHNnSptU%3D"
        );
        let mac = paysera_mac(
            PS_KEY,
            &ps_parts(1343818800, "post", "/wallet/oauth/v1/", &ext),
        );
        assert_eq!(mac, "YEIWoGDeREjJNh+IplpTcCLRNASTAMgFqa540igFcaY=");
    }

    #[test]
    fn paysera_body_hash_escapes_plus_and_slash() {
        // base64(sha256("a")) = ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=
        assert_eq!(
            paysera_body_hash_ext(b"a"),
            "body_hash=ypeBEsobvcr6wjGzmiPcTaeG7%2FgUfE5yuYB3ha%2FuSLs%3D"
        );
    }

    #[test]
    fn paysera_normalized_string_has_seven_terminated_lines() {
        let s = ps_parts(1, "put", "/rest/v1/spot/1/close", "").normalized();
        assert_eq!(
            s,
            format!("1\n{PS_NONCE}\nPUT\n/rest/v1/spot/1/close\nwallet.paysera.com\n443\n\n")
        );
    }

    #[test]
    fn paysera_authorization_header_format() {
        assert_eq!(
            paysera_authorization_header("cid", 5, "n", "m=", ""),
            r#"MAC id="cid", ts="5", nonce="n", mac="m=""#
        );
        assert_eq!(
            paysera_authorization_header("cid", 5, "n", "m=", "body_hash=x%3D"),
            r#"MAC id="cid", ts="5", nonce="n", mac="m=", ext="body_hash=x%3D""#
        );
    }

    #[test]
    fn nonce_is_32_alphanumerics_and_fresh() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    /// Every worked example of the Paysera POS document (seeds/000_0c09e6fa46f88a7e.txt):
    /// client `wkVd93h2uS`, ts 1343811600, the nonce above, host wallet.paysera.com, port 443,
    /// signed with the key of Paysera's public PHP client examples.
    #[test]
    fn every_mac_example_of_the_pos_document() {
        const EXT: &str = "body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D";
        let cases = [
            (
                "GET",
                "/rest/v1/spot?code=PAYSERA*3%3ATABLE1",
                "",
                "Fq2JdkPxXggdNUjjhMuMXD6TNxwyTC8bkG3bJGIx3L4=",
            ),
            (
                "GET",
                "/rest/v1/spot/1",
                "",
                "BrESuxFsVum5GlD3Wt+IRZP9mMDDDSqP87EPy17ymD4=",
            ),
            (
                "PUT",
                "/rest/v1/spot/1/check-in",
                "",
                "3C/sxDllC+4px0UdbtEtTavCqB6Er8lZbIkKtWlQ92U=",
            ),
            (
                "PUT",
                "/rest/v1/spot/1/check-out",
                "",
                "owzKcU4miyJ8H43dm9m2PF9FoofWSJxF6bKBeIP43yY=",
            ),
            (
                "GET",
                "/rest/v1/order/52",
                "",
                "bczsUDRIYRfi159d7eRH1NirKdVGbdkH8wn/mwyH4g0=",
            ),
            (
                "GET",
                "/rest/v1/spots?status=waiting&limit=3",
                "",
                "Uawl/ym+bO801+pgQQlgSKXFyMulwcOUGqoWZAKKrhI=",
            ),
            (
                "PUT",
                "/rest/v1/spot/1/close",
                "",
                "aiRHKuK/w48Xaxb9OiCcc1tQXK5zYIOk4L/mWwY0Wtc=",
            ),
            (
                "POST",
                "/rest/v1/spot/1/order",
                EXT,
                "ohPt7bbwTxtqXDnXLtRC82iI1EkPEwoVI1Ya9xMmDhc=",
            ),
            (
                "PUT",
                "/rest/v1/order/52",
                EXT,
                "rR/gwtiNhTSonuIgKXqJlMLLSBZfgjAgaahZLN4G43s=",
            ),
            (
                "DELETE",
                "/rest/v1/order/52",
                "",
                "hQUsJo76gvf1SBfxBdOqOj4SMReoME3z8x+lI8zERqA=",
            ),
        ];
        for (method, uri, ext, want) in cases {
            let got = paysera_mac(PS_KEY, &ps_parts(1343811600, method, uri, ext));
            assert_eq!(got, want, "{method} {uri}");
        }
    }

    /// The document's eleventh worked value: the `body_hash` of the order body. It is the hash
    /// of the body pretty-printed with four-space indentation (the PHP client's), not of the
    /// one-line `{ "transaction_key": ... }` printed beside it: sign the exact bytes sent.
    #[test]
    fn the_body_hash_example_of_the_pos_document() {
        let sent = "{\n    \"transaction_key\": \"Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR\"\n}";
        assert_eq!(
            paysera_body_hash_ext(sent.as_bytes()),
            "body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D"
        );
        let printed = r#"{ "transaction_key": "Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR" }"#;
        assert_ne!(
            paysera_body_hash_ext(printed.as_bytes()),
            "body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D"
        );
    }
}
