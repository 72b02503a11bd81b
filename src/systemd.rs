//! systemd integration: readiness and watchdog notifications, socket activation, journald.
//!
//! Everything here is a no-op outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS, stderr not the
//! journal), so the same binary runs by hand, under a test harness and as a service.

use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends notifications; failures are logged, never fatal (the service manager may be gone).
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        log::warn!("sd_notify failed: {e}");
    }
}

/// CLOCK_MONOTONIC in microseconds: the clock of systemd's `*TimestampMonotonic` properties
/// and of journald's `__MONOTONIC_TIMESTAMP`, so an entry can carry the moment it was made
/// (journald stamps an entry when it receives it, which may be after PID 1 handled a
/// notification sent later).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1 with MONOTONIC_USEC (which `Type=notify-reload` requires; older systemd ignores
/// it), then READY=1 ([`ready`]) once the reload is done or refused.
pub fn reloading(status: &str) {
    notify(&[
        NotifyState::Reloading,
        NotifyState::MonotonicUsec(monotonic_usec() as i128),
        NotifyState::Status(status),
    ]);
}

pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

pub fn stopping(status: &str) {
    notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// Half of `WATCHDOG_USEC` when the watchdog is on for this process (systemd's advice).
/// As sd_watchdog_enabled(3): `WATCHDOG_PID`, when set, must name this process; when unset the
/// watchdog is ours. (sd-notify 0.4's `watchdog_enabled` wrongly requires `WATCHDOG_PID`.)
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC")
        .ok()?
        .parse()
        .ok()
        .filter(|u| *u > 0)?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// The first listening socket passed by systemd (`LISTEN_FDS`, for this PID), if any. The
/// variables are then removed so no child process inherits them.
pub fn activated_listener() -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    let fds: Vec<RawFd> = match sd_notify::listen_fds() {
        Ok(fds) => fds.collect(),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("LISTEN_FDS is set but unusable: {e}"),
            ))
        }
    };
    // Called before the runtime starts any thread (daemon.rs), so changing the environment
    // cannot race with a reader.
    for var in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let Some(&fd) = fds.first() else {
        return Ok(None);
    };
    // SAFETY: systemd hands this fd to us alone; we take ownership exactly once.
    let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Logs to journald (with structured fields) when stderr is the journal, else to stderr.
/// `RUST_LOG` sets the level (default `info`).
pub fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    if systemd_journal_logger::connected_to_journal() {
        if let Ok(journal) = systemd_journal_logger::JournalLog::new() {
            if journal
                .with_syslog_identifier("posbridge".into())
                .install()
                .is_ok()
            {
                log::set_max_level(level);
                return;
            }
        }
    }
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .parse_default_env()
        .target(env_logger::Target::Stderr)
        .try_init();
}
