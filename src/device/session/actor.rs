//! The task that owns one link's byte stream: reads and decodes frames, answers them (ACK,
//! NAK, duplicates), sends queued messages one at a time and retransmits them until they are
//! acknowledged, keeps the link alive and decides when it is down. Host and device differ only
//! in who starts HELLO and what happens before it ([`Side`]).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::noise::Noise;
use super::{host_hello, what, Job, LinkError, Sender, KEEPALIVE_AFTER, MAX_TRANSMISSIONS};
use crate::device::link::{self, Decoder, DuplicateFilter, Hello, Message, Role};
use crate::device::transport::{ByteStream, Connection};

mod receive;

pub(crate) enum Side {
    Host {
        expected: Role,
        /// Told once, when the first HELLO exchange finished (or failed).
        ready: Option<oneshot::Sender<Result<Hello, LinkError>>>,
    },
    Device {
        hello: Hello,
        noise: Option<Noise>,
    },
}

struct Outstanding {
    job: Job,
    seq: u8,
    bytes: Vec<u8>,
    attempts: u32,
    deadline: Instant,
}

struct Actor {
    side: Side,
    reader: ReadHalf<Box<dyn ByteStream>>,
    writer: WriteHalf<Box<dyn ByteStream>>,
    mtu: usize,
    ack_timeout: Duration,
    gap: Duration,
    decoder: Decoder,
    dedup: DuplicateFilter,
    tx_seq: u8,
    outstanding: Option<Outstanding>,
    queue: VecDeque<Job>,
    commands: mpsc::UnboundedReceiver<Job>,
    inbound: mpsc::UnboundedSender<Message>,
    /// The HELLO exchange is complete (host: the device's HELLO arrived; device: the host's).
    ready: bool,
    /// Host: our HELLO was acknowledged; the device's HELLO must come by then.
    hello_deadline: Option<Instant>,
    last_tx: Instant,
    last_rx: Instant,
}

type Spawned = (
    Sender,
    mpsc::UnboundedReceiver<Message>,
    JoinHandle<(Option<Box<dyn ByteStream>>, LinkError)>,
);

pub(crate) fn spawn(conn: Connection, side: Side) -> Spawned {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (down_tx, down_rx) = watch::channel(None);
    let (reader, writer) = tokio::io::split(conn.stream);
    let now = Instant::now();
    let mut actor = Actor {
        side,
        reader,
        writer,
        mtu: conn.mtu,
        ack_timeout: conn.ack_timeout,
        // Inter-byte gap (§4): half the ACK timeout, 150 ms serial / 500 ms BLE.
        gap: conn.ack_timeout / 2,
        decoder: Decoder::new(),
        dedup: DuplicateFilter::new(),
        tx_seq: 0,
        outstanding: None,
        queue: VecDeque::new(),
        commands: cmd_rx,
        inbound: in_tx,
        ready: false,
        hello_deadline: None,
        last_tx: now,
        last_rx: now,
    };
    if matches!(actor.side, Side::Host { .. }) {
        actor
            .queue
            .push_back(internal(Message::Hello(host_hello())));
    }
    let task = tokio::spawn(async move {
        let err = actor.run().await;
        actor.fail_all(&err);
        if let Side::Host { ready, .. } = &mut actor.side {
            if let Some(ready) = ready.take() {
                let _ = ready.send(Err(err.clone()));
            }
        }
        let _ = down_tx.send(Some(err.clone()));
        let host = actor.is_host();
        let Actor { reader, writer, .. } = actor;
        let stream = reader.unsplit(writer);
        // The host closes the port at once (so a reconnect can open it again, even while
        // someone still holds the dead Session); the emulator keeps its pty for the next host.
        if host {
            drop(stream);
            (None, err)
        } else {
            (Some(stream), err)
        }
    });
    let sender = Sender {
        commands: cmd_tx,
        down: down_rx,
    };
    (sender, in_rx, task)
}

fn internal(msg: Message) -> Job {
    Job {
        msg,
        reply: None,
        redo_left: 0,
    }
}

impl Actor {
    fn is_host(&self) -> bool {
        matches!(self.side, Side::Host { .. })
    }

