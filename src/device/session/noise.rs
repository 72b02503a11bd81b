//! Test noise for the emulator's transmit path (`posbridge emulate --noise`): garbage between
//! frames and a share of frames with one bit flipped. Seeded, so a failing run can be repeated.
//! Only the device side of a link ever uses it. Each damage it does is logged (info, "noise:
//! ..."), so a test can count the damage its line really took instead of trusting the percent.

/// The noise generator (xorshift64*, no dependency).
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

    pub(crate) fn mangle(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + 8);
        if self.next() % 100 < u64::from(self.percent) {
            for _ in 0..self.next() % 8 {
                out.push(self.next() as u8);
            }
            if !out.is_empty() {
                log::info!("noise: {} garbage bytes before a frame", out.len());
            }
        }
        let start = out.len();
        out.extend_from_slice(frame);
        if self.next() % 100 < u64::from(self.percent) {
            let at = start + (self.next() as usize % frame.len());
            out[at] ^= 1 << (self.next() % 8);
            log::info!("noise: damaged a frame (one bit flipped)");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::link::{encode, Decoder, Message};

    #[test]
    fn zero_percent_is_silent_and_full_noise_damages_every_frame() {
        let frame = encode(&Message::KeepAlive.to_frame(3).unwrap());
        let mut quiet = Noise::new(0, 42);
        assert_eq!(quiet.mangle(&frame), frame);
        let mut loud = Noise::new(100, 42);
        for _ in 0..50 {
            let noisy = loud.mangle(&frame);
            let mut d = Decoder::new();
            assert!(
                !d.feed(&noisy).any(|f| f.is_ok()),
                "a damaged frame must not decode"
            );
        }
        // The same seed gives the same noise.
        assert_eq!(
            Noise::new(30, 7).mangle(&frame),
            Noise::new(30, 7).mangle(&frame)
        );
    }
}
