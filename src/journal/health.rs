//! What the journal's writer last saw go wrong, and whether it may still be trusted to write.
//!
//! Two kinds of write failure are told apart. A full disk (SQLITE_FULL, ENOSPC) is clean:
//! SQLite rolled the transaction back, nothing of it counts, and the next commit works once
//! space is back. An I/O error (EIO on write or fsync, a file system remounted read-only) is
//! not: after a failed fsync the page cache may hold pages that never reached the disk
//! ("fsyncgate"), so nothing written since the last good commit can be trusted, and the writer
//! stops for good (`stopped`): every later write is refused, the watchdog ping fails, and
//! systemd restarts the daemon, which then recovers as after a crash. This module only keeps
//! and words that state; it never decides what an operation's outcome is.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::clock::now_rfc3339;

/// What kind of failure a SQLite error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The disk is full: clean rollback, retry when space is back.
    DiskFull,
    /// An I/O error or a read-only file system: nothing since the last good commit is trusted.
    Io,
    /// Anything else (a constraint, a bug): reported, not fatal.
    Other,
}

impl Fault {
    pub fn of(e: &rusqlite::Error) -> Fault {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DiskFull) => Fault::DiskFull,
            Some(C::SystemIoFailure | C::ReadOnly | C::CannotOpen | C::DatabaseCorrupt) => {
                Fault::Io
            }
            _ => Fault::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::DiskFull => "disk_full",
            Fault::Io => "io_error",
            Fault::Other => "write_error",
        }
    }
}

/// A failed write, in words a technician can act on.
pub fn describe(fault: Fault, path: &Path, e: &rusqlite::Error) -> String {
    let dir = path.parent().unwrap_or(path).display();
    match fault {
        Fault::DiskFull => format!(
            "the disk is full: no space left for the journal {} (free space in {dir}); {e}",
            path.display()
        ),
        Fault::Io => format!(
            "I/O error on the journal {} (failing disk or file system read-only): {e}",
            path.display()
        ),
        Fault::Other => format!("journal {}: {e}", path.display()),
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    /// The last failed write: kind, message, when.
    last_error: Option<(Fault, String, String)>,
    /// Writes are failing now (no write has committed since `last_error`).
    failing: bool,
    /// Set after an I/O error: the writer refuses everything until the daemon restarts.
    stopped: Option<String>,
    /// No write has been tried yet: the first ping writes, so a daemon started on a full
    /// disk says so at once rather than at its first sale.
    proven: bool,
}

/// Shared between the journal writer (which records) and readers of the daemon's status.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn failed(&self, fault: Fault, message: &str) {
        self.with(|s| {
            s.last_error = Some((fault, message.to_owned(), now_rfc3339()));
            s.failing = true;
            s.proven = true;
            if fault == Fault::Io && s.stopped.is_none() {
                s.stopped = Some(message.to_owned());
            }
        })
    }

    pub(crate) fn committed(&self) {
        self.with(|s| {
            s.failing = false;
            s.proven = true;
        })
    }

    /// Whether a ping should try a real write: while writes fail, and once at start.
    pub(crate) fn probe_due(&self) -> bool {
        self.with(|s| s.failing || !s.proven)
    }

    /// Why the writer stopped for good, if it did.
    pub fn stopped(&self) -> Option<String> {
        self.with(|s| s.stopped.clone())
    }

    /// Writes are failing right now (disk full, or stopped).
    pub fn failing(&self) -> bool {
        self.with(|s| s.failing || s.stopped.is_some())
    }

    /// One line for systemd's STATUS and the log.
    pub fn summary(&self) -> Option<String> {
        self.with(|s| match (&s.stopped, s.failing, &s.last_error) {
            (Some(why), _, _) => Some(format!("journal stopped: {why}")),
            (None, true, Some((_, msg, _))) => Some(format!("journal writes failing: {msg}")),
            _ => None,
        })
    }

    /// The `status` answer's view: `writable`, `last_error` {kind, message, at}, `stopped`.
    pub fn to_json(&self) -> Value {
        self.with(|s| {
            let last = s
                .last_error
                .as_ref()
                .map(|(f, m, at)| json!({"kind": f.as_str(), "message": m, "at": at}));
            json!({
                "writable": !s.failing && s.stopped.is_none(),
                "last_error": last,
                "stopped": s.stopped,
            })
        })
    }
}

/// Bytes free for an unprivileged writer on the file system holding `path` (statvfs).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: statvfs writes into the zeroed struct we own; c is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Adds the writer's health and the free space where the journal lives to `status`'s
/// `journal` object: `writable`, `last_error`, `stopped`, `free_bytes`.
pub fn add_to_status(journal: &super::Journal, out: &mut Value) {
    if let (Value::Object(out), Value::Object(h)) = (out, journal.health().to_json()) {
        out.extend(h);
        let dir = journal.path().parent().unwrap_or(journal.path());
        out.insert("free_bytes".into(), json!(free_bytes(dir).ok()));
    }
}

/// A start-up failure on a full disk says so first: SQLite's own words for it ("I/O error
/// within the xShmMap method") do not.
pub fn if_disk_full(e: anyhow::Error, state_dir: &Path) -> anyhow::Error {
    match free_bytes(state_dir) {
        Ok(free) if free < 64 * 1024 => e.context(format!(
            "the disk is full: {free} bytes free in the state directory {}; free space on \
             that file system, then start posbridge again",
            state_dir.display()
        )),
        _ => e,
    }
}
