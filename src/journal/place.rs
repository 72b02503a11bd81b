//! Where the journal lives in a state directory, and the lock that keeps one process on it.
//!
//! The journal owns its file name and its lock: the daemon takes the lock before it opens the
//! journal, and `journal salvage` takes the same lock before it moves the file aside, so they
//! never run on one state directory at once. This module opens no database and reads no row.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The journal's file name inside the state directory (its WAL is `journal.sqlite-wal`).
pub const FILE: &str = "journal.sqlite";

/// The lock file's name (kept from earlier versions: an old and a new binary exclude each other).
const LOCK_FILE: &str = "daemon.lock";

/// The journal of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// One process per state directory: a second daemon would reconcile the same operations twice,
/// and salvage must not move the journal from under a running daemon. Held while the file lives.
pub fn lock(state_dir: &Path) -> Result<File> {
    let path = state_dir.join(LOCK_FILE);
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another posbridge daemon is already using the state directory {}",
            state_dir.display()
        );
    }
    Ok(file)
}
