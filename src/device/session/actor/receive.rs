//! The receiving half of the link task: bytes to frames, and what each frame means for the
//! session (ACK, NAK, duplicates, HELLO, delivery to the layer above).

use tokio::time::Instant;

use super::{finish, internal, Actor, Side};
use crate::device::link::{
    self, DecodeError, Delivery, Frame, Hello, Message, NakReason, PayloadError,
};
use crate::device::session::MIN_PROTOCOL_VERSION;
use crate::device::session::{host_hello, what, LinkError, RoleName, MAX_TRANSMISSIONS};

impl Actor {
    pub(super) async fn on_bytes(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
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

    pub(super) async fn drain_decoder(&mut self) -> Result<(), LinkError> {
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
            if h.protocol_version < MIN_PROTOCOL_VERSION {
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
                // The firmware learns the host's protocol version (which layouts it may send).
                let _ = self.inbound.send(Message::Hello(peer));
                Ok(())
            }
        }
    }
}
