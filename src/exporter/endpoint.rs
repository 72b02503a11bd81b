//! The metrics endpoint's sockets: binds `[metrics] listen` and answers `GET /metrics` (or
//! `HEAD`) with the page, one answer per connection, then closes. hyper reads and writes the
//! HTTP/1; this file sets its limits and says which requests get the page.
//!
//! The endpoint is for a local agent, but whatever connects may be hostile or stalled, and the
//! daemon's sales matter more than its figures: a few connections at once (more are closed at
//! once), a request head of at most 8 KiB, and 5 s for a whole exchange. Anything but
//! `GET /metrics` gets a short 400, 404, 405 or 431. It must not parse HTTP by hand (hyper
//! does), serve anything but the page, or hold a sale up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Sources;
use crate::config::MetricsListen;

/// Scrapes served at once; Prometheus needs one.
const MAX_CONNECTIONS: usize = 4;
/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// Time for one whole exchange: read the request, write the answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

const PAGE_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `listen`; returns the listener and where it listens, for the log
    /// (`http://127.0.0.1:9464/metrics`, with the real port when 0 was asked).
    pub async fn bind(listen: &MetricsListen) -> Result<(Listener, String)> {
        match listen {
            MetricsListen::Tcp(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let at = l.local_addr()?;
                Ok((Listener::Tcp(l), format!("http://{at}/metrics")))
            }
            MetricsListen::Unix(path) => {
                remove_stale(path)?;
                let l = UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                Ok((
                    Listener::Unix(l, path.clone()),
                    format!("unix:{} (GET /metrics)", path.display()),
                ))
            }
        }
    }
}

/// A socket left by a daemon that died is replaced; anything else at `path` is not.
fn remove_stale(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!("another process is already serving {}", path.display());
    }
    std::fs::remove_file(path)
        .with_context(|| format!("cannot remove the stale socket {}", path.display()))
}

/// Serves scrapes until `shutdown`.
pub async fn serve(listener: Listener, sources: Arc<Sources>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = accept(&listener) => a,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: wait instead of spinning; the API matters more.
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // Over the limit: closed at once, never queued (a scraper retries next interval).
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            log::debug!("metrics: {MAX_CONNECTIONS} connections already open; one refused");
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A stalled or slow client loses its connection at the deadline, nothing more.
            let _ = match stream {
                Stream::Tcp(s) => {
                    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(s, &sources)).await
                }
                Stream::Unix(s) => {
                    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(s, &sources)).await
                }
            };
        });
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Stream> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
    }
}

/// One connection: one request read by hyper, one answer, then a lingering close.
async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, sources: &Sources) {
    let service = hyper::service::service_fn(|request: Request<Incoming>| {
        let answer = answer(&request, sources);
        async move { Ok::<_, std::convert::Infallible>(answer) }
    });
    // hyper answers what it cannot parse itself: 400, or 431 for a head over `MAX_HEAD`.
    let _ = http1::Builder::new()
        .keep_alive(false)
        .half_close(true)
        .max_header_size(MAX_HEAD)
        .title_case_headers(true)
        .auto_date_header(false)
        .serve_connection(TokioIo::new(&mut stream), service)
        .await;
    let _ = stream.shutdown().await;
    // A lingering close: closing with unread request bytes (a refused, over-long head) would
    // send a reset that can overtake the answer. Read a little until the client closes.
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// The page for GET or HEAD of `/metrics` (hyper leaves out the body of a HEAD answer); a
/// short refusal for anything else.
fn answer(request: &Request<Incoming>, sources: &Sources) -> Response<Body> {
    let uri = request.uri();
    // Origin form only (`/metrics`), as before hyper: not `*` nor `http://host/metrics`.
    if uri.authority().is_some() || !uri.path().starts_with('/') {
        return refusal(
            StatusCode::BAD_REQUEST,
            "not an HTTP request; GET /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = refusal(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n");
        let allow = HeaderValue::from_static("GET, HEAD");
        refused.headers_mut().insert(ALLOW, allow);
        return refused;
    }
    if uri.path() != "/metrics" {
        return refusal(StatusCode::NOT_FOUND, "the metrics are at /metrics\n");
    }
    text(StatusCode::OK, PAGE_TYPE, sources.render())
}

fn refusal(status: StatusCode, message: &'static str) -> Response<Body> {
    text(status, "text/plain; charset=utf-8", message.to_owned())
}

/// An answer with the fields in the order the endpoint has always sent them.
fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let length = HeaderValue::from(body.len());
    let mut answer = Response::new(Body::from(body));
    *answer.status_mut() = status;
    let fields = answer.headers_mut();
    fields.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    fields.insert(CONTENT_LENGTH, length);
    fields.insert(CONNECTION, HeaderValue::from_static("close"));
    answer
}
