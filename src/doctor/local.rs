//! The checks on this machine's own files: the socket (reachable, mode, group), the state
//! directory (writable, free space) and the journal (SQLite integrity, opened read-only).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Check, Context};
use crate::cli::ClientArgs;
use crate::config::Config;
use crate::exchange::{Answer, Body};

/// Free space below this fails the disk check: a journal commit may fail any moment.
const DISK_FAIL_BYTES: u64 = 10 * 1024 * 1024;
/// Below this it warns: days of sales left, not months.
const DISK_WARN_BYTES: u64 = 100 * 1024 * 1024;

const START_FIX: &str = "start it: `systemctl start posbridge.socket posbridge.service` \
                         (or `posbridge daemon`), or point --socket at the right path";

/// `socket` (answers `status`) and `socket.permissions`; returns the status `data` too.
pub fn socket(
    path: &Path,
    config: Option<&Config>,
    timeout: Duration,
) -> (Vec<Check>, Option<Value>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let check = Check::fail(
                "socket",
                format!("{}: {e}", path.display()),
                "run doctor as root, or as a member of the posbridge group",
            );
            return (vec![check], None);
        }
        Err(e) => {
            let check = Check::fail(
                "socket",
                format!("{}: {e}; the daemon is not running here", path.display()),
                START_FIX,
            );
            return (vec![check], None);
        }
    };
    if !meta.file_type().is_socket() {
        let check = Check::fail(
            "socket",
            format!("{} exists but is not a socket", path.display()),
            format!("remove {} and restart posbridge", path.display()),
        );
        return (vec![check], None);
    }
    let mut checks = Vec::new();
    let args = ClientArgs {
        socket: Some(path.to_owned()),
        json: false,
        timeout: timeout.as_secs().max(1),
    };
    let status = match crate::client::request(&args, &json!({"action": "status"})) {
        Ok(Answer {
            body: Body::Done(data),
            ..
        }) => {
            let data = data.to_value();
            checks.push(Check::ok(
                "socket",
                format!(
                    "{} answers (posbridge {}, up {} s, {} running)",
                    path.display(),
                    data["version"].as_str().unwrap_or("?"),
                    data["uptime_s"],
                    data["running"]
                ),
            ));
            Some(data)
        }
        Ok(Answer {
            body: Body::Refused(refusal),
            ..
        }) => {
            let reason = refusal.reason;
            let fix = if reason == "unauthorized" {
                "run doctor as root, or as a member of a group in api.allowed_groups".to_owned()
            } else {
                "see the daemon's log: `journalctl -u posbridge`".to_owned()
            };
            checks.push(Check::fail(
                "socket",
                format!(
                    "{} refused status: {reason}: {}",
                    path.display(),
                    refusal.message
                ),
                fix,
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail(
                "socket",
                format!("{}: {e:#}", path.display()),
                START_FIX,
            ));
            None
        }
    };
    checks.push(permissions(path, &meta, config));
    (checks, status)
}

fn permissions(path: &Path, meta: &std::fs::Metadata, config: Option<&Config>) -> Check {
    let name = "socket.permissions";
    let mode = meta.mode() & 0o777;
    let group = group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string());
    let owner = user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string());
    let allowed: Vec<String> = config
        .map(|c| c.api.allowed_groups.clone())
        .unwrap_or_else(|| vec!["posbridge".into()]);
    let detail = format!("mode {mode:04o}, owner {owner}, group {group}");
    if mode & 0o007 != 0 {
        return Check::warn(
            name,
            format!("{detail}: any local user can connect (peers are still checked)"),
            format!(
                "chmod 0660 {}; posbridge.socket sets SocketMode=0660",
                path.display()
            ),
        );
    }
    if mode != 0o660 {
        return Check::warn(
            name,
            format!("{detail}: expected 0660"),
            format!(
                "chmod 0660 {}; posbridge.socket sets SocketMode=0660",
                path.display()
            ),
        );
    }
    if !allowed.contains(&group) {
        let want = allowed
            .first()
            .cloned()
            .unwrap_or_else(|| "posbridge".into());
        let fix = if crate::api::access::gid_of(&want).is_none() {
            format!("the group {want} does not exist: install the package (systemd-sysusers) or `groupadd --system {want}`")
        } else {
            format!(
                "run posbridge from posbridge.socket (SocketGroup={want}), or `chgrp {want} {}`",
                path.display()
            )
        };
        return Check::warn(
            name,
            format!(
                "{detail}: POS users in {} cannot reach it",
                allowed.join(", ")
            ),
            fix,
        );
    }
    Check::ok(name, detail)
}

