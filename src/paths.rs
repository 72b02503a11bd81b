//! Where things live: the API socket, the state directory, the config file.
//!
//! The daemon and the client commands find the socket the same way (DESIGN.md §2), so a
//! command run next to a daemon reaches it without flags. A socket passed by systemd is handled
//! in `systemd.rs`; this module only computes paths.

use std::path::PathBuf;

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A directory systemd passes in `name`; it may list several separated by ':', ours first.
fn systemd_dir(name: &str) -> Option<PathBuf> {
    let list = env_path(name)?;
    let first = list.to_string_lossy().split(':').next()?.to_owned();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `--socket`, else `$POSBRIDGE_SOCKET` (clap reads both into `flag`), else the config's
/// `api.socket`, else `$RUNTIME_DIRECTORY/api.sock`, else `/run/posbridge/api.sock` as root or
/// `$XDG_RUNTIME_DIR/posbridge/api.sock` otherwise.
pub fn socket(flag: Option<PathBuf>, configured: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag.or(configured) {
        return p;
    }
    if let Some(dir) = systemd_dir("RUNTIME_DIRECTORY") {
        return dir.join("api.sock");
    }
    if is_root() {
        return PathBuf::from("/run/posbridge/api.sock");
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("posbridge/api.sock"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => {
            std::env::temp_dir().join(format!("posbridge-{}/api.sock", unsafe { libc::getuid() }))
        }
    }
}

/// `--state-dir` / `$POSBRIDGE_STATE_DIR`, else systemd's `$STATE_DIRECTORY`, else
/// `/var/lib/posbridge` as root or `$XDG_STATE_HOME/posbridge` (`~/.local/state/posbridge`).
pub fn state_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    if let Some(dir) = systemd_dir("STATE_DIRECTORY") {
        return dir;
    }
    if is_root() {
        return PathBuf::from("/var/lib/posbridge");
    }
    env_path("XDG_STATE_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("posbridge")
}

/// `--config` / `$POSBRIDGE_CONFIG`, else `$CONFIGURATION_DIRECTORY/posbridge.toml` or the
/// packaged path if such a file exists; `None` means the embedded defaults.
pub fn config_file(flag: Option<PathBuf>) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    env_path("CONFIGURATION_DIRECTORY")
        .map(|d| d.join("posbridge.toml"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(crate::config::DEFAULT_PATH)))
        .find(|p| p.exists())
}
