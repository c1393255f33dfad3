//! The `io_uring` backend: writes (`IORING_OP_WRITEV`) and fdatasyncs (`IORING_OP_FSYNC` with
//! DATASYNC) are queued as SQEs, submitted together by [`Backend::reap`], and completed in any order.
//! A read of the [`Waker`]'s eventfd stays armed while the thread waits in the ring, so a new append
//! ends the wait (see the module docs of [`crate::io`]).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::pwrite::pwritev_all;
use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

/// Submission queue entries. Completion queue is twice this; more than this many operations in
/// flight just means some are submitted before others are queued.
const ENTRIES: u32 = 512;
/// user_data of the eventfd read.
const WAKE_TOKEN: u64 = u64::MAX;

/// A write in flight, remembered to finish it after a short completion.
struct WriteInFlight {
    fd: RawFd,
    offset: u64,
    iov: *const libc::iovec,
    iov_len: usize,
}

pub(crate) struct Uring {
    ring: IoUring,
    writes: HashMap<u64, WriteInFlight>,
    syncs: usize,
    /// Destination of the armed eventfd read; boxed so its address is stable.
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// Queued SQEs not yet submitted.
    queued: usize,
    /// Completions taken off the ring while pushing (to make room when the kernel refused a
    /// submission with EBUSY), handed out by the next [`Backend::reap`].
    early: Vec<(u64, i32)>,
}

// SAFETY: the raw iovec pointers refer to memory the I/O thread owns (Backend::write's contract);
// the backend moves to that thread once and is only used there.
unsafe impl Send for Uring {}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring").field("writes", &self.writes.len()).field("syncs", &self.syncs).finish()
    }
}

impl Uring {
    pub(crate) fn new() -> std::io::Result<Self> {
        let ring = IoUring::builder().setup_cqsize(ENTRIES * 2).build(ENTRIES)?;
        Ok(Uring {
            ring,
            writes: HashMap::new(),
            syncs: 0,
            wake_buf: Box::new(0),
            wake_armed: false,
            queued: 0,
            early: Vec::new(),
        })
    }

    /// Pushes an SQE, submitting what is queued first when the submission queue is full. When the
    /// kernel refuses that submission because the completion queue is full (EBUSY: completions
    /// overflowed), completions are taken off the ring first (kept for the next reap), or the
    /// submission queue would never drain and this loop would spin for ever.
    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every entry's pointers (iovecs, buffers, the wake buffer) stay valid until its
            // completion is reaped: Backend::write's contract, and `wake_buf` lives in `self`.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                self.queued += 1;
                return;
            }
            if self.submit(0) {
                self.take_completions();
            }
        }
    }

    /// Moves every completion on the ring to `early`.
    fn take_completions(&mut self) {
        let taken: Vec<(u64, i32)> = self.ring.completion().map(|c| (c.user_data(), c.result())).collect();
        self.early.extend(taken);
    }

    /// Submits what is queued; true when the kernel answered EBUSY (the completion queue is full:
    /// the caller must take completions off the ring before submitting again).
    fn submit(&mut self, want: usize) -> bool {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return true,
                Err(e) => {
                    log::error!("io_uring_enter failed: {e}");
                    break;
                }
            }
        }
        self.queued = 0;
        false
    }

    fn finish_write(&mut self, token: u64, res: i32) -> std::io::Result<()> {
        let Some(w) = self.writes.remove(&token) else {
            return Err(std::io::Error::other(format!("io_uring completion for unknown write {token}")));
        };
        if res < 0 {
            return Err(std::io::Error::from_raw_os_error(-res));
        }
        // SAFETY: the iovec array is alive until this completion is returned (Backend::write).
        let iov = unsafe { std::slice::from_raw_parts(w.iov, w.iov_len) };
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        let mut written = res as usize;
        if written >= total {
            return Ok(());
        }
        // A short write (rare: a signal, or the disk filling up): finish the rest synchronously, which
        // also reports the error that stopped it.
        let mut rest = Vec::with_capacity(iov.len());
        for v in iov {
            if written >= v.iov_len {
                written -= v.iov_len;
            } else {
                // SAFETY: advancing within the buffer the iovec describes (written < iov_len).
                let base = unsafe { v.iov_base.cast::<u8>().add(written) };
                rest.push(libc::iovec { iov_base: base.cast(), iov_len: v.iov_len - written });
                written = 0;
            }
        }
        // SAFETY: `rest` points into the caller's buffers, still valid (see above).
        unsafe { pwritev_all(w.fd, w.offset + res as u64, &rest) }
    }
}

