//! A fake [`Backend`] for the I/O thread's unit tests: every write and fdatasync stays in flight
//! until the test completes it — in any order, whole, short (a prefix written, then the error that
//! stopped it, as a disk filling up does) or failed — or, in `auto` mode, completes whole at the
//! next reap.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::io::storage::OpenFile;
use crate::io::{Backend, Completion, IoBackendKind, Waker};

/// How the test completes a write.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    /// Every byte written.
    Whole,
    /// The first `bytes` written, then the rest refused with `errno` (ENOSPC: the disk filled up).
    Short { bytes: usize, errno: i32 },
    /// Nothing written: `errno`.
    Fail(i32),
}

struct Write {
    token: u64,
    fd: RawFd,
    offset: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct Ops {
    /// In submission order.
    writes: Vec<Write>,
    syncs: Vec<(u64, RawFd)>,
    done: Vec<Completion>,
    /// Complete everything whole at the next reap.
    auto: bool,
}

/// The test's handle on the fake's operations.
#[derive(Clone, Default)]
pub(super) struct FakeDisk(Arc<Mutex<Ops>>);

/// The backend the I/O thread owns.
pub(super) struct Fake(FakeDisk);

impl FakeDisk {
    fn ops(&self) -> MutexGuard<'_, Ops> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn backend(&self) -> Box<dyn Backend> {
        Box::new(Fake(self.clone()))
    }

    /// Writes submitted and not completed yet.
    pub(super) fn writes(&self) -> usize {
        self.ops().writes.len()
    }

    /// fdatasyncs submitted and not completed yet.
    pub(super) fn syncs(&self) -> usize {
        self.ops().syncs.len()
    }

    /// From now on every operation completes whole at the next reap.
    pub(super) fn set_auto(&self) {
        self.ops().auto = true;
    }

    /// Completes the `i`-th write still in flight (in submission order) as `how` says; its
    /// completion is reaped by the I/O thread's next reap.
    pub(super) fn complete_write(&self, i: usize, how: Outcome) {
        let mut ops = self.ops();
        let w = ops.writes.remove(i);
        let result = match how {
            Outcome::Whole => pwrite(&w, w.data.len()),
            Outcome::Short { bytes, errno } => {
                assert!(bytes < w.data.len(), "a short write writes less than asked");
                pwrite(&w, bytes).and(Err(std::io::Error::from_raw_os_error(errno)))
            }
            Outcome::Fail(errno) => Err(std::io::Error::from_raw_os_error(errno)),
        };
        ops.done.push(Completion { token: w.token, result });
    }

    /// Completes every write still in flight whole.
    pub(super) fn complete_writes(&self) {
        while self.writes() > 0 {
            self.complete_write(0, Outcome::Whole);
        }
    }

    /// Completes every fdatasync in flight with `errno` (`None`: success).
    pub(super) fn complete_syncs(&self, errno: Option<i32>) {
        let mut ops = self.ops();
        let syncs = std::mem::take(&mut ops.syncs);
        for (token, _) in syncs {
            let result = errno.map_or(Ok(()), |e| Err(std::io::Error::from_raw_os_error(e)));
            ops.done.push(Completion { token, result });
        }
    }
}

/// Writes the first `len` bytes of `w` where it was asked to go.
fn pwrite(w: &Write, len: usize) -> std::io::Result<()> {
    // SAFETY: `w.data` is our own buffer of at least `len` bytes; `w.fd` stays open until this
    // write's completion is reaped (the Backend::write contract), which is after this call.
    let n = unsafe { libc::pwrite(w.fd, w.data.as_ptr().cast(), len, w.offset as libc::off_t) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    assert_eq!(n as usize, len, "the fake's own pwrite ran short");
    Ok(())
}

impl Backend for Fake {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        // The I/O thread keeps `file` (so its descriptor) open until this write is reaped.
        let fd = file.raw_fd();
        let mut data = Vec::new();
        for v in iov {
            // SAFETY: the caller keeps every buffer `iov` describes valid and unmodified until this
            // write is reaped (Backend::write's contract); it is copied now.
            data.extend_from_slice(unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) });
        }
        self.0.ops().writes.push(Write { token, fd, offset, data });
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        self.0.ops().syncs.push((token, file.raw_fd()));
    }

    fn reap(&mut self, _wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        if self.0.ops().auto {
            self.0.complete_writes();
            self.0.complete_syncs(None);
        }
        out.append(&mut self.0.ops().done);
    }

    fn in_flight(&self) -> usize {
        let ops = self.0.ops();
        ops.writes.len() + ops.syncs.len() + ops.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Pwrite
    }
}
