//! I/O backends: how the log's I/O thread gets bytes onto the disk.
//!
//! One completion-based interface ([`Backend`]), four backends chosen by the topic's `io` setting:
//! - `io_uring` (default): writes and fsyncs are queued as SQEs and submitted together; the I/O
//!   thread keeps many of them in flight and reaps completions while it places new batches.
//! - `pwrite`: each operation runs as a `pwritev` / `fdatasync` system call at once and completes
//!   immediately. Portable; used automatically, with a warning, when io_uring cannot be set up (old
//!   kernel, seccomp, RLIMIT_MEMLOCK).
//! - `discard`: accepts and throws away, so the threading core can be measured alone.
//! - `sim`: `pwrite` plus a model of what each broker's disk made durable ([`powercut`]), so that
//!   power loss, fsync failure, a full disk and a slow disk can be played over the log's own files.
//!
//! Backends write and fdatasync the log's [`OpenFile`]s (`storage.rs`): the first four through the
//! descriptor behind each (looked up once when the file was opened), and a fifth, not selectable by
//! `io` ([`through`]), through the [`storage::Storage`] calls, so that a log can run entirely over
//! the in-memory simulated disk ([`sim::SimDisk`]; the simulation test does).
//!
//! Waking: producers queue appends on a channel. While the I/O thread has operations in flight it
//! sleeps in the ring (`io_uring_enter` waiting for one completion), not on the channel; a read of
//! the [`Waker`]'s eventfd is kept armed in the ring so that an append can end that sleep. The
//! thread raises `sleeping` before it blocks, and an append writes the eventfd only when it sees the
//! flag, so under load (the thread busy) appends cost no system call at all.

mod direct;
mod discard;
#[cfg(test)]
pub(crate) mod faulty;
pub(crate) mod powercut;
mod pwrite;
pub(crate) mod sim;
pub(crate) mod storage;
pub(crate) mod through;
mod uring;

use std::fmt;
use std::os::fd::RawFd;

use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::time::Duration;
use storage::OpenFile;

pub(crate) use direct::{ALIGN, AlignedBuf};

use crate::error::{Error, Result};

/// Which backend writes the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackendKind {
    /// Linux io_uring: many writes in flight, submitted and reaped in batches.
    #[default]
    IoUring,
    /// `pwritev` / `fdatasync` system calls, one at a time.
    Pwrite,
    /// Nothing is written; offsets are still assigned and callbacks still fire.
    Discard,
    /// `pwrite` over a model of durability (power loss drops what no fdatasync made durable).
    Sim,
}

impl FromStr for IoBackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "io_uring" => Ok(IoBackendKind::IoUring),
            "pwrite" => Ok(IoBackendKind::Pwrite),
            "discard" => Ok(IoBackendKind::Discard),
            "sim" => Ok(IoBackendKind::Sim),
            other => Err(Error::config("io", format!("`{other}` is not one of io_uring, pwrite, discard, sim"))),
        }
    }
}

impl fmt::Display for IoBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoBackendKind::IoUring => "io_uring",
            IoBackendKind::Pwrite => "pwrite",
            IoBackendKind::Discard => "discard",
            IoBackendKind::Sim => "sim",
        })
    }
}

/// Whether this process can create an io_uring (probed once).
pub fn io_uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| io_uring::IoUring::new(2).is_ok())
}

/// A finished operation: the token it was submitted with and its outcome. A write's outcome covers
/// every byte (backends finish short writes themselves).
#[derive(Debug)]
pub(crate) struct Completion {
    pub token: u64,
    pub result: std::io::Result<()>,
}

/// What the log's I/O thread asks of a backend. Operations complete in any order; the caller never
/// submits overlapping writes at the same time.
pub(crate) trait Backend: Send {
    /// Starts writing the buffers `iov` describes, back to back, at `offset` of `file`.
    ///
    /// # Safety
    /// `iov` (and every buffer it points to) must stay valid and unmodified, and `file` open (an
    /// `Arc` of it held), until the completion carrying `token` has been returned by
    /// [`Backend::reap`].
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]);

    /// Starts an fdatasync of `file` (which must stay open until its completion is reaped).
    fn sync(&mut self, token: u64, file: &OpenFile);

    /// Submits what was queued and moves finished operations to `out`. With `wait`, blocks until at
    /// least one operation finished, the waker fired, or `wait` elapsed.
    fn reap(&mut self, wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>);

    /// Operations submitted and not yet reaped.
    fn in_flight(&self) -> usize;

    /// The backend's kind.
    fn kind(&self) -> IoBackendKind;
}

/// Builds the backend `kind` names; io_uring falls back to pwrite with a warning when unavailable.
/// `sim` writes through `disk`, the broker's modelled disk (the caller makes one per broker).
pub(crate) fn backend(kind: IoBackendKind, disk: Option<&std::sync::Arc<powercut::PowerCut>>) -> Box<dyn Backend> {
    match (kind, disk) {
        (IoBackendKind::Sim, Some(disk)) => Box::new(powercut::PowerCutBackend::new(std::sync::Arc::clone(disk))),
        (IoBackendKind::Sim, None) => {
            Box::new(powercut::PowerCutBackend::new(std::sync::Arc::new(powercut::PowerCut::default())))
        }
        (IoBackendKind::Discard, _) => Box::new(discard::Discard::default()),
        (IoBackendKind::Pwrite, _) => Box::new(pwrite::Pwrite::default()),
        (IoBackendKind::IoUring, _) => match uring::Uring::new() {
            Ok(u) => Box::new(u),
            Err(e) => {
                log::warn!("io_uring is unavailable ({e}); the log writes with pwrite instead");
                Box::new(pwrite::Pwrite::default())
            }
        },
    }
}

/// Wakes the I/O thread out of a wait in the ring when a request arrives (see the module docs).
#[derive(Debug)]
pub(crate) struct Waker {
    fd: std::os::fd::OwnedFd,
    sleeping: AtomicBool,
    /// eventfd writes made (how often an append paid for a wake-up).
    pub wakes: AtomicU64,
}

impl Waker {
    /// A waker over a fresh non-blocking eventfd.
    pub(crate) fn new() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: eventfd has no memory arguments; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(Waker { fd, sleeping: AtomicBool::new(false), wakes: AtomicU64::new(0) })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// Called by a producer after queueing a request.
    pub(crate) fn notify(&self) {
        // Pairs with the fence in `prepare_sleep`: either the thread sees our request, or we see its flag.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. EAGAIN (counter full)
            // means a wake-up is pending anyway, so the result can be ignored.
            let _ = unsafe { libc::write(self.raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Called by the I/O thread before it sleeps; it must then re-check its queue and call
    /// [`Waker::cancel_sleep`] instead of sleeping when anything arrived.
    pub(crate) fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The I/O thread is awake again.
    pub(crate) fn cancel_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}