/// `state_dir` (a writable directory) and `disk` (free space where the journal lives).
pub fn state_dir(cx: &Context) -> Vec<Check> {
    let dir = &cx.state_dir;
    let shown = dir.display();
    let own_fix = format!(
        "`install -d -o posbridge -g posbridge -m 0750 {shown}` (the unit's StateDirectory= does this)"
    );
    let existing = nearest_existing(dir);
    let dir_check = match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            Check::fail("state_dir", format!("{shown} is not a directory"), own_fix)
        }
        Ok(_) => match access(dir, libc::W_OK | libc::X_OK) {
            Ok(()) => Check::ok("state_dir", format!("{shown} is writable")),
            Err(e) => Check::fail(
                "state_dir",
                format!("{shown} is not writable: {e}"),
                own_fix,
            ),
        },
        Err(_) => match &existing {
            Some(p) if !p.is_dir() => Check::fail(
                "state_dir",
                format!(
                    "{shown} cannot be created: {} is not a directory",
                    p.display()
                ),
                format!("choose another --state-dir, or remove {}", p.display()),
            ),
            Some(p) if access(p, libc::W_OK | libc::X_OK).is_err() => Check::fail(
                "state_dir",
                format!("{shown} does not exist and {} is not writable", p.display()),
                own_fix,
            ),
            _ => Check::warn(
                "state_dir",
                format!("{shown} does not exist yet"),
                "start the daemon once: it creates it",
            ),
        },
    };
    let disk = match existing
        .filter(|p| p.is_dir())
        .map(|p| free_bytes(&p).map(|b| (p, b)))
    {
        Some(Ok((p, free))) => {
            let detail = format!("{} MB free on {}", free / (1024 * 1024), p.display());
            let fix = "free space on that filesystem (old logs: `journalctl --vacuum-size=50M`)";
            if free < DISK_FAIL_BYTES {
                Check::fail(
                    "disk",
                    format!("{detail}: under 10 MB, journal writes will fail"),
                    fix,
                )
            } else if free < DISK_WARN_BYTES {
                Check::warn("disk", format!("{detail}: under 100 MB"), fix)
            } else {
                Check::ok("disk", detail)
            }
        }
        Some(Err(e)) => Check::warn(
            "disk",
            format!("cannot measure free space: {e}"),
            "check `df -h`",
        ),
        None => Check::skip("disk", "no existing directory to measure"),
    };
    vec![dir_check, disk]
}

