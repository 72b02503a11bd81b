//! The accept loop: connection limit, per-connection line framing, graceful shutdown.
//!
//! Each connection is served by its own task, strictly one request at a time, so responses
//! come back in request order. A line over 64 KiB gets one answer and closes that connection
//! only. On shutdown the loop stops accepting; each connection finishes the request it is
//! serving, then closes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::access::{Access, Peer};
use super::{handler, protocol};
use crate::device::manager::DeviceManager;
use crate::engine::Engine;

pub struct Server {
    pub engine: Arc<Engine>,
    pub devices: Arc<DeviceManager>,
    pub max_connections: usize,
    pub access: Access,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl Server {
    pub async fn run(self, listener: UnixListener) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let mut backoff = Duration::from_millis(10);
        loop {
            let stream = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => { backoff = Duration::from_millis(10); stream }
                    Err(e) => {
                        // EMFILE and friends: wait instead of spinning, then go on serving.
                        log::warn!("accept failed: {e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let limit = self.max_connections;
                self.tasks.spawn(async move {
                    let mut stream = stream;
                    let _ = write_line(&mut stream, &handler::busy(limit)).await;
                });
                continue;
            };
            let peer = self.access.check(&stream);
            if !peer.connect {
                log::warn!(
                    "refused a connection from uid {} (pid {:?}): not in api.allowed_groups",
                    peer.uid,
                    peer.pid
                );
                self.tasks.spawn(async move {
                    let mut stream = stream;
                    let _ = write_line(&mut stream, &handler::unauthorized(peer.uid)).await;
                });
                continue;
            }
            let engine = self.engine.clone();
            let devices = self.devices.clone();
            let shutdown = self.shutdown.clone();
            self.tasks.spawn(async move {
                serve(stream, engine, devices, peer, shutdown).await;
                drop(permit);
            });
        }
    }
}

async fn write_line(stream: &mut (impl AsyncWriteExt + Unpin), line: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    stream.write_all(&buf).await
}

async fn serve(
    stream: UnixStream,
    engine: Arc<Engine>,
    devices: Arc<DeviceManager>,
    peer: Peer,
    shutdown: CancellationToken,
) {
    let (read, mut write) = stream.into_split();
    let codec =
        AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), protocol::MAX_LINE);
    let mut lines = FramedRead::new(read, codec);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = lines.next() => next,
        };
        let line = match next {
            None => return,
            Some(Ok(line)) => line,
            Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                let _ = write_line(&mut write, &handler::too_long()).await;
                return;
            }
            Some(Err(AnyDelimiterCodecError::Io(e))) => {
                log::debug!("connection read failed: {e}");
                return;
            }
        };
        let line = line.strip_suffix(b"\r").unwrap_or(&line[..]);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // The request is carried out and recorded even if the client has gone by now.
        let answer = handler::answer(&engine, &devices, &peer, line).await;
        if write_line(&mut write, &answer).await.is_err() {
            return;
        }
    }
}
