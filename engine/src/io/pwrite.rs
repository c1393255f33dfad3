//! The `pwrite` backend: every operation is a system call made at once (`pwritev`, continuing after
//! short writes; `fdatasync`), so each completes before `write` / `sync` return.

use std::os::fd::RawFd;
use std::time::Duration;

use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

#[derive(Debug, Default)]
pub(crate) struct Pwrite {
    done: Vec<Completion>,
}

/// Writes all of `iov` at `offset`, retrying on EINTR and continuing after short writes.
///
/// # Safety
/// Every iovec must describe memory valid for reads for the duration of the call.
pub(crate) unsafe fn pwritev_all(fd: RawFd, mut offset: u64, iov: &[libc::iovec]) -> std::io::Result<()> {
    let mut rest: Vec<libc::iovec> = iov.iter().copied().filter(|v| v.iov_len > 0).collect();
    let mut start = 0;
    while start < rest.len() {
        let count = (rest.len() - start).min(libc::UIO_MAXIOV as usize);
        // SAFETY: `rest[start..start + count]` are valid iovecs over memory the caller keeps alive.
        let n = unsafe { libc::pwritev(fd, rest[start..].as_ptr(), count as libc::c_int, offset as libc::off_t) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "pwritev wrote nothing"));
        }
        let mut n = n as usize;
        offset += n as u64;
        while n > 0 {
            let v = &mut rest[start];
            if n >= v.iov_len {
                n -= v.iov_len;
                start += 1;
            } else {
                // SAFETY: advancing within the buffer the iovec describes (n < iov_len).
                v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n) }.cast();
                v.iov_len -= n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// fdatasync, retrying on EINTR.
pub(crate) fn fdatasync(fd: RawFd) -> std::io::Result<()> {
    loop {
        // SAFETY: plain syscall on a caller-owned fd, no memory arguments.
        if unsafe { libc::fdatasync(fd) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Pwrite {
    /// [`Backend::sync`] of a bare descriptor (open until the completion is reaped).
    pub(crate) fn sync_fd(&mut self, token: u64, fd: RawFd) {
        self.done.push(Completion { token, result: fdatasync(fd) });
    }
}

impl Backend for Pwrite {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        // SAFETY: the caller keeps the buffers valid until this operation is reaped, which is later.
        let result = unsafe { pwritev_all(file.raw_fd(), offset, iov) };
        self.done.push(Completion { token, result });
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        self.sync_fd(token, file.raw_fd());
    }

    fn reap(&mut self, _wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        // Everything completed synchronously: there is never anything to wait for.
        out.append(&mut self.done);
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Pwrite
    }
}
