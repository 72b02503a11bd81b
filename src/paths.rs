//! Where things live: the API socket, the state directory, the config file.
//!
//! The daemon and the client commands find the socket the same way (DESIGN.md §2), so a
//! command run next to a daemon reaches it without flags. A socket passed by systemd is handled
//! in `systemd.rs`; this module only computes paths.

use std::path::{Path, PathBuf};

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
        return PathBuf::from(SYSTEM_SOCKET);
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("posbridge/api.sock"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => {
            std::env::temp_dir().join(format!("posbridge-{}/api.sock", unsafe { libc::getuid() }))
        }
    }
}

/// The system service's socket (posbridge.socket).
pub const SYSTEM_SOCKET: &str = "/run/posbridge/api.sock";

/// Where a client command looks: as [`socket`], except that a user who is not root reaches
/// the system service's socket when it exists (a member of the `posbridge` group running
/// `posbridge pay` next to the installed service), before its own runtime directory.
pub fn client_socket(flag: Option<PathBuf>, configured: Option<PathBuf>) -> PathBuf {
    client_socket_with(flag, configured, Path::new(SYSTEM_SOCKET))
}

fn client_socket_with(
    flag: Option<PathBuf>,
    configured: Option<PathBuf>,
    system: &Path,
) -> PathBuf {
    let own = socket(flag.clone(), configured.clone());
    let explicit =
        flag.is_some() || configured.is_some() || systemd_dir("RUNTIME_DIRECTORY").is_some();
    if explicit || own.exists() || !system_there(system.try_exists()) {
        return own;
    }
    system.to_owned()
}

/// Whether the system socket is there, from `try_exists`. A user outside the `posbridge` group
/// cannot even look into `/run/posbridge` (0750): "permission denied" means the service is
/// installed, so that user is sent to it and told which group is missing (`client.rs`), not
/// to its own socket with "is it running?".
fn system_there(looked: std::io::Result<bool>) -> bool {
    match looked {
        Ok(there) => there,
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_finds_the_system_socket_unless_told_otherwise_or_its_own_daemon_runs() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.sock");
        let flagged = dir.path().join("flag.sock");
        let flag = Some(flagged.clone());
        // No system socket: the usual place.
        assert_eq!(client_socket_with(None, None, &system), socket(None, None));
        std::fs::write(&system, b"").unwrap();
        // --socket / $POSBRIDGE_SOCKET always win.
        assert_eq!(client_socket_with(flag, None, &system), flagged);
        // Otherwise the system service's socket, unless this user's own daemon is running
        // (root's own place is the system socket anyway).
        let own = socket(None, None);
        let expected = if own.exists() { own } else { system.clone() };
        assert_eq!(client_socket_with(None, None, &system), expected);
    }

    #[test]
    fn a_system_socket_this_user_may_not_look_at_counts_as_there() {
        use std::io::{Error, ErrorKind};
        assert!(system_there(Ok(true)));
        assert!(!system_there(Ok(false)));
        assert!(system_there(Err(Error::from(ErrorKind::PermissionDenied))));
        assert!(!system_there(Err(Error::from(ErrorKind::NotADirectory))));
    }
}
