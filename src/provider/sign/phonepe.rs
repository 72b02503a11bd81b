//! PhonePe offline-API checksums: the `X-VERIFY` header for init/refund (base64 body + path +
//! salt), for status/cancel (path + salt), the base64 `request` wrapper, and callback
//! verification. It must not decide which path or body a call uses, decode a callback it has not
//! verified, or keep or print the salt key.

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ct_eq;

/// `X-VERIFY` for calls with a body (init, refund):
/// `hex(sha256(base64_body + api_path + salt_key))`, then `###`, then `salt_index`.
/// `base64_body` must be exactly the string sent in `{"request": ...}`;
/// `api_path` is the path without the base URL's own prefix (see [`phonepe_signed_path`]).
pub fn phonepe_x_verify(
    base64_body: &str,
    api_path: &str,
    salt_key: &str,
    salt_index: u32,
) -> String {
    phonepe_checksum(&[base64_body, api_path, salt_key], salt_index)
}

/// `X-VERIFY` for calls without a body (status `GET`, cancel `PUT`): the hash covers only the
/// exact path called plus the salt key.
pub fn phonepe_x_verify_path(api_path: &str, salt_key: &str, salt_index: u32) -> String {
    phonepe_checksum(&[api_path, salt_key], salt_index)
}

fn phonepe_checksum(parts: &[&str], salt_index: u32) -> String {
    format!("{}###{salt_index}", phonepe_hash_hex(parts))
}

fn phonepe_hash_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The `request` value for init/refund bodies: standard base64 (with padding) of the payload's
/// compact JSON. Sign this exact string; never re-encode it before sending.
pub fn phonepe_encode_request(payload: &Value) -> String {
    B64.encode(payload.to_string())
}

/// Checks a callback's `X-VERIFY` (`hex(sha256(response + salt_key))###index`) against the raw
/// `response` base64 string, before anything decodes it. The hex part is compared in constant
/// time (case-insensitively); the index must equal `salt_index`.
pub fn phonepe_verify_callback(
    response_b64: &str,
    x_verify_header: &str,
    salt_key: &str,
    salt_index: u32,
) -> bool {
    let Some((hash, index)) = x_verify_header.trim().rsplit_once("###") else {
        return false;
    };
    let expected = phonepe_hash_hex(&[response_b64, salt_key]);
    let hash_ok = ct_eq(hash.to_ascii_lowercase().as_bytes(), expected.as_bytes());
    hash_ok & (index.parse::<u32>() == Ok(salt_index))
}

/// The path PhonePe signs for a request: the signed path never includes the base URL's own path.
/// With base `https://mercury-uat.phonepe.com/enterprise-sandbox`, both
/// `/enterprise-sandbox/v1/payment/init` and the full URL sign as `/v1/payment/init`. A path that
/// does not start with the base path (at a `/` boundary) is returned unchanged, so passing an API
/// path such as `/v1/payment/init` directly is also fine.
pub fn phonepe_signed_path<'a>(base_url: &str, request: &'a str) -> &'a str {
    let path = strip_scheme_and_host(request);
    let base_path = strip_scheme_and_host(base_url).trim_end_matches('/');
    match path.strip_prefix(base_path) {
        Some("") if !base_path.is_empty() => "/",
        Some(rest) if !base_path.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    }
}