impl Backend for Uring {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        let fd = file.raw_fd();
        let entry =
            opcode::Writev::new(types::Fd(fd), iov.as_ptr(), iov.len() as u32).offset(offset).build().user_data(token);
        self.writes.insert(token, WriteInFlight { fd, offset, iov: iov.as_ptr(), iov_len: iov.len() });
        self.push(&entry);
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        let entry =
            opcode::Fsync::new(types::Fd(file.raw_fd())).flags(types::FsyncFlags::DATASYNC).build().user_data(token);
        self.syncs += 1;
        self.push(&entry);
    }

    fn reap(&mut self, wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        if let Some((waker, timeout)) = wait {
            if !self.wake_armed {
                let buf: *mut u64 = &mut *self.wake_buf;
                let entry = opcode::Read::new(types::Fd(waker.raw_fd()), buf.cast(), 8).build().user_data(WAKE_TOKEN);
                self.push(&entry);
                self.wake_armed = true;
            }
            let ts = types::Timespec::from(timeout);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                // ETIME: the timeout passed; EINTR: a signal. Either way, reap what is there.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
                Err(e) => log::error!("io_uring wait failed: {e}"),
            }
            self.queued = 0;
        } else if self.queued > 0 && self.submit(0) {
            // Completion queue full: taking the completions below makes room; submit again then.
            self.take_completions();
            self.submit(0);
        }
        let mut finished = std::mem::take(&mut self.early);
        finished.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        for (token, res) in finished {
            if token == WAKE_TOKEN {
                self.wake_armed = false;
                continue;
            }
            let result = if self.writes.contains_key(&token) {
                self.finish_write(token, res)
            } else {
                self.syncs = self.syncs.saturating_sub(1);
                if res < 0 { Err(std::io::Error::from_raw_os_error(-res)) } else { Ok(()) }
            };
            out.push(Completion { token, result });
        }
    }

    fn in_flight(&self) -> usize {
        self.writes.len() + self.syncs
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::IoUring
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        if self.wake_armed {
            // The kernel may still complete the armed read into `wake_buf` while the ring shuts down:
            // leak the 8 bytes rather than free memory the kernel may write.
            let buf = std::mem::replace(&mut self.wake_buf, Box::new(0));
            Box::leak(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many more operations than the completion queue holds, queued without a reap in between.
    /// Kernels that answer EBUSY once completions overflow refuse every submission until some are
    /// taken off the ring; before the fix `push` retried without taking any, for ever. (Newer
    /// kernels, 6.18 where this was written, buffer the overflow instead: there this test passed
    /// before the fix too; it guards the older kernels.)
    #[test]
    fn more_operations_than_the_completion_queue_holds_all_complete() {
        let Ok(mut ring) = Uring::new() else {
            panic!("io_uring is unavailable here; this test needs it");
        };
        let total = (ENTRIES as u64) * 8;
        for token in 0..total {
            // NOPs complete inline at submission: the completion queue fills, then overflows.
            ring.syncs += 1;
            ring.push(&opcode::Nop::new().build().user_data(token));
        }
        // fdatasyncs complete on io_uring's workers: each round waits for at least one.
        let waker = Waker::new().unwrap();
        let mut out = Vec::new();
        let mut rounds = 0;
        while (out.len() as u64) < total {
            rounds += 1;
            assert!(rounds < 100_000, "only {} of {total} completions", out.len());
            ring.reap(Some((&waker, Duration::from_millis(100))), &mut out);
        }
        assert_eq!(out.len() as u64, total);
        assert!(out.iter().all(|c| c.result.is_ok()));
        let mut tokens: Vec<u64> = out.iter().map(|c| c.token).collect();
        tokens.sort_unstable();
        assert!(tokens.iter().copied().eq(0..total), "every token exactly once");
    }

    /// The kernel wrote only the first bytes of a vectored write (a signal, the disk filling up):
    /// the backend writes the rest before it reports the write complete, or reports the error that
    /// stopped it — never a short write as a whole one (the log's I/O thread relies on this).
    #[test]
    fn a_short_completion_is_finished_or_reported_never_passed_off_as_whole() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        let Ok(mut ring) = Uring::new() else {
            panic!("io_uring is unavailable here; this test needs it");
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let (a, b) = (b"0123456789".to_vec(), b"abcdefghij".to_vec());
        let iov = [
            libc::iovec { iov_base: a.as_ptr() as *mut libc::c_void, iov_len: a.len() },
            libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() },
        ];
        // What the kernel wrote of a completion reporting 13 bytes: all of `a`, three of `b`.
        file.write_all_at(b"0123456789abc", 4).unwrap();
        ring.writes.insert(7, WriteInFlight { fd: file.as_raw_fd(), offset: 4, iov: iov.as_ptr(), iov_len: iov.len() });
        ring.finish_write(7, 13).expect("the rest is written");
        let mut back = vec![0u8; 24];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[4..], b"0123456789abcdefghij");
        // The rest cannot be written (a read-only descriptor stands in for a full disk): the error.
        let read_only = std::fs::File::open(&path).unwrap();
        ring.writes.insert(8, WriteInFlight { fd: read_only.as_raw_fd(), offset: 4, iov: iov.as_ptr(), iov_len: 2 });
        let e = ring.finish_write(8, 13).expect_err("a short write whose rest failed is an error");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
    }
}
