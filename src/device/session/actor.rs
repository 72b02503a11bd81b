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

use super::{host_hello, what, Job, LinkError, RoleName, Sender, KEEPALIVE_AFTER};
use super::{MAX_TRANSMISSIONS, PROTOCOL_VERSION};
use crate::device::link::{
    self, DecodeError, Decoder, Delivery, DuplicateFilter, Frame, Hello, Message, NakReason,
    PayloadError, Role,
};
use crate::device::transport::{ByteStream, Connection};

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

/// Test noise for the emulator's transmit path (`--noise`): garbage between frames and a
/// share of frames with one byte flipped. Seeded, so a failing run can be repeated.
pub(crate) struct Noise {
    percent: u32,
    state: u64,
}

impl Noise {
    pub(crate) fn new(percent: u32, seed: u64) -> Noise {
        Noise {
            percent: percent.min(100),
            state: seed | 1,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for noise, and no dependency.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn mangle(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + 8);
        if self.next() % 100 < u64::from(self.percent) {
            for _ in 0..self.next() % 8 {
                out.push(self.next() as u8);
            }
        }
        let start = out.len();
        out.extend_from_slice(frame);
        if self.next() % 100 < u64::from(self.percent) {
            let at = start + (self.next() as usize % frame.len());
            out[at] ^= 1 << (self.next() % 8);
        }
        out
    }
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

    async fn on_bytes(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let mut rest = bytes;
        loop {
            self.drain_decoder().await?;
            if rest.is_empty() {
                return Ok(());
            }
            let n = self.decoder.push(rest);
            rest = &rest[n..];
        }
    }

    async fn drain_decoder(&mut self) -> Result<(), LinkError> {
        while let Some(item) = self.decoder.next_frame() {
            match item {
                Ok(frame) => self.on_frame(frame).await?,
                Err(DecodeError::CrcMismatch { seq, kind, .. }) => {
                    log::debug!("frame seq {seq} type {kind:#04x} failed its CRC; NAK");
                    // A damaged ACK/NAK is not answered: our own timer covers it.
                    if kind != link::kind::ACK && kind != link::kind::NAK {
                        self.send_control(Message::Nak {
                            seq,
                            reason: NakReason::BadCrc,
                        })
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), LinkError> {
        let msg = match Message::from_frame(&frame) {
            Ok(msg) => msg,
            Err(e) => {
                log::warn!(
                    "refusing frame seq {} type {:#04x}: {e}",
                    frame.seq(),
                    frame.kind()
                );
                if frame.flags().ack_requested() {
                    let reason = match e {
                        PayloadError::UnknownType(_) => NakReason::UnknownType,
                        _ => NakReason::Malformed,
                    };
                    self.send_control(Message::Nak {
                        seq: frame.seq(),
                        reason,
                    })
                    .await?;
                }
                return Ok(());
            }
        };
        match msg {
            Message::Ack { seq } => {
                if self.outstanding.as_ref().is_some_and(|o| o.seq == seq) {
                    self.acknowledged();
                }
                Ok(())
            }
            Message::Nak { seq, reason } => {
                if self.outstanding.as_ref().is_some_and(|o| o.seq == seq) {
                    self.on_nak(reason).await?;
                }
                Ok(())
            }
            msg => self.on_message(&frame, msg).await,
        }
    }

    fn acknowledged(&mut self) {
        let Some(o) = self.outstanding.take() else {
            return;
        };
        if matches!(o.job.msg, Message::Hello(_)) && self.is_host() {
            self.hello_deadline = Some(Instant::now() + self.ack_timeout * MAX_TRANSMISSIONS);
        }
        finish(o.job, Ok(()));
    }

    async fn on_nak(&mut self, reason: NakReason) -> Result<(), LinkError> {
        let what = self.outstanding.as_ref().map_or("?", |o| what(&o.job.msg));
        log::debug!("device refused {what}: {reason:?}");
        match reason {
            NakReason::Malformed | NakReason::UnknownType => {
                let o = self.outstanding.take().expect("checked by caller");
                finish(o.job, Err(LinkError::Refused { what, reason }));
                Ok(())
            }
            NakReason::UnsupportedVersion => Err(LinkError::Incompatible),
            NakReason::NotReady if self.is_host() => {
                // The device rebooted: it never took this frame. HELLO again, then resend.
                let mut o = self.outstanding.take().expect("checked by caller");
                if matches!(o.job.msg, Message::Hello(_)) {
                    return Err(LinkError::NotReady);
                }
                if o.job.msg != Message::KeepAlive {
                    if o.job.redo_left == 0 {
                        finish(o.job, Err(LinkError::NotReady));
                    } else {
                        o.job.redo_left -= 1;
                        self.queue.push_front(o.job);
                    }
                }
                self.ready = false;
                self.queue
                    .push_front(internal(Message::Hello(host_hello())));
                Ok(())
            }
            _ => self.retransmit(Instant::now()).await,
        }
    }

    async fn on_message(&mut self, frame: &Frame, msg: Message) -> Result<(), LinkError> {
        let seq = frame.seq();
        let hello = matches!(msg, Message::Hello(_));
        if !self.is_host() && !self.ready && !hello {
            return self
                .send_control(Message::Nak {
                    seq,
                    reason: NakReason::NotReady,
                })
                .await;
        }
        if let Message::Hello(h) = &msg {
            if h.protocol_version < PROTOCOL_VERSION {
                return self
                    .send_control(Message::Nak {
                        seq,
                        reason: NakReason::UnsupportedVersion,
                    })
                    .await;
            }
        }
        let delivery = self.dedup.check(frame);
        if frame.flags().ack_requested() {
            self.send_control(Message::Ack { seq }).await?;
        }
        if delivery == Delivery::Duplicate {
            log::debug!("duplicate frame seq {seq} acknowledged again, not delivered");
            return Ok(());
        }
        match msg {
            Message::Hello(h) => self.on_hello(h),
            Message::KeepAlive => Ok(()),
            msg => {
                let _ = self.inbound.send(msg);
                Ok(())
            }
        }
    }

    fn on_hello(&mut self, peer: Hello) -> Result<(), LinkError> {
        match &mut self.side {
            Side::Host { expected, ready } => {
                if peer.role != *expected {
                    return Err(LinkError::WrongRole {
                        expected: RoleName(*expected),
                        got: RoleName(peer.role),
                    });
                }
                // Its HELLO answers ours, even if the ACK was lost on the way.
                if self
                    .outstanding
                    .as_ref()
                    .is_some_and(|o| matches!(o.job.msg, Message::Hello(_)))
                {
                    self.outstanding = None;
                }
                self.hello_deadline = None;
                self.ready = true;
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(peer));
                }
                Ok(())
            }
            Side::Device { hello, .. } => {
                // A new host session: whatever we were sending belonged to the old one.
                let mine = hello.clone();
                if let Some(o) = self.outstanding.take() {
                    finish(o.job, Err(LinkError::Closed));
                }
                self.queue.retain(|j| !matches!(j.msg, Message::Hello(_)));
                self.queue.push_front(internal(Message::Hello(mine)));
                self.ready = true;
                Ok(())
            }
        }
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
