//! Throughput of the link codec (no I/O): frames/s and bytes/s through `encode` + `Decoder`,
//! for the messages that matter — a sale request, a sale result, a 300-byte DQR payload — fed
//! whole, in BLE-sized 20-byte chunks, and with garbage between frames.
//!
//! `cargo bench --bench link`; `POSBRIDGE_BENCH_QUICK=1` for a short run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use posbridge::device::link::{
    chunks, encode, Currency, Decoder, Message, Outcome, PaymentRequest, SaleResult,
};

struct Case {
    name: &'static str,
    wire: Vec<u8>,
    frames: usize,
    chunk: usize,
}

fn stream(msgs: &[Message], garbage: &[u8]) -> (Vec<u8>, usize) {
    let mut wire = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        wire.extend_from_slice(garbage);
        wire.extend_from_slice(&encode(&m.to_frame(i as u8).unwrap()));
    }
    (wire, msgs.len())
}

fn main() {
    let quick = std::env::var_os("POSBRIDGE_BENCH_QUICK").is_some();
    let span = Duration::from_millis(if quick { 300 } else { 2000 });

    let sale = Message::StartSale(PaymentRequest {
        request_id: "till3-0042".into(),
        amount: 2500,
        currency: Currency::new("INR").unwrap(),
        primary_reference: None,
        credentials: None,
        details: None,
    });
    let result = Message::SaleResult(SaleResult {
        request_id: "till3-0042".into(),
        outcome: Outcome::Approved,
        rrn: Some("511241687991".into()),
        approval_code: Some("361569".into()),
        masked_pan: Some("652100******0003".into()),
        scheme: Some("RUPAY".into()),
        message: "APPROVED".into(),
    });
    let qr = Message::ShowQr {
        payload: "upi://pay?pa=merchant@ybl&pn=Shop&am=25.00&tr=".to_string() + &"x".repeat(254),
    };
    let garbage: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();

    let mut cases = Vec::new();
    for (name, msg) in [
        ("start_sale", &sale),
        ("sale_result", &result),
        ("show_qr 300 B", &qr),
    ] {
        let (wire, frames) = stream(&vec![msg.clone(); 64], &[]);
        cases.push(Case {
            name,
            wire: wire.clone(),
            frames,
            chunk: usize::MAX,
        });
        if name.starts_with("show_qr") {
            cases.push(Case {
                name: "show_qr 300 B, 20 B BLE chunks",
                wire,
                frames,
                chunk: 20,
            });
        }
    }
    let (wire, frames) = stream(&vec![result.clone(); 64], &garbage);
    cases.push(Case {
        name: "sale_result + 32 B garbage each",
        wire,
        frames,
        chunk: usize::MAX,
    });

    println!(
        "{:<36} {:>14} {:>12} {:>14} {:>12}",
        "decode", "frames/s", "MB/s", "encode fr/s", "frame B"
    );
    for case in &cases {
        // Decode: feed the stream (in chunks), count frames and their messages.
        let mut decoder = Decoder::new();
        let mut decoded = 0u64;
        let mut bytes = 0u64;
        let t = Instant::now();
        while t.elapsed() < span {
            for piece in chunks(&case.wire, case.chunk) {
                for frame in decoder.feed(piece) {
                    let frame = frame.expect("intact stream");
                    black_box(Message::from_frame(&frame).unwrap());
                    decoded += 1;
                }
            }
            bytes += case.wire.len() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(decoded % case.frames as u64, 0, "lost frames");

        // Encode the same message, one frame at a time.
        let sample = Decoder::new().feed(&case.wire).next().unwrap().unwrap();
        let sample_msg = Message::from_frame(&sample).unwrap();
        let mut encoded = 0u64;
        let t = Instant::now();
        while t.elapsed() < span {
            for seq in 0..=255u8 {
                black_box(encode(&sample_msg.to_frame(seq).unwrap()));
            }
            encoded += 256;
        }
        let enc_secs = t.elapsed().as_secs_f64();
        println!(
            "{:<36} {:>14.0} {:>12.1} {:>14.0} {:>12}",
            case.name,
            decoded as f64 / secs,
            bytes as f64 / secs / 1e6,
            encoded as f64 / enc_secs,
            encode(&sample).len()
        );
    }
}
