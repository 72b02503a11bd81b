//! The HTTP client every backend shares, and the one rule that keeps money safe over HTTP:
//! what a failure says about whether the backend got the request.
//!
//! A connection that was never established (refused, DNS, TLS handshake) means the request
//! never left: the operation provably did not happen ([`HttpError::NotSent`]). Anything after
//! the request may have been sent (timeout, reset, a 5xx, an unreadable body) means the backend
//! may have acted on it: the outcome is unknown and must be reconciled, never re-sent
//! ([`HttpError::MaybeSent`]). Providers map these to `Outcome::Failed` / `Outcome::Unknown`.
//!
//! One handshake failure is named for what it is: a backend certificate "not yet valid" or
//! "expired" by our clock. A counter that booted at 1970 (no battery-backed clock, NTP not yet
//! through) fails every TLS handshake this way; the cashier and the technician are told the
//! clock is wrong (`clock_skew`), not that the backend is away.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};

use super::Failure;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{backend} could not be reached: {detail}")]
    NotSent {
        backend: &'static str,
        detail: String,
        /// Set when the TLS handshake failed on the certificate's dates: our clock is wrong.
        certificate_time: Option<CertificateTime>,
    },
    #[error("{backend} did not answer properly: {detail}")]
    MaybeSent {
        backend: &'static str,
        detail: String,
    },
}

impl HttpError {
    /// The failure as the engine needs it: final when nothing was sent, unknown otherwise.
    pub fn into_outcome(self) -> super::Outcome {
        if let Some(f) = self.clock_failure() {
            return super::Outcome::Failed(f);
        }
        match &self {
            HttpError::NotSent { .. } => super::Outcome::Failed(Failure::new(
                "provider_unavailable",
                format!("{self}. Nothing was charged; try again."),
            )),
            HttpError::MaybeSent { .. } => super::Outcome::Unknown(Failure::new(
                "timeout",
                format!("{self}. The outcome is being checked; ask again with get_result."),
            )),
        }
    }

    /// When the TLS handshake failed on the certificate's dates (nothing was sent): the
    /// cashier's `clock_skew` answer, which says the clock is wrong and nothing was charged.
    pub fn clock_failure(&self) -> Option<Failure> {
        let HttpError::NotSent {
            backend,
            certificate_time: Some(when),
            ..
        } = self
        else {
            return None;
        };
        Some(Failure::new(
            "clock_skew",
            format!(
                "{backend}'s TLS certificate {when} by this counter's clock ({}): the clock is \
                 wrong. Nothing was charged; set the time (NTP, `timedatectl`), then try again.",
                crate::clock::now_rfc3339()
            ),
        ))
    }
}

/// A response whose status and body were read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The answer's `Date` header, to tell how far our clock is from the backend's.
    pub date: Option<String>,
}

pub struct Http {
    client: Client,
    backend: &'static str,
    base_url: String,
}

impl Http {
    /// `timeout` bounds one whole request (connect, send, wait, read).
    pub fn new(
        backend: &'static str,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Http, reqwest::Error> {
        Http::build(backend, base_url, timeout, Client::builder())
    }

    fn build(
        backend: &'static str,
        base_url: &str,
        timeout: Duration,
        builder: reqwest::ClientBuilder,
    ) -> Result<Http, reqwest::Error> {
        let client = builder
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("posbridge/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect with a signed request to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Http {
            client,
            backend,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to `path` (which starts with `/`) under the base URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    /// Sends `req` and reads the whole answer. A 5xx counts as "maybe sent": the backend may
    /// have acted before it failed.
    pub async fn send(&self, req: RequestBuilder) -> Result<Reply, HttpError> {
        let backend = self.backend;
        let resp = req.send().await.map_err(|e| classify(backend, &e))?;
        let status = resp.status().as_u16();
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| HttpError::MaybeSent {
                backend,
                detail: format!("reading the answer: {}", chain(&e)),
            })?
            .to_vec();
        if status >= 500 {
            return Err(HttpError::MaybeSent {
                backend,
                detail: format!("HTTP {status}: {}", snippet(&body)),
            });
        }
        Ok(Reply { status, body, date })
    }
}

/// Why a certificate was refused on its dates, as the message says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateTime {
    NotYetValid,
    Expired,
}

impl std::fmt::Display for CertificateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertificateTime::NotYetValid => "is not valid yet",
            CertificateTime::Expired => "has expired",
        })
    }
}

/// Whether `e` (anywhere in its chain, including inside an `io::Error`, which is how TLS
/// errors travel through tokio-rustls and hyper) is rustls refusing a certificate's dates.
pub fn certificate_time(e: &(dyn std::error::Error + 'static)) -> Option<CertificateTime> {
    use rustls::{CertificateError as C, Error as R};
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(R::InvalidCertificate(c)) = err.downcast_ref::<R>() {
            match c {
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    return Some(CertificateTime::NotYetValid)
                }
                C::Expired | C::ExpiredContext { .. } => return Some(CertificateTime::Expired),
                _ => return None,
            }
        }
        // `io::Error::source` skips the error it wraps: look inside it explicitly.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = certificate_time(inner) {
                return Some(found);
            }
        }
        next = err.source();
    }
    None
}

