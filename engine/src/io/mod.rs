//! I/O backends: how the log's I/O thread gets bytes onto the disk.
//!
//! One interface, three backends chosen by the topic's `io` setting:
//! - `io_uring` (default): every write of a round is submitted at once (one `writev` SQE per
//!   coalesced run of batches) and reaped together; fsyncs likewise. Many writes in flight, one
//!   syscall per round.
//! - `pwrite`: one `pwritev` per coalesced run, portable. Used automatically, with a warning, when
//!   io_uring cannot be set up (old kernel, seccomp, RLIMIT_MEMLOCK).
//! - `discard`: accepts and throws away, so the threading core can be measured alone.

mod discard;
mod pwrite;
mod uring;

use std::fmt;
use std::fs::File;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Which backend writes the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackendKind {
    /// Linux io_uring.
    #[default]
    IoUring,
    /// `pwritev` / `fdatasync` system calls.
    Pwrite,
    /// Nothing is written.
    Discard,
}

impl FromStr for IoBackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "io_uring" => Ok(IoBackendKind::IoUring),
            "pwrite" => Ok(IoBackendKind::Pwrite),
            "discard" => Ok(IoBackendKind::Discard),
            other => Err(Error::config("io", format!("`{other}` is not one of io_uring, pwrite, discard"))),
        }
    }
}

impl fmt::Display for IoBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoBackendKind::IoUring => "io_uring",
            IoBackendKind::Pwrite => "pwrite",
            IoBackendKind::Discard => "discard",
        })
    }
}

/// Whether this process can create an io_uring (probed once).
pub fn io_uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| io_uring::IoUring::new(2).is_ok())
}

/// One write: `bufs` back to back at `offset` of `file`.
#[derive(Debug)]
pub(crate) struct WriteOp<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub bufs: Vec<&'a [u8]>,
    /// Filled in by the backend.
    pub result: std::io::Result<()>,
}

/// What the log's I/O thread asks of a backend. Each call completes every operation it is given.
pub(crate) trait Backend: Send {
    /// Performs every write (in any order: they never overlap) and sets each one's result.
    fn write_all(&mut self, ops: &mut [WriteOp<'_>]);
    /// fdatasyncs every file; one result per file.
    fn sync_all(&mut self, files: &[&File]) -> Vec<std::io::Result<()>>;
    /// The backend's kind.
    fn kind(&self) -> IoBackendKind;
}

/// Builds the backend `kind` names; io_uring falls back to pwrite with a warning when unavailable.
pub(crate) fn backend(kind: IoBackendKind) -> Box<dyn Backend> {
    match kind {
        IoBackendKind::Discard => Box::new(discard::Discard),
        IoBackendKind::Pwrite => Box::new(pwrite::Pwrite),
        IoBackendKind::IoUring => match uring::Uring::new() {
            Ok(u) => Box::new(u),
            Err(e) => {
                log::warn!("io_uring is unavailable ({e}); writing with pwrite instead");
                Box::new(pwrite::Pwrite)
            }
        },
    }
}
