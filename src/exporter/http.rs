//! Just enough HTTP/1.x for a scraper: `GET /metrics` (or `HEAD`), one answer, close.
//!
//! The endpoint is for a local agent, but whatever connects may be hostile or stalled, and the
//! daemon's sales matter more than its figures: a few connections at once (more are closed at
//! once), a request head of at most 8 KiB, and 5 s for a whole exchange. Anything but
//! `GET /metrics` gets a short 400, 404, 405 or 431.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
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

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// The page; `head_only` for HEAD.
    Metrics { head_only: bool },
    Refused {
        status: u16,
        reason: &'static str,
        message: &'static str,
    },
}

const BAD_REQUEST: Route = Route::Refused {
    status: 400,
    reason: "Bad Request",
    message: "not an HTTP request; GET /metrics\n",
};

/// Routes a request head (request line and headers, without the body).
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return BAD_REQUEST;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return BAD_REQUEST;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return BAD_REQUEST;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Route::Refused {
                status: 405,
                reason: "Method Not Allowed",
                message: "only GET /metrics\n",
            }
        }
    };
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return Route::Refused {
            status: 404,
            reason: "Not Found",
            message: "the metrics are at /metrics\n",
        };
    }
    Route::Metrics { head_only }
}

/// Reads the request head: up to the blank line, at most `MAX_HEAD` bytes.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // Closed before the blank line: answer what came, if anything did.
            return Ok((!buf.is_empty()).then_some(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    sources: &Sources,
) -> std::io::Result<()> {
    let route = match read_head(&mut stream).await? {
        Some(head) => route(&head),
        None => Route::Refused {
            status: 431,
            reason: "Request Header Fields Too Large",
            message: "request head over 8 KiB\n",
        },
    };
    let (status, reason, content_type, body, head_only, allow) = match route {
        Route::Metrics { head_only } => {
            (200, "OK", CONTENT_TYPE, sources.render(), head_only, false)
        }
        Route::Refused {
            status,
            reason,
            message,
        } => (
            status,
            reason,
            "text/plain; charset=utf-8",
            message.to_owned(),
            false,
            status == 405,
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await?;
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        let status = |head: &[u8]| match route(head) {
            Route::Refused { status, .. } => status,
            Route::Metrics { .. } => 200,
        };
        assert_eq!(status(b"POST /metrics HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status(b"GET /metricsx HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status(b"\x00\xff garbage\r\n\r\n"), 400);
        assert_eq!(status(b"GET /metrics\r\n\r\n"), 400);
        assert_eq!(status(b"GET /metrics SMTP/1.0\r\n\r\n"), 400);
        assert_eq!(status(b"GET  /metrics HTTP/1.1\r\n\r\n"), 400);
    }
}
