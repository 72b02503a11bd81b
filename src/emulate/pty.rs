//! The emulator's end of its pty (the master), registered with tokio afresh for each host.
//!
//! A pty master reports a hang-up (EPOLLHUP) while no host has the other end open, which is
//! how the emulator starts and how every host leaves. tokio keeps a "read closed" readiness
//! for good once it has seen one, so a registration that outlived a hang-up is always
//! "readable": when the next host opens the pty and says nothing, every read is EAGAIN and the
//! read loop spins (seen in hil/vm: half a core for as long as the host stayed). So each host
//! gets a new registration ([`PtyMaster::link`]), made of a duplicate of the master's fd, and
//! a read that finds the readiness closed but nothing to read ends the link like the hang-up
//! it was: the link loop then starts over with a fresh registration.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The master's own fd, never registered with tokio itself.
pub struct PtyMaster {
    fd: OwnedFd,
}

impl PtyMaster {
    /// Takes a duplicate of `fd` (the caller keeps or drops its own).
    pub fn dup_of(fd: RawFd) -> io::Result<PtyMaster> {
        Ok(PtyMaster { fd: dup(fd)? })
    }

    /// A fresh registration for the next host.
    pub fn link(&self) -> io::Result<PtyLink> {
        let fd = dup(self.fd.as_raw_fd())?;
        set_nonblocking(fd.as_raw_fd())?;
        // SAFETY: the registration owns `fd`, a duplicate nobody else holds, for its whole
        // life, and closes it after deregistering.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PtyLink { fd })
    }
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else holds.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One host's link over the pty master.
pub struct PtyLink {
    fd: AsyncFd<OwnedFd>,
}

impl AsyncRead for PtyLink {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let closed = guard.ready().is_read_closed();
            let unfilled = buf.initialize_unfilled();
            let got = guard.try_io(|fd| {
                // SAFETY: reads into the caller's initialised buffer, at most its length.
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match got {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // The host hung up and another opened the pty since: this registration would
                // stay "readable" for ever, so end the link and let the loop register anew.
                Err(_) if closed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the host closed the pty (and it was opened again)",
                    )))
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyLink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let put = guard.try_io(|fd| {
                // SAFETY: writes at most `buf.len()` bytes from `buf`.
                let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match put {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
