//! Checks shared by the fuzz targets: what text that came from outside may never carry once
//! posbridge has passed it on (a full card number), and which JSON cannot round-trip exactly. Included by the targets with `mod common;`;
//! it must stay free of anything target-specific.

#![allow(dead_code)]

/// The longest run of ASCII digits in `text`.
pub fn longest_digit_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Text for a cashier, a log or the journal: no run of 12 or more digits (a card number is
/// 12 to 19), so a full PAN cannot be in it.
pub fn assert_no_pan(what: &str, text: &str) {
    assert!(
        longest_digit_run(text) < 12,
        "{what} carries a run of {} digits (a card number?): {text:?}",
        longest_digit_run(text)
    );
}

/// A masked PAN shows at most 10 digits (first six, last four), as PCI DSS allows.
pub fn assert_masked(what: &str, masked_pan: &str) {
    let digits = masked_pan.chars().filter(char::is_ascii_digit).count();
    assert!(
        digits <= 10,
        "{what} shows {digits} digits, more than a masked PAN may: {masked_pan:?}"
    );
}

/// Whether `v` holds a non-integer number: its text may move by one ulp through an f64, so a
/// round trip (re-render, re-sign) is compared only for values without one.
pub fn has_float(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}
