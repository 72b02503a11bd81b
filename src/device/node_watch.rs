//! Waiting for a device node, or a udev name for one (`/dev/posbridge/…`, `/dev/serial/by-id/…`),
//! to appear, on inotify: the directory nearest to it that exists is watched for entries made or
//! moved in (udev makes its names with a rename), so a replugged reader is seen the moment udev
//! has named it, not at the next look of a timer. It only watches names; it must not open or
//! touch the node itself.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::io::unix::AsyncFd;

/// Resolves once `path` exists (following symlinks). An error when inotify cannot be used
/// (the caller then looks with a timer).
pub async fn appeared(path: &Path) -> io::Result<()> {
    loop {
        if path.exists() {
            return Ok(());
        }
        // The nearest directory on the way that exists: a udev name's directory
        // (`/dev/posbridge`) goes with its last name and comes back with the next.
        let Some(dir) = path.ancestors().skip(1).find(|d| d.is_dir()) else {
            return Err(io::Error::other(format!(
                "no directory of {} exists",
                path.display()
            )));
        };
        let watch = Watch::on(dir)?;
        // Made between the look above and the watch: it would never be reported.
        if path.exists() {
            return Ok(());
        }
        watch.changed().await?;
    }
}

/// One inotify instance watching one directory for entries made or moved in, and for its own
/// removal.
struct Watch {
    fd: AsyncFd<OwnedFd>,
}

impl Watch {
    fn on(dir: &Path) -> io::Result<Watch> {
        let name = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("a NUL in the path"))?;
        // SAFETY: plain system calls; the fd is owned from here on and closed on drop.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mask = libc::IN_CREATE
            | libc::IN_MOVED_TO
            | libc::IN_ATTRIB
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_ONLYDIR;
        // SAFETY: `name` is a NUL-terminated path that outlives the call.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), name.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: an OwnedFd's descriptor stays open, and the same, until it is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(Watch { fd })
    }

    /// Resolves at the next change the watch reports (whatever it was: the caller looks again).
    async fn changed(&self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            let mut ready = self.fd.readable().await?;
            // SAFETY: reading into a buffer we own, at most its length.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n > 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_name_made_in_a_missing_directory_is_seen_without_a_timer() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ttyUSB0");
        std::fs::write(&target, "").unwrap();
        let name = dir.path().join("posbridge").join("card-reader-X");
        let waiting = tokio::spawn({
            let name = name.clone();
            async move { appeared(&name).await }
        });
        // The directory, then (as udev does) a name made aside and renamed into place, by a
        // thread of its own while the runtime's clock stands still.
        let made = std::thread::spawn({
            let (name, target) = (name.clone(), target.clone());
            move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::create_dir(name.parent().unwrap()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                let aside = name.with_file_name(".card-reader-X.tmp");
                std::os::unix::fs::symlink(&target, &aside).unwrap();
                std::fs::rename(&aside, &name).unwrap();
            }
        });
        let started = tokio::time::Instant::now();
        waiting.await.unwrap().unwrap();
        made.join().unwrap();
        assert!(name.exists());
        // The paused clock only moves when a timer is waited for: a watcher that looked with
        // a timer would have moved it.
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_name_there_already_resolves_at_once() {
        let dir = tempfile::tempdir().unwrap();
        appeared(dir.path()).await.unwrap();
    }
}
