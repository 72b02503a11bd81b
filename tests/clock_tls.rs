//! A counter whose clock is years off (booted at 1970, no battery-backed clock, NTP not yet
//! through) fails every backend's TLS handshake on the certificate's dates, before any request
//! leaves (issue 11, part 4). Through the real binary: the sale is refused `clock_skew` with a
//! message that says the clock is wrong and nothing was charged (not `provider_unavailable`,
//! which sends a technician after the network), and `posbridge doctor` fails the backend's
//! clock check with the same reading.
//!
//! The backend here is a TLS server on loopback presenting a certificate for `localhost` that
//! is valid only from 2099 (tests/fixtures/tls/, made by tests/fixtures/tls/make.py): to the
//! daemon that is exactly a real certificate seen from a clock far behind. The daemon does not
//! trust the test CA; rustls checks the dates before the issuer, which is what a 1970 counter
//! meets with a real certificate too (there the issuer is trusted).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{Daemon, BIN};
use serde_json::{json, Value};

/// A TLS server on 127.0.0.1 presenting `cert`; nothing ever gets past its handshake here.
fn tls_backend(cert: &'static [u8]) -> u16 {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert).unwrap()],
                PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/tls/leaf.key")).unwrap(),
            )
            .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 4096];
                        let _ = tls.read(&mut buf).await;
                        let _ = tls
                            .write_all(b"HTTP/1.1 500 x\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                });
            }
        });
    });
    port
}

fn phonepe_config(dir: &std::path::Path, port: u16) -> String {
    let salt = dir.join("salt_key");
    std::fs::write(&salt, "test-salt\n").unwrap();
    format!(
        "default_provider = \"phonepe\"\n[providers.phonepe]\n\
         base_url = \"https://localhost:{port}\"\nmerchant_id = \"MERCH1\"\n\
         store_id = \"STORE1\"\nterminal_id = \"TERM1\"\nsalt_key_file = {:?}\n\
         salt_index = 1\ntimeout_ms = 10000\nrequest_timeout_ms = 3000\n",
        salt.display().to_string()
    )
}

#[test]
fn a_counter_far_behind_every_certificate_is_told_its_clock_is_wrong_and_nothing_is_charged() {
    let dir = tempfile::tempdir().unwrap();
    let port = tls_backend(include_bytes!("fixtures/tls/not-yet-valid.pem"));
    let d = Daemon::start_with(Some(&phonepe_config(dir.path(), port)), &[]);

    let a = d.request(json!({"action": "pay", "request_id": "tls-1", "amount": 1200}));
    // A final failure (error_type default_error), not an unknown outcome.
    assert_eq!(
        (a["code"].as_i64(), a["error_type"].as_str()),
        (Some(1), Some("default_error")),
        "{a}"
    );
    assert_eq!(a["reason"], "clock_skew", "{a}");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("certificate is not valid yet"), "{a}");
    assert!(msg.contains("the clock is wrong"), "{a}");
    assert!(msg.contains("Nothing was charged"), "{a}");
    // Final, not unknown: the handshake failed, so the request never left.
    let r = d.request(json!({"action": "get_result", "request_id": "tls-1"}));
    assert_eq!(r["reason"], "clock_skew", "{r}");
    assert_eq!(r["error_type"], "default_error", "{r}");

    let out = Command::new(BIN)
        .args(["doctor", "--json", "--timeout", "3", "--config"])
        .arg(d.config.clone().unwrap())
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--socket")
        .arg(&d.socket)
        .env_remove("POSBRIDGE_SOCKET")
        .env_remove("POSBRIDGE_CONFIG")
        .env_remove("POSBRIDGE_STATE_DIR")
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let clock = common::doctor_check(&report, "backend.phonepe.clock");
    assert_eq!(clock["status"], "fail", "{clock}");
    let detail = clock["detail"].as_str().unwrap();
    assert!(
        detail.contains("not valid yet") && detail.contains("the clock is wrong"),
        "{clock}"
    );
    assert!(
        clock["fix"].as_str().unwrap().contains("timedatectl"),
        "{clock}"
    );
}

#[test]
fn paysera_at_a_clock_past_its_certificate_is_clock_skew_too() {
    let dir = tempfile::tempdir().unwrap();
    let port = tls_backend(include_bytes!("fixtures/tls/expired.pem"));
    let key = dir.path().join("mac_key");
    std::fs::write(&key, "test-mac-key\n").unwrap();
    let config = format!(
        "default_provider = \"paysera\"\n[providers.paysera]\nbase_url = \"https://localhost:{port}\"\n\
         client_id = \"till-test\"\nmac_key_file = {:?}\nspot_id = \"7\"\ncurrency = \"EUR\"\n\
         timeout_ms = 5000\n",
        key.display().to_string()
    );
    let d = Daemon::start_with(Some(&config), &[]);
    let a = d.request(json!({"action": "pay", "request_id": "tls-p", "amount": 1200}));
    assert_eq!(a["reason"], "clock_skew", "{a}");
    assert_eq!(a["error_type"], "default_error", "{a}");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("Paysera's TLS certificate has expired"), "{a}");
    assert!(msg.contains("Nothing was charged"), "{a}");
}