/// `journal`: the SQLite file opened read-only and `PRAGMA integrity_check`ed.
pub fn journal(cx: &Context) -> Check {
    let path = crate::journal::place::path(&cx.state_dir);
    let shown = path.display();
    if !path.exists() {
        return Check::warn(
            "journal",
            format!("{shown} does not exist yet"),
            "start the daemon once: it creates the journal",
        );
    }
    if let Err(e) = access(&path, libc::R_OK) {
        return Check::warn(
            "journal",
            format!("cannot read {shown}: {e}"),
            "run doctor as root or as the posbridge user",
        );
    }
    // A newer posbridge's journal: the daemon refuses it and salvage must not rewrite it.
    if let Ok(Err(newer)) = crate::journal::schema::refuse_newer(&path) {
        return Check::fail(
            "journal",
            format!(
                "{shown}: written by a newer posbridge (journal schema {})",
                newer.found
            ),
            newer.to_string(),
        );
    }
    let fix = format!(
        "stop posbridge (`systemctl stop posbridge`), then `posbridge journal salvage \
         --state-dir {}` (moves it aside, keeps every readable row), start posbridge, and check \
         recent sales in the backends' portals",
        cx.state_dir.display()
    );
    // The same verdict as `posbridge journal check` and the daemon's start-up.
    let verdict = crate::journal::salvage::check(&cx.state_dir)
        .map_err(|e| e.to_string())
        .and_then(|c| c.verdict);
    match verdict {
        Ok((entries, unknown, in_flight)) => Check::ok(
            "journal",
            format!(
                "{shown}: intact, {entries} entries, {} awaiting reconciliation",
                unknown + in_flight
            ),
        ),
        Err(e) => Check::fail("journal", format!("{shown} is damaged: {e}"), fix),
    }
}

/// `journal.writes`: what the running daemon's journal writer last saw (disk full, I/O
/// error), from its `status` answer. Skipped when the daemon did not answer.
pub fn journal_writes(cx: &Context) -> Check {
    let name = "journal.writes";
    let Some(j) = cx.status.as_ref().map(|s| &s["journal"]) else {
        return Check::skip(name, "the daemon did not answer");
    };
    let last = &j["last_error"];
    let last_text = || {
        format!(
            "{} at {}",
            last["message"].as_str().unwrap_or("?"),
            last["at"].as_str().unwrap_or("?")
        )
    };
    if let Some(why) = j["stopped"].as_str() {
        return Check::fail(
            name,
            format!("the journal stopped writing after an I/O error: {why}"),
            "check the disk (`dmesg`, `smartctl`); restart posbridge (`systemctl restart \
             posbridge`), it recovers as after a crash; replace the storage if it happens again",
        );
    }
    match j["writable"].as_bool() {
        Some(false) => Check::fail(
            name,
            format!("journal writes are failing: {}", last_text()),
            "free space on the state directory's file system (`df -h`); sales work again \
             without a restart",
        ),
        Some(true) if last.is_object() => Check::ok(
            name,
            format!("writing again; last failure: {}", last_text()),
        ),
        Some(true) => Check::ok(name, "no write has failed since the daemon started"),
        None => Check::skip(name, "the daemon does not report its journal writes"),
    }
}

/// `journal.manual_check`: operations whose outcome no status check could settle within
/// `daemon.manual_check_after_ms` (a backend that contradicted its own evidence, or one that
/// never answered), from the daemon's `status` answer. A person settles each with `resolve`.
pub fn manual_checks(cx: &Context) -> Check {
    let name = "journal.manual_check";
    let Some(status) = cx.status.as_ref() else {
        return Check::skip(name, "the daemon did not answer");
    };
    let Some(ids) = status["manual_check"].as_array() else {
        return Check::skip(name, "the daemon does not report manual checks");
    };
    if ids.is_empty() {
        return Check::ok(name, "no operation waits for a manual check");
    }
    let list: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
    Check::warn(
        name,
        format!(
            "{} operation(s) need a manual check, their outcome unknown for too long: {}",
            list.len(),
            list.join(", ")
        ),
        "look each one up in its backend's portal (`posbridge get-result ID` names the \
         backend id), then settle it with `posbridge resolve ID --charged` or `--not-charged`",
    )
}

fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .map(Path::to_path_buf)
}

/// access(2): what this process may do with `path` (EROFS included, even for root).
fn access(path: &Path, mode: libc::c_int) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), mode) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: statvfs writes only into `st`.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: getgrgid_r writes only into the buffers we pass, sized by `buf.len()`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result);
        (rc == 0 && !result.is_null()).then(|| {
            std::ffi::CStr::from_ptr(grp.gr_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid_r writes only into the buffers we pass, sized by `buf.len()`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        (rc == 0 && !result.is_null()).then(|| {
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}