/// `https://host:port/a/b?q` -> `/a/b?q`; a string without `://` is taken as a path already.
fn strip_scheme_and_host(s: &str) -> &str {
    match s.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // PhonePe docs, "calculating X-VERIFY"; the salt key is used verbatim (it is not valid hex).
    const PP_B64: &str = "ewoJImdyYW50VG9rZW4iOiAiR1JUOTc5YTYzZjQ4ZjIxYjZmMWRiN2JhOTNiYjRhMGZiMjk3NWQ0OWFmYmMyY2QxMDdkYTBmYWMxZGQ1N2RlN2ZiNCIKfQ==";
    const PP_SALT: &str = "6b451f58-d565-4890-836f-6fb1gjt84d97";
    const PP_HEX: &str = "5de0e70cf2b78f3923ca108e583e6a80fabe910efd1726570b3e5cb2040df7d2";

    #[test]
    fn phonepe_public_x_verify_vector() {
        let got = phonepe_x_verify(PP_B64, "/v3/service/auth/access", PP_SALT, 1);
        assert_eq!(got, format!("{PP_HEX}###1"));
    }

    #[test]
    fn phonepe_path_only_variant_hashes_path_plus_salt() {
        // printf '%s' '/v1/payment/M1/T1/status' 'salt' | sha256sum
        let want = "669306d07f813ec1088f9168a839b43e0228ac340808bd1f464c8b45be3f00ff###2";
        assert_eq!(
            phonepe_x_verify_path("/v1/payment/M1/T1/status", "salt", 2),
            want
        );
    }

    #[test]
    fn phonepe_encode_request_is_base64_of_compact_json() {
        let payload = json!({"amount": 100, "merchantId": "M1"});
        let b64 = phonepe_encode_request(&payload);
        assert_eq!(
            B64.decode(&b64).unwrap(),
            br#"{"amount":100,"merchantId":"M1"}"#
        );
    }

    #[test]
    fn phonepe_callback_verify_accepts_good_and_rejects_bad() {
        let resp = B64.encode(r#"{"success":true}"#);
        // printf '%s' "$(printf '%s' '{"success":true}' | base64)" 'salt' | sha256sum
        let header = "0f6cebcf99e9bd1283d34d83ac628397ffb3956d5fe50d7c3571c8c2fdf3edc9###1";
        let ok = |resp: &str, header: &str, salt: &str, idx| {
            phonepe_verify_callback(resp, header, salt, idx)
        };
        assert!(ok(&resp, header, "salt", 1));
        assert!(ok(
            &resp,
            &format!(" {} ", header.to_uppercase()),
            "salt",
            1
        ));
        assert!(!ok(&resp, header, "other-salt", 1));
        assert!(!ok(&resp, header, "salt", 2));
        assert!(!ok(&B64.encode("{}"), header, "salt", 1));
        assert!(!ok(&resp, "", "salt", 1));
        assert!(!ok(&resp, &header.replace("###", ""), "salt", 1));
        // Same length, last hex digit changed: decided by the constant-time byte comparison.
        let mut flipped = header.as_bytes().to_vec();
        flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
        assert!(!ok(
            &resp,
            std::str::from_utf8(&flipped).unwrap(),
            "salt",
            1
        ));
        // Truncated hash: rejected by the (public) length check.
        assert!(!ok(&resp, &header[1..], "salt", 1));
    }

    #[test]
    fn phonepe_signed_path_strips_the_base_urls_own_path() {
        let uat = "https://mercury-uat.phonepe.com/enterprise-sandbox";
        assert_eq!(
            phonepe_signed_path(uat, "/enterprise-sandbox/v1/payment/init"),
            "/v1/payment/init"
        );
        assert_eq!(
            phonepe_signed_path(&format!("{uat}/"), "/enterprise-sandbox/v1/payment/init"),
            "/v1/payment/init"
        );
        assert_eq!(
            phonepe_signed_path(uat, &format!("{uat}/v1/payment/M/T/status")),
            "/v1/payment/M/T/status"
        );
        assert_eq!(
            phonepe_signed_path(uat, "/v1/payment/init"),
            "/v1/payment/init"
        );
        assert_eq!(
            phonepe_signed_path(uat, "/enterprise-sandboxx/v1"),
            "/enterprise-sandboxx/v1"
        );
        assert_eq!(phonepe_signed_path(uat, "/enterprise-sandbox"), "/");
        let prod = "https://mercury-t2.phonepe.com";
        assert_eq!(
            phonepe_signed_path(prod, "/v1/payment/init"),
            "/v1/payment/init"
        );
        assert_eq!(
            phonepe_signed_path(
                prod,
                "https://mercury-t2.phonepe.com/v3/credit/backToSource"
            ),
            "/v3/credit/backToSource"
        );
    }
}
