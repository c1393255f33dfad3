//! A test backend: `pwrite` with failpoints. The n-th write or fdatasync can fail with an errno
//! instead of running, and fdatasyncs can be held (queued, not run) until released, so a test sees
//! what the log exposes while a flush is pending.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::pwrite::Pwrite;
use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

/// What the test controls; shared with the backend.
#[derive(Debug, Default)]
pub(crate) struct Failpoints {
    /// 1-based number of the write that fails (0: none).
    pub fail_write: AtomicU64,
    /// 1-based number of the fdatasync that fails (0: none).
    pub fail_sync: AtomicU64,
    /// The errno the failing operation reports (EIO when 0).
    pub errno: AtomicU64,
    /// While set, fdatasyncs wait in a queue.
    pub hold_syncs: AtomicBool,
    /// Operations seen so far.
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
}

impl Failpoints {
    fn error(&self) -> std::io::Error {
        let errno = self.errno.load(Ordering::Acquire);
        std::io::Error::from_raw_os_error(if errno == 0 { libc::EIO } else { errno as i32 })
    }
}

#[derive(Debug)]
pub(crate) struct Faulty {
    inner: Pwrite,
    points: Arc<Failpoints>,
    held: Vec<(u64, RawFd)>,
    done: Vec<Completion>,
}

impl Faulty {
    pub(crate) fn new(points: Arc<Failpoints>) -> Self {
        Faulty { inner: Pwrite::default(), points, held: Vec::new(), done: Vec::new() }
    }
}

impl Backend for Faulty {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        let n = self.points.writes.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.points.fail_write.load(Ordering::Acquire) {
            self.done.push(Completion { token, result: Err(self.points.error()) });
            return;
        }
        // SAFETY: forwarded under the caller's guarantee (buffers valid until reaped).
        unsafe { self.inner.write(token, file, offset, iov) }
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        let n = self.points.syncs.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.points.fail_sync.load(Ordering::Acquire) {
            self.done.push(Completion { token, result: Err(self.points.error()) });
            return;
        }
        // Held by descriptor: the I/O thread keeps `file` open until this completion is reaped.
        self.held.push((token, file.raw_fd()));
    }

    fn reap(&mut self, wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        if !self.points.hold_syncs.load(Ordering::Acquire) {
            for (token, fd) in self.held.drain(..) {
                self.inner.sync_fd(token, fd);
            }
        }
        let before = out.len();
        self.inner.reap(None, out);
        out.append(&mut self.done);
        if out.len() == before
            && let Some((_, timeout)) = wait
        {
            // Only held syncs are in flight: stand in for a wait in the ring.
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.held.len() + self.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Pwrite
    }
}
