//! The HTTP client every backend shares, and the one rule that keeps money safe over HTTP:
//! what a failure says about whether the backend got the request.
//!
//! A connection that was never established (refused, DNS, TLS handshake) means the request
//! never left: the operation provably did not happen ([`HttpError::NotSent`]). Anything after
//! the request may have been sent (timeout, reset, a 5xx, an unreadable body) means the backend
//! may have acted on it: the outcome is unknown and must be reconciled, never re-sent
//! ([`HttpError::MaybeSent`]). Providers map these to `Outcome::Failed` / `Outcome::Unknown`.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};

use super::Failure;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{backend} could not be reached: {detail}")]
    NotSent {
        backend: &'static str,
        detail: String,
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
        let client = Client::builder()
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

fn classify(backend: &'static str, e: &reqwest::Error) -> HttpError {
    let detail = chain(e);
    if e.is_connect() || e.is_builder() {
        HttpError::NotSent { backend, detail }
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
