//! A scripted device for tests and hil/: raw frames in and out with no session logic at all,
//! so a test can misbehave exactly as it wants (drop ACKs, corrupt bytes, repeat frames, go
//! silent). It must never be used by the daemon itself.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::link::{self, Decoder, Frame, Hello, Message, Role};
use super::transport::ByteStream;

/// One end of a link, driven by hand.
pub struct ScriptedDevice<S> {
    pub io: S,
    decoder: Decoder,
    /// The next sequence number [`ScriptedDevice::send`] uses.
    pub seq: u8,
    /// How long `frame` waits before panicking (a test that hangs is a test that fails late).
    pub patience: Duration,
}

impl<S: ByteStream> ScriptedDevice<S> {
    pub fn new(io: S) -> Self {
        ScriptedDevice {
            io,
            decoder: Decoder::new(),
            seq: 0,
            patience: Duration::from_secs(10),
        }
    }

    /// The next frame with a good CRC (CRC failures and garbage are skipped).
    pub async fn frame(&mut self) -> Frame {
        match tokio::time::timeout(self.patience, self.try_frame()).await {
            Ok(Some(f)) => f,
            Ok(None) => panic!("scripted device: the host closed the link"),
            Err(_) => panic!(
                "scripted device: no frame from the host in {:?}",
                self.patience
            ),
        }
    }

    /// The next good frame, or `None` at EOF / I/O error.
    pub async fn try_frame(&mut self) -> Option<Frame> {
        let mut buf = [0u8; 512];
        loop {
            while let Some(item) = self.decoder.next_frame() {
                if let Ok(frame) = item {
                    return Some(frame);
                }
            }
            match self.io.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        let taken = self.decoder.push(rest);
                        rest = &rest[taken..];
                        if taken == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The next frame, parsed.
    pub async fn message(&mut self) -> (Frame, Message) {
        let frame = self.frame().await;
        let msg = Message::from_frame(&frame).expect("the host sent a malformed payload");
        (frame, msg)
    }

    /// The next frame that is not a KEEPALIVE (those are acknowledged on the way).
    pub async fn request(&mut self) -> (Frame, Message) {
        loop {
            let (frame, msg) = self.message().await;
            if msg == Message::KeepAlive {
                self.ack(frame.seq()).await;
                continue;
            }
            return (frame, msg);
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("scripted write");
        self.io.flush().await.expect("scripted flush");
    }

    /// Sends `msg` under the next sequence number; returns the frame's bytes.
    pub async fn send(&mut self, msg: &Message) -> Vec<u8> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let bytes = link::encode(&msg.to_frame(seq).expect("encodable"));
        self.write(&bytes).await;
        bytes
    }

    pub async fn ack(&mut self, seq: u8) {
        let bytes = link::encode(&Message::Ack { seq }.to_frame(0).unwrap());
        self.write(&bytes).await;
    }

    /// Answers the host's HELLO as a device of `role` and waits for the ACK of ours.
    pub async fn handshake(&mut self, role: Role, serial: &str) {
        let (frame, msg) = self.message().await;
        assert!(
            matches!(msg, Message::Hello(_)),
            "expected HELLO, got {msg:?}"
        );
        self.ack(frame.seq()).await;
        self.seq = 0;
        self.send(&Message::Hello(Hello {
            protocol_version: 1,
            role,
            model: "scripted".into(),
            firmware: "0.0.1".into(),
            serial: serial.into(),
        }))
        .await;
        let (_, ack) = self.message().await;
        assert_eq!(ack, Message::Ack { seq: 0 });
    }

    /// Sends `msg` and waits for the host's ACK of it, acknowledging keep-alives meanwhile.
    pub async fn send_acked(&mut self, msg: &Message) {
        let seq = self.seq;
        self.send(msg).await;
        loop {
            let (frame, got) = self.message().await;
            match got {
                Message::Ack { seq: s } if s == seq => return,
                Message::KeepAlive => self.ack(frame.seq()).await,
                other => panic!("expected ACK {seq}, got {other:?}"),
            }
        }
    }
}
