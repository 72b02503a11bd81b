//! Time, in the two kinds posbridge must never mix up.
//!
//! Wall-clock time ([`now`], [`now_rfc3339`], [`unix_secs`]) is read only here, and only for
//! what is *shown or sent*: the RFC 3339 stamps in the journal and in answers, Paysera's MAC
//! `ts`, a replica's `Date`, the doctor's comparison with a backend's `Date`. A counter's wall
//! clock steps: many boot at 1970 or at their last shutdown time and are set by NTP minutes
//! later, so nothing that decides a wait, a deadline, a window or an order may read it.
//!
//! Waits and deadlines use the monotonic clock (`std::time::Instant`, `tokio::time`), which
//! never steps. A window that must outlive a restart ("not found is final only N seconds
//! after the request was sent") is measured by [`SendTimes`]: from the monotonic instant the
//! request was sent when this process sent it, else from when this process started, which is
//! later than any send of an earlier process. So after a restart such a window can only end
//! late, never early, whatever the wall clock did; `created_at` is never parsed for it.
//!
//! Test seam (for tests only; never set it on a counter): when `POSBRIDGE_TEST_CLOCK_OFFSET_FILE`
//! names a file, every wall-clock read adds the whole seconds written in it (e.g. `-86400`; a
//! missing or empty file is 0), read afresh on each call, so a test steps the wall clock of a
//! running daemon or replica by rewriting the file. It cannot touch the monotonic clock. The
//! daemon logs a warning at start when it is set (`seam_in_use`). Clippy's
//! `disallowed_methods` (clippy.toml) keeps other wall-clock reads out of the code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The test-only seam: a file holding a wall-clock offset in seconds.
pub const OFFSET_FILE_ENV: &str = "POSBRIDGE_TEST_CLOCK_OFFSET_FILE";

fn offset_file() -> Option<&'static PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os(OFFSET_FILE_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    })
    .as_ref()
}

/// The seam's file, when set (the daemon warns about it at start).
pub fn seam_in_use() -> Option<&'static PathBuf> {
    offset_file()
}

fn offset() -> time::Duration {
    let Some(path) = offset_file() else {
        return time::Duration::ZERO;
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.trim() {
        "" => time::Duration::ZERO,
        s => match s.parse::<i64>() {
            Ok(secs) => time::Duration::seconds(secs),
            Err(_) => {
                log::warn!(
                    "{OFFSET_FILE_ENV}: {} holds {s:?}, not whole seconds; ignored",
                    path.display()
                );
                time::Duration::ZERO
            }
        },
    }
}

/// The wall clock (UTC), through the test seam.
#[allow(clippy::disallowed_methods)]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + offset()
}

pub fn now_rfc3339() -> String {
    now()
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of the current time cannot fail")
}

/// How long ago `rfc3339` was on the wall clock (through the seam); `None` when it does not
/// parse. Zero for a time ahead of the clock (it stepped back). Only for bounds where a step
/// can make a decision come early or late but never change what it decides.
pub fn age_of(rfc3339: &str) -> Option<std::time::Duration> {
    let then = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    Some((now() - then).try_into().unwrap_or_default())
}

/// Seconds since the Unix epoch (0 for a clock before 1970).
pub fn unix_secs() -> u64 {
    now().unix_timestamp().max(0) as u64
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn unix_ms() -> u64 {
    (now().unix_timestamp_nanos() / 1_000_000).max(0) as u64
}

/// An HTTP date (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Parses an HTTP date (IMF-fixdate only, as every current server sends).
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), format)
        .ok()
        .map(|t| t.assume_utc())
}

/// How far this counter's clock is from a backend's answer stamped `date` (an HTTP `Date`
/// header), in whole seconds: positive when ours is ahead. `None` without a readable date.
pub fn skew_from_date(date: Option<&str>) -> Option<i64> {
    let theirs = parse_http_date(date?)?;
    Some((now() - theirs).whole_seconds())
}

/// Above this (either way) a refusal by a backend is put down to this counter's clock. The
/// doctor fails at the same figure (`backend.<name>.clock`).
pub const SKEW_LIMIT_S: i64 = 60;

/// "this counter's clock is 86400 s behind PhonePe's", for messages.
pub fn describe_skew(skew: i64, whose: &str) -> String {
    format!(
        "this counter's clock is {} s {} {whose}",
        skew.unsigned_abs(),
        if skew >= 0 { "ahead of" } else { "behind" }
    )
}

/// A lower bound, immune to wall-clock steps, on how long ago each operation's request was
/// sent (see the module comment). Keyed by request_id; an entry lives while the operation's
/// outcome is open in this process.
pub struct SendTimes {
    /// When this process (this provider) started: before any send it did not record.
    started: Instant,
    sent: Mutex<HashMap<String, Instant>>,
}

impl Default for SendTimes {
    fn default() -> Self {
        SendTimes::new()
    }
}

impl SendTimes {
    pub fn new() -> SendTimes {
        SendTimes::started_at(Instant::now())
    }

    /// As if this process had started at `started` (for tests).
    pub fn started_at(started: Instant) -> SendTimes {
        SendTimes {
            started,
            sent: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Call just before the request of `id` is sent.
    pub fn sending(&self, id: &str) {
        self.sending_at(id, Instant::now());
    }

    pub fn sending_at(&self, id: &str, at: Instant) {
        self.map().insert(id.to_owned(), at);
    }

    /// At least this long ago `id`'s request was sent: measured in this process, or, for a
    /// request an earlier process sent, this process's own age.
    pub fn at_least(&self, id: &str) -> Duration {
        match self.map().get(id) {
            Some(at) => at.elapsed(),
            None => self.started.elapsed(),
        }
    }

    /// The operation's outcome is final: nothing more to measure.
    pub fn forget(&self, id: &str) {
        self.map().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.unix_timestamp(), 784111777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        let skew = skew_from_date(Some(&http_date(now() - time::Duration::hours(1)))).unwrap();
        assert!((3599..=3601).contains(&skew), "{skew}");
        assert_eq!(skew_from_date(None), None);
        assert!(describe_skew(-5, "X's").contains("5 s behind X's"));
    }

    #[test]
    fn a_send_of_an_earlier_process_counts_from_this_ones_start() {
        let t = SendTimes::started_at(Instant::now() - Duration::from_secs(100));
        // Not sent here: at least as old as this process.
        assert!(t.at_least("old") >= Duration::from_secs(100));
        // Sent here just now: young, whatever its created_at says.
        t.sending("new");
        assert!(t.at_least("new") < Duration::from_secs(100));
        t.sending_at("mid", Instant::now() - Duration::from_secs(30));
        let mid = t.at_least("mid");
        assert!(mid >= Duration::from_secs(30) && mid < Duration::from_secs(100));
        t.forget("new");
        assert!(t.at_least("new") >= Duration::from_secs(100));
    }
}
