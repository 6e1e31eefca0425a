//! Tollgate's own stdin and stdout as async streams. Pipes and sockets (how MCP clients start a
//! stdio server) are driven by the reactor directly through non-blocking file descriptors, which
//! avoids tokio's blocking-thread hop on every read; anything else (a terminal, a file) falls
//! back to tokio's standard streams.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A borrowed descriptor (0 or 1) that is never closed.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A non-blocking pipe or socket descriptor registered with the reactor.
pub struct PipeFd {
    fd: AsyncFd<Fd>,
}

impl PipeFd {
    /// Wrap `fd` if it is a pipe or socket, switching it to non-blocking mode.
    fn new(fd: RawFd) -> Option<Self> {
        // SAFETY: fstat and fcntl on a descriptor this process was started with; no memory is
        // shared beyond the stat buffer we own.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return None;
            }
            let kind = st.st_mode & libc::S_IFMT;
            if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
                return None;
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return None;
            }
        }
        // SAFETY: descriptors 0 and 1 stay open for the life of the process; nothing closes or
        // replaces them while they are registered.
        unsafe { AsyncFd::register(Fd(fd)) }
            .ok()
            .map(|fd| Self { fd })
    }
}

impl AsyncRead for PipeFd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let unfilled_len = unfilled.len();
            // SAFETY: reading into the initialised, unfilled part of the caller's buffer.
            let n = guard.try_io(|fd| {
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match n {
                Ok(Ok(n)) => {
                    // A short read drained the pipe: the next read waits for the reactor instead
                    // of asking the kernel once more only to hear EAGAIN (tokio's own streams do
                    // the same; data arriving meanwhile raises a new readiness event).
                    if n > 0 && n < unfilled_len {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PipeFd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            // SAFETY: writing from the caller's slice.
            let n = guard.try_io(|fd| {
                let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match n {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Tollgate's stdin.
pub fn stdin() -> Box<dyn AsyncRead + Send + Unpin> {
    match PipeFd::new(0) {
        Some(p) => Box::new(p),
        None => Box::new(tokio::io::stdin()),
    }
}

/// Tollgate's stdout.
pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
    match PipeFd::new(1) {
        Some(p) => Box::new(p),
        None => Box::new(tokio::io::stdout()),
    }
}
