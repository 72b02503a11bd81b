//! The accept loop: connection limit, per-connection line framing, graceful shutdown.
//!
//! Each connection is served by its own task, strictly one request at a time, so responses
//! come back in request order; a request that asked for progress has its event lines written
//! as they come, all before its answer. A line over 64 KiB gets one answer and closes that connection
//! only. On shutdown the loop stops accepting; each connection finishes the request it is
//! serving, then closes.
//!
//! At `api.max_connections`, a new connection is not turned away while others merely sit
//! there: the connection idle longest (no complete request since, or stuck writing an answer
//! its client does not read) is closed to make room. One with an operation running is never
//! closed; only when every connection is running one does the newcomer get `busy`. So idle or
//! stalled clients cannot lock the POS out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::access::{Access, Peer};
use super::lines::{Frame, Lines};
use super::{handler, protocol, render};
use crate::device::manager::DeviceManager;
use crate::engine::Engine;
use crate::exchange::EVENT_QUEUE;

pub struct Server {
    pub engine: Arc<Engine>,
    pub devices: Arc<DeviceManager>,
    pub max_connections: usize,
    pub access: Access,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

/// How long a newcomer waits for an evicted idle connection to let go of its slot.
const EVICTION_WAIT: Duration = Duration::from_secs(2);

/// How long a refused connection (busy, unauthorized) is read for its first request, so the
/// refusal can be answered in the shape that request asked for (the LIFE POS contract's).
const FIRST_LINE_WAIT: Duration = Duration::from_millis(250);

/// How long, at shutdown, an answer waits for a client that does not read it.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(5);

/// Every open connection: since when it is idle, and whether an operation is running on it.
#[derive(Default)]
struct Open {
    next: u64,
    slots: HashMap<u64, Slot>,
}

struct Slot {
    idle_since: Instant,
    busy: bool,
    evict: CancellationToken,
}

#[derive(Clone, Default)]
struct Connections(Arc<Mutex<Open>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self) -> (u64, CancellationToken) {
        let mut open = self.lock();
        open.next += 1;
        let id = open.next;
        let evict = CancellationToken::new();
        open.slots.insert(
            id,
            Slot {
                idle_since: Instant::now(),
                busy: false,
                evict: evict.clone(),
            },
        );
        (id, evict)
    }

    fn remove(&self, id: u64) {
        self.lock().slots.remove(&id);
    }

    /// Marks a request running on `id` (`true`), or finished (`false`: idle from now).
    fn busy(&self, id: u64, busy: bool) {
        if let Some(slot) = self.lock().slots.get_mut(&id) {
            slot.busy = busy;
            slot.idle_since = Instant::now();
        }
    }

    /// Closes the connection idle longest that runs no operation. `false` if every
    /// connection is running one.
    fn evict_idlest(&self) -> bool {
        let open = self.lock();
        let idlest = open
            .slots
            .values()
            .filter(|s| !s.busy && !s.evict.is_cancelled())
            .min_by_key(|s| s.idle_since);
        match idlest {
            Some(slot) => {
                log::debug!(
                    "closing a connection idle for {:?} to serve a new one",
                    slot.idle_since.elapsed()
                );
                slot.evict.cancel();
                true
            }
            None => false,
        }
    }
}

impl Server {
    pub async fn run(self, listener: UnixListener) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let connections = Connections::default();
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
            let peer = self.access.check(&stream);
            if !peer.connect {
                log::warn!(
                    "refused a connection from uid {} (pid {:?}): not in api.allowed_groups",
                    peer.uid,
                    peer.pid
                );
                self.tasks.spawn(async move {
                    let mut stream = stream;
                    let first = first_line(&mut stream).await;
                    let _ = write_line(&mut stream, &render::unauthorized(peer.uid, &first)).await;
                });
                continue;
            }
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) if connections.evict_idlest() => {
                    tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
                Err(_) => None,
            };
            let Some(permit) = permit else {
                let limit = self.max_connections;
                self.tasks.spawn(async move {
                    let mut stream = stream;
                    let first = first_line(&mut stream).await;
                    let _ = write_line(&mut stream, &render::busy(limit, &first)).await;
                });
                continue;
            };
            let engine = self.engine.clone();
            let devices = self.devices.clone();
            let shutdown = self.shutdown.clone();
            let connections = connections.clone();
            self.tasks.spawn(async move {
                let (id, evict) = connections.add();
                let stop = Stop { shutdown, evict };
                serve(stream, engine, devices, peer, &stop, &connections, id).await;
                connections.remove(id);
                drop(permit);
            });
        }
    }
}

