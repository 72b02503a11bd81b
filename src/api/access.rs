//! Who may talk to the daemon: peer credentials (SO_PEERCRED, SO_PEERGROUPS) checked against
//! `api.allowed_groups` and `api.admin_groups`.
//!
//! Root and the daemon's own user are always allowed. A peer in none of the allowed groups gets
//! one `unauthorized` answer and is disconnected. When `admin_groups` is set, money operations
//! (pay, refund, cancel, close_shift) need one of those groups; reading results does not.
//! Only root and the daemon's own user may record how a Bluetooth bond was made (`Peer::bonds`).
//! The socket file's mode (0660) is the first gate; this is the second.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use tokio::net::UnixStream;

/// Linux's SO_PEERGROUPS (since 4.13), not exported by the libc crate. The value differs only
/// on alpha, mips, parisc and sparc, where we fall back to the primary group.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
))]
const SO_PEERGROUPS: Option<libc::c_int> = Some(59);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
)))]
const SO_PEERGROUPS: Option<libc::c_int> = None;

pub struct Access {
    allowed: Vec<libc::gid_t>,
    admin: Option<Vec<libc::gid_t>>,
    own_uid: libc::uid_t,
}

/// What one connected peer may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    pub connect: bool,
    pub operate: bool,
    /// May say how a Bluetooth bond was made (`bond`) or allow one that is not authenticated
    /// (`allow_unauthenticated`): root and the daemon's own user, the users that make bonds
    /// (`sudo posbridge pair ble:..`, whose agent runs in the CLI). Any other user could claim
    /// a bond made by Just Works was made by numeric comparison, and so let the daemon send a
    /// reader's credentials over a link a man in the middle may sit in.
    pub bonds: bool,
}

impl Peer {
    /// A peer with every right (tests, and the daemon talking to itself).
    pub fn trusted() -> Peer {
        Peer {
            uid: 0,
            pid: None,
            connect: true,
            operate: true,
            bonds: true,
        }
    }
}

impl Access {
    /// Resolves group names once, at start-up. Names that do not exist are logged and ignored.
    pub fn new(allowed: &[String], admin: &[String]) -> Access {
        let resolve = |names: &[String]| -> Vec<libc::gid_t> {
            names
                .iter()
                .filter_map(|n| {
                    let gid = gid_of(n);
                    if gid.is_none() {
                        log::warn!("api: group {n:?} does not exist on this system; ignored");
                    }
                    gid
                })
                .collect()
        };
        Access {
            allowed: resolve(allowed),
            admin: (!admin.is_empty()).then(|| resolve(admin)),
            // SAFETY: geteuid cannot fail.
            own_uid: unsafe { libc::geteuid() },
        }
    }

    pub fn check(&self, stream: &UnixStream) -> Peer {
        let Ok(cred) = stream.peer_cred() else {
            return Peer {
                uid: u32::MAX,
                pid: None,
                connect: false,
                operate: false,
                bonds: false,
            };
        };
        let uid = cred.uid();
        let pid = cred.pid();
        if uid == 0 || uid == self.own_uid {
            return Peer {
                uid,
                pid,
                connect: true,
                operate: true,
                bonds: true,
            };
        }
        let mut groups = peer_groups(stream);
        groups.push(cred.gid());
        let member = |set: &[libc::gid_t]| groups.iter().any(|g| set.contains(g));
        let connect = member(&self.allowed);
        let operate = connect && self.admin.as_deref().is_none_or(member);
        Peer {
            uid,
            pid,
            connect,
            operate,
            bonds: false,
        }
    }
}

impl Peer {
    /// Who this peer is, for records an operator reads: `uid 1000 (alice)`, pid if known.
    pub fn describe(&self) -> String {
        let name = user_name(self.uid)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        match self.pid {
            Some(pid) => format!("uid {}{name}, pid {pid}", self.uid),
            None => format!("uid {}{name}", self.uid),
        }
    }
}

/// The name of user `uid`, if it has one.
fn user_name(uid: libc::uid_t) -> Option<String> {
    // SAFETY: getpwuid_r writes only into the buffers we pass, sized by `buf.len()`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The id of group `name`, if it exists.
pub fn gid_of(name: &str) -> Option<libc::gid_t> {
    let cname = CString::new(name).ok()?;
    // SAFETY: getgrnam_r writes only into the buffers we pass, sized by `buf.len()`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
    }
}

/// The peer's supplementary groups at connect time (empty where the kernel cannot say).
fn peer_groups(stream: &UnixStream) -> Vec<libc::gid_t> {
    let Some(opt) = SO_PEERGROUPS else {
        return Vec::new();
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `groups` and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_described_by_uid_and_name() {
        assert_eq!(Peer::trusted().describe(), "uid 0 (root)");
    }

    #[test]
    fn group_names_resolve() {
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(gid_of("no-such-group-posbridge-test"), None);
    }

    #[tokio::test]
    async fn our_own_user_is_always_allowed() {
        let (a, _b) = UnixStream::pair().unwrap();
        let access = Access::new(&["no-such-group-posbridge-test".into()], &["root".into()]);
        let peer = access.check(&a);
        assert!(peer.connect && peer.operate && peer.bonds, "{peer:?}");
    }
}