fn classify(backend: &'static str, e: &reqwest::Error) -> HttpError {
    let detail = chain(e);
    if e.is_connect() || e.is_builder() {
        HttpError::NotSent {
            backend,
            detail,
            certificate_time: certificate_time(e),
        }
    } else {
        HttpError::MaybeSent { backend, detail }
    }
}

/// An error with its causes, without the URL's query (which could carry ids, never secrets).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The start of a body for an error message: printable, short.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_not_sent() {
        // Bind then drop: nothing listens on that port now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = Http::new(
            "test",
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(2),
        )
        .unwrap();
        let err = http
            .send(http.request(Method::GET, "/x"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::NotSent { .. }), "{err:?}");
        assert!(matches!(
            err.into_outcome(),
            crate::provider::Outcome::Failed(_)
        ));
    }

    /// A TLS server on loopback presenting `cert` (signed by tests/fixtures/tls/ca.pem), and a
    /// client that trusts that CA.
    async fn tls_pair(cert: &[u8]) -> Http {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let certs = vec![CertificateDer::from_pem_slice(cert).unwrap()];
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../tests/fixtures/tls/leaf.key"))
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        let ca = reqwest::Certificate::from_pem(include_bytes!("../../tests/fixtures/tls/ca.pem"))
            .unwrap();
        Http::build(
            "TestPay",
            &format!("https://localhost:{port}"),
            Duration::from_secs(5),
            Client::builder().add_root_certificate(ca),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_certificate_not_yet_valid_by_our_clock_is_clock_skew_and_nothing_sent() {
        // What a counter that booted at 1970 sees: every backend's certificate "not yet valid".
        let http = tls_pair(include_bytes!("../../tests/fixtures/tls/not-yet-valid.pem")).await;
        let err = http
            .send(http.request(Method::POST, "/pay"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                HttpError::NotSent {
                    certificate_time: Some(CertificateTime::NotYetValid),
                    ..
                }
            ),
            "{err:?}"
        );
        let crate::provider::Outcome::Failed(f) = err.into_outcome() else {
            panic!("not a final failure");
        };
        assert_eq!(f.reason, "clock_skew");
        assert!(
            f.message
                .contains("TestPay's TLS certificate is not valid yet")
                && f.message.contains("the clock is wrong")
                && f.message.contains("Nothing was charged"),
            "{}",
            f.message
        );
    }

    #[tokio::test]
    async fn an_expired_certificate_by_our_clock_is_clock_skew() {
        // A clock far ahead (or a backend that let its certificate lapse: the message names
        // the clock first, and doctor's clock check tells which).
        let http = tls_pair(include_bytes!("../../tests/fixtures/tls/expired.pem")).await;
        let err = http.send(http.request(Method::GET, "/")).await.unwrap_err();
        let crate::provider::Outcome::Failed(f) = err.into_outcome() else {
            panic!("not a final failure");
        };
        assert_eq!(f.reason, "clock_skew", "{}", f.message);
        assert!(f.message.contains("has expired"), "{}", f.message);
    }

    #[tokio::test]
    async fn a_valid_certificate_goes_through_and_another_tls_failure_stays_unavailable() {
        let http = tls_pair(include_bytes!("../../tests/fixtures/tls/valid.pem")).await;
        let reply = http.send(http.request(Method::GET, "/")).await.unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok"[..]));
        // The right dates but a name the certificate is not for: a TLS failure, not the clock.
        let wrong_name = Http::build(
            "TestPay",
            &http.base_url().replace("localhost", "127.0.0.1"),
            Duration::from_secs(5),
            Client::builder().add_root_certificate(
                reqwest::Certificate::from_pem(include_bytes!("../../tests/fixtures/tls/ca.pem"))
                    .unwrap(),
            ),
        )
        .unwrap();
        let err = wrong_name
            .send(wrong_name.request(Method::GET, "/"))
            .await
            .unwrap_err();
        let crate::provider::Outcome::Failed(f) = err.into_outcome() else {
            panic!("not a final failure");
        };
        assert_eq!(f.reason, "provider_unavailable", "{}", f.message);
    }

    #[tokio::test]
    async fn silence_after_sending_is_maybe_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts, reads, never answers.
        tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let http = Http::new(
            "test",
            &format!("http://{addr}"),
            Duration::from_millis(300),
        )
        .unwrap();
        let err = http
            .send(http.request(Method::POST, "/pay").body("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::MaybeSent { .. }), "{err:?}");
        assert!(matches!(
            err.into_outcome(),
            crate::provider::Outcome::Unknown(_)
        ));
    }

    #[tokio::test]
    async fn a_server_error_is_maybe_sent_with_a_snippet() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
                .await;
        });
        let http = Http::new("test", &format!("http://{addr}"), Duration::from_secs(2)).unwrap();
        let err = http.send(http.request(Method::GET, "/")).await.unwrap_err();
        assert!(err.to_string().contains("HTTP 503: busy"), "{err}");
    }
}
