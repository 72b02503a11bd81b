//! Request/response signing and verification for the three payment backends: PhonePe `X-VERIFY`
//! checksums, IOT Pay MD5 `sign` fields and Paysera MAC access authentication. Everything here is
//! pure: strings and bytes in, strings out, no I/O, no clock reads, no logging. It must not hold
//! or print secrets: keys are only borrowed for the duration of a call, no type here stores one,
//! and no error or `Debug` output contains a key, a salt or an expected signature (an expected
//! signature would be an oracle for forgeries). Signature checks compare in constant time.
//! Deciding *what* to sign (which path, which body) belongs to the provider modules; this module
//! only does the maths.
//!
//! Layout: `phonepe`, `iotpay` and `paysera` hold one backend each; everything is re-exported here,
//! so callers write `sign::phonepe_x_verify`.

mod iotpay;
mod paysera;
mod phonepe;

pub use iotpay::{iotpay_canonical, iotpay_sign, iotpay_verify};
pub use paysera::{
    nonce, paysera_authorization_header, paysera_body_hash_ext, paysera_mac, PayseraMacParts,
};
pub use phonepe::{
    phonepe_encode_request, phonepe_signed_path, phonepe_verify_callback, phonepe_x_verify,
    phonepe_x_verify_path,
};

use subtle::ConstantTimeEq;

/// Why a received signature was not accepted. Messages never include key material or the
/// signature we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The field is absent, empty or not a string.
    #[error("response has no usable `{0}`; reject it as unauthenticated")]
    MissingSignature(&'static str),
    /// The field does not match the payload under the configured key.
    #[error("`{0}` does not match the payload; check the merchant key, else treat it as forged")]
    SignatureMismatch(&'static str),
}

/// Equality that does not stop at the first differing byte. A length difference returns early:
/// lengths of hex/base64 digests are public.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_behaves_like_eq() {
        assert!(ct_eq(b"abcd", b"abcd"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abcd", b"abce"));
        assert!(!ct_eq(b"abcd", b"Abcd"));
        assert!(!ct_eq(b"abcd", b"abc"));
    }
}