    async fn run(&mut self) -> LinkError {
        let mut buf = vec![0u8; 1024];
        loop {
            if let Err(e) = self.start_next().await {
                return e;
            }
            let wake = self.next_wake();
            tokio::select! {
                read = self.reader.read(&mut buf) => match read {
                    Ok(0) => return LinkError::Closed,
                    Ok(n) => {
                        self.last_rx = Instant::now();
                        if let Err(e) = self.on_bytes(&buf[..n]).await {
                            return e;
                        }
                    }
                    Err(e) => return LinkError::Io(e.to_string()),
                },
                job = self.commands.recv() => match job {
                    Some(job) => self.queue.push_back(job),
                    None => return LinkError::Shutdown,
                },
                _ = sleep_until(wake), if wake.is_some() => {
                    if let Err(e) = self.on_timer().await {
                        return e;
                    }
                }
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if let Some(o) = &self.outstanding {
            at(o.deadline);
        }
        if let Some(d) = self.hello_deadline {
            at(d);
        }
        if self.decoder.buffered() > 0 {
            at(self.last_rx + self.gap);
        }
        if self.is_host() && self.ready && self.outstanding.is_none() && self.queue.is_empty() {
            at(self.last_tx + KEEPALIVE_AFTER);
        }
        wake
    }

    /// Sends the next queued message if nothing is waiting for an ACK. Before the HELLO
    /// exchange completes only HELLO itself may go.
    async fn start_next(&mut self) -> Result<(), LinkError> {
        while self.outstanding.is_none() {
            let may_send = match self.queue.front() {
                None => return Ok(()),
                Some(job) => self.ready || matches!(job.msg, Message::Hello(_)),
            };
            if !may_send {
                return Ok(());
            }
            let job = self.queue.pop_front().expect("front exists");
            if job.reply.as_ref().is_some_and(|r| r.is_closed()) && !self.is_host() {
                continue; // nobody waits any more (device side only: host sends are sales)
            }
            let seq = if matches!(job.msg, Message::Hello(_)) {
                self.tx_seq = 1;
                0
            } else {
                let s = self.tx_seq;
                self.tx_seq = self.tx_seq.wrapping_add(1);
                s
            };
            let frame = match job.msg.to_frame(seq) {
                Ok(f) => f,
                Err(e) => {
                    finish(job, Err(LinkError::Encode(e)));
                    continue;
                }
            };
            let bytes = link::encode(&frame);
            self.write(&bytes).await?;
            self.outstanding = Some(Outstanding {
                job,
                seq,
                bytes,
                attempts: 1,
                deadline: Instant::now() + self.ack_timeout,
            });
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let noisy;
        let bytes = match &mut self.side {
            Side::Device {
                noise: Some(noise), ..
            } => {
                noisy = noise.mangle(bytes);
                &noisy[..]
            }
            _ => bytes,
        };
        for chunk in link::chunks(bytes, self.mtu) {
            self.writer
                .write_all(chunk)
                .await
                .map_err(|e| LinkError::Io(e.to_string()))?;
        }
        self.writer
            .flush()
            .await
            .map_err(|e| LinkError::Io(e.to_string()))?;
        self.last_tx = Instant::now();
        Ok(())
    }

    async fn send_control(&mut self, msg: Message) -> Result<(), LinkError> {
        let frame = msg.to_frame(0).map_err(LinkError::Encode)?;
        self.write(&link::encode(&frame)).await
    }

    async fn on_timer(&mut self) -> Result<(), LinkError> {
        let now = Instant::now();
        if self.decoder.buffered() > 0 && now >= self.last_rx + self.gap {
            // A partial frame went quiet: maybe a damaged length. Rescan from the next byte.
            self.decoder.skip_partial();
            self.last_rx = now;
            self.drain_decoder().await?;
        }
        if self.hello_deadline.is_some_and(|d| now >= d) {
            return Err(LinkError::NoHello);
        }
        if self.outstanding.as_ref().is_some_and(|o| now >= o.deadline) {
            self.retransmit(now).await?;
        }
        if self.is_host()
            && self.ready
            && self.outstanding.is_none()
            && self.queue.is_empty()
            && now >= self.last_tx + KEEPALIVE_AFTER
        {
            self.queue.push_back(internal(Message::KeepAlive));
        }
        Ok(())
    }

    /// Sends the outstanding frame again, byte for byte, or gives up on it.
    async fn retransmit(&mut self, now: Instant) -> Result<(), LinkError> {
        let Some(o) = self.outstanding.as_mut() else {
            return Ok(());
        };
        if o.attempts >= MAX_TRANSMISSIONS {
            let err = LinkError::NoAck {
                what: what(&o.job.msg),
                attempts: o.attempts,
            };
            if self.is_host() {
                return Err(err);
            }
            // A device keeps serving: the host will reconnect and ask (GET_RESULT).
            let o = self.outstanding.take().expect("checked");
            log::debug!("giving up on {}: {err}", what(&o.job.msg));
            finish(o.job, Err(err));
            return Ok(());
        }
        o.attempts += 1;
        o.deadline = now + self.ack_timeout;
        let bytes = o.bytes.clone();
        self.write(&bytes).await
    }

    fn fail_all(&mut self, err: &LinkError) {
        if let Some(o) = self.outstanding.take() {
            finish(o.job, Err(err.clone()));
        }
        for job in self.queue.drain(..) {
            finish(job, Err(err.clone()));
        }
        self.commands.close();
        while let Ok(job) = self.commands.try_recv() {
            finish(job, Err(err.clone()));
        }
    }
}

fn finish(job: Job, result: Result<(), LinkError>) {
    if let Some(reply) = job.reply {
        let _ = reply.send(result);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
