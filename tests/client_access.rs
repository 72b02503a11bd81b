//! A client without the right to use the daemon's socket is told so, and which group it lacks,
//! instead of "is it running?". (hil/vm checks the same against the installed package.)
//! Runs the real binary; as root it drops to `nobody` with setpriv (root passes any mode).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_user_without_access_to_the_socket_is_told_which_group_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("api.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        if Command::new("setpriv").arg("--version").output().is_err() {
            return common::skip::cannot_run(
                "root without setpriv (util-linux) cannot drop to another user",
            );
        }
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::BIN,
        ]);
        c
    } else {
        Command::new(common::BIN)
    };
    let out = cmd
        .args(["status", "--socket"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("no permission"), "{stderr}");
    assert!(stderr.contains("usermod -aG posbridge"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}
