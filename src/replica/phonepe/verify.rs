//! The replica's own `X-VERIFY` check, written from the init document
//! (seeds/001_206d3d9ac737255e.txt, header table line 8 and its Python samples):
//! `SHA256(base64 payload + "/v1/payment/init" + salt key)` as lower-case hex (`hexdigest()`),
//! then `###`, then the salt index. The api path is the one without the UAT base's
//! `/enterprise-sandbox` (the samples hash `apiUrl = "/v1/payment/init"` and call
//! `".../enterprise-sandbox" + apiUrl`). Beyond the document (docs/providers.md, "What the
//! documents leave open"): backToSource signs like init over its own path, and the calls
//! without a body (status GET, cancel PUT) sign `SHA256(path + salt key) ### index`.
//! It is deliberately not the client's code (`crate::provider::sign`), so that a signing bug
//! in the client is refused here instead of being agreed with. It must not log or keep the
//! salt, and must not say what it expected.

use sha2::{Digest, Sha256};

/// Whether `header` is `hex(sha256(parts joined + salt))###salt_index`. The hex is compared
/// case-insensitively (the document's samples send lower case; hex is hex); the index must be
/// the decimal salt index this replica was given.
pub fn x_verify_ok(header: &str, parts: &[&str], salt: &str, salt_index: u32) -> bool {
    let Some((hash, index)) = header.trim().split_once("###") else {
        return false;
    };
    if index != salt_index.to_string() {
        return false;
    }
    let mut text = String::new();
    for part in parts {
        text.push_str(part);
    }
    text.push_str(salt);
    let want = hex::encode(Sha256::digest(text.as_bytes()));
    hash.eq_ignore_ascii_case(&want)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "replica-own-salt-3b7f";
    // base64 of {"merchantId":"M1","amount":100}
    const B64: &str = "eyJtZXJjaGFudElkIjoiTTEiLCJhbW91bnQiOjEwMH0=";

    // Each expected hash computed outside Rust with the document's own Python lines:
    // hashlib.sha256((B64 + "/v1/payment/init" + SALT).encode()).hexdigest()
    const INIT_HEX: &str = "1531905c86217692b9ea09e134cbdf1ef134ef15a2f64a696735ba32a0224eeb";
    // hashlib.sha256(("/v1/payment/M1/T1/status" + SALT).encode()).hexdigest()
    const STATUS_HEX: &str = "5f4d45a1ad7da2a23fa66b97abbb6046dea8faa432129da983ba8cb422e3dd33";
    // The same init with the path appended twice (a client signing bug):
    // hashlib.sha256((B64 + "/v1/payment/init/v1/payment/init" + SALT).encode()).hexdigest()
    const TWICE_HEX: &str = "8cee03b7f045269542707cb816c08d90a87196fed25f6cc212a2dd39d03edaeb";

    #[test]
    fn the_documents_formula_with_a_salt_of_our_own() {
        let init = [B64, "/v1/payment/init"];
        assert!(x_verify_ok(&format!("{INIT_HEX}###2"), &init, SALT, 2));
        assert!(x_verify_ok(
            &format!("{}###2", INIT_HEX.to_uppercase()),
            &init,
            SALT,
            2
        ));
        let status = ["/v1/payment/M1/T1/status"];
        assert!(x_verify_ok(&format!("{STATUS_HEX}###2"), &status, SALT, 2));
    }

    #[test]
    fn anything_else_is_refused() {
        let init = [B64, "/v1/payment/init"];
        // The path twice, as a broken client would sign it.
        assert!(!x_verify_ok(&format!("{TWICE_HEX}###2"), &init, SALT, 2));
        // Another salt index, none, another salt, no separator, a truncated hash.
        assert!(!x_verify_ok(&format!("{INIT_HEX}###1"), &init, SALT, 2));
        assert!(!x_verify_ok(&format!("{INIT_HEX}###"), &init, SALT, 2));
        assert!(!x_verify_ok(INIT_HEX, &init, SALT, 2));
        assert!(!x_verify_ok(&format!("{INIT_HEX}###2"), &init, "salt", 2));
        assert!(!x_verify_ok(
            &format!("{}###2", &INIT_HEX[1..]),
            &init,
            SALT,
            2
        ));
        // The status hash does not sign an init, nor the init hash a status.
        assert!(!x_verify_ok(&format!("{STATUS_HEX}###2"), &init, SALT, 2));
        let status = ["/v1/payment/M1/T1/status"];
        assert!(!x_verify_ok(&format!("{INIT_HEX}###2"), &status, SALT, 2));
    }
}
