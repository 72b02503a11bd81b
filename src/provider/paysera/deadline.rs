//! The sale's own deadline, told across a restart: when a Paysera sale began, on a clock that
//! no wall-clock step moves and that a restart of posbridge does not reset (CLOCK_BOOTTIME,
//! which also counts time suspended), with the boot it was read in. It is journaled as a
//! progress note before the transaction is created. It only answers "is the customer's window
//! certainly still open?"; it must never be read as "certainly over": a sale whose start
//! cannot be placed (another boot, no note, an older journal) counts as past its deadline, so
//! a reservation found then is revoked, never confirmed late.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// The progress note: `{"boot_id": ..., "boottime_ms": ...}` when the sale began.
pub(super) const NOTE_STARTED: &str = "paysera_started";

/// This boot's id (`/proc/sys/kernel/random/boot_id`), if the kernel tells it.
fn boot_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Milliseconds since this boot, suspend included.
fn boottime_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_BOOTTIME exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The note for a sale beginning now; `None` when the boot cannot be named (then the sale's
/// start cannot be placed after a restart, and its window counts as over).
pub(super) fn started_now() -> Option<Value> {
    Some(json!({"boot_id": boot_id()?, "boottime_ms": boottime_ms()}))
}

/// How long ago the sale of `note` began, when that can be told: the note was made in this
/// boot. `None` otherwise.
pub(super) fn since(note: Option<&Value>) -> Option<Duration> {
    let note = note?;
    if note["boot_id"].as_str()? != boot_id()? {
        return None;
    }
    let then = note["boottime_ms"].as_u64()?;
    boottime_ms().checked_sub(then).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_placed_only_in_its_own_boot() {
        let now = started_now().expect("Linux names its boot");
        let ago = since(Some(&now)).unwrap();
        assert!(ago < Duration::from_secs(60), "{ago:?}");
        let mut earlier = now.clone();
        earlier["boottime_ms"] = json!(now["boottime_ms"].as_u64().unwrap().saturating_sub(5000));
        assert!(since(Some(&earlier)).unwrap() >= Duration::from_secs(5));
        let mut other_boot = now.clone();
        other_boot["boot_id"] = json!("00000000-0000-0000-0000-000000000000");
        assert_eq!(since(Some(&other_boot)), None, "another boot: cannot tell");
        assert_eq!(since(None), None, "no note: cannot tell");
        let mut ahead = now;
        ahead["boottime_ms"] = json!(u64::MAX);
        assert_eq!(since(Some(&ahead)), None);
    }
}