/// What arrives of a refused connection's first line within [`FIRST_LINE_WAIT`] (at most
/// [`protocol::MAX_LINE`] bytes, without the newline); empty when nothing came.
async fn first_line(stream: &mut UnixStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(FIRST_LINE_WAIT, async {
        let mut chunk = [0u8; 4096];
        while buf.len() <= protocol::MAX_LINE && !buf.contains(&b'\n') {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    if let Some(end) = buf.iter().position(|b| *b == b'\n') {
        buf.truncate(end);
    }
    buf.truncate(protocol::MAX_LINE);
    buf
}

async fn write_line(stream: &mut (impl AsyncWriteExt + Unpin), line: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    stream.write_all(&buf).await
}

/// Why a connection stops waiting: the daemon shuts down, or its slot is given to another.
struct Stop {
    shutdown: CancellationToken,
    evict: CancellationToken,
}

impl Stop {
    /// An answer (or event) is no longer waited for: the slot is given to another, or the
    /// daemon shuts down and its client has not taken it within the grace.
    async fn given_up(&self) {
        tokio::select! {
            _ = self.evict.cancelled() => {}
            // Shutting down: the answer still goes out, unless its client will not take it.
            _ = async {
                self.shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_WRITE_GRACE).await
            } => {}
        }
    }

    async fn stopped(&self) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = self.evict.cancelled() => {}
        }
    }
}

async fn serve(
    stream: UnixStream,
    engine: Arc<Engine>,
    devices: Arc<DeviceManager>,
    peer: Peer,
    stop: &Stop,
    connections: &Connections,
    id: u64,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = FramedRead::new(read, Lines::default());
    loop {
        let next = tokio::select! {
            _ = stop.stopped() => return,
            next = lines.next() => next,
        };
        let line = match next {
            None => return,
            Some(Ok(Frame::Line(line))) => line,
            Some(Ok(Frame::TooLong(start))) => {
                let _ = write_line(&mut write, &render::too_long(&start)).await;
                return;
            }
            Some(Err(e)) => {
                log::debug!("connection read failed: {e}");
                return;
            }
        };
        let line = line.strip_suffix(b"\r").unwrap_or(&line[..]);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // The request is carried out and recorded even if the client has gone by now; while
        // it runs, this connection is never evicted.
        connections.busy(id, true);
        let (events, mut queue) = mpsc::channel(EVENT_QUEUE);
        let answering = handler::answer(&engine, &devices, &peer, line, events);
        tokio::pin!(answering);
        let mut answer = None;
        // Whether the client still takes lines (an event write failed: it has gone).
        let mut taking = true;
        // Progress events (only a request that asked has any) are written as they come. The
        // operation never waits for them (it drops what does not fit the queue); writing one
        // to a client that does not read holds up only this loop, and once the answer is
        // ready the connection is idle, so evictable, as it is while its answer waits.
        while answer.is_none() {
            tokio::select! {
                biased;
                ready = &mut answering => answer = Some(ready),
                Some(event) = queue.recv() => {
                    if !taking {
                        continue;
                    }
                    let line = render::event(&event);
                    let sending = write_line(&mut write, &line);
                    tokio::pin!(sending);
                    loop {
                        tokio::select! {
                            sent = &mut sending => {
                                taking = sent.is_ok();
                                break;
                            }
                            ready = &mut answering, if answer.is_none() => {
                                answer = Some(ready);
                                connections.busy(id, false);
                            }
                            _ = stop.given_up(), if answer.is_some() => return,
                        }
                    }
                }
            }
        }
        connections.busy(id, false);
        // The events told before the answer was ready, then the answer; nothing after it (the
        // engine told its last stage before the outcome; the queue is closed besides).
        queue.close();
        let mut out = String::new();
        while let Ok(event) = queue.try_recv() {
            out.push_str(&render::event(&event));
            out.push('\n');
        }
        out.push_str(&answer.expect("the loop ends with the answer"));
        // A client that does not read its answers blocks here; it is idle, so evictable (its
        // answer is in the journal for get_result).
        let written = tokio::select! {
            _ = stop.given_up() => return,
            written = write_line(&mut write, &out) => written,
        };
        if written.is_err() {
            return;
        }
    }
}
