//! The `io_uring` backend: a round's writes are all submitted at once and reaped together.

use std::fs::File;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, types};

use super::pwrite::pwritev_all;
use super::{Backend, IoBackendKind, WriteOp};

/// Submission queue entries: writes in flight at once.
const ENTRIES: u32 = 256;

pub(crate) struct Uring {
    ring: IoUring,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring").finish_non_exhaustive()
    }
}

impl Uring {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Uring { ring: IoUring::new(ENTRIES)? })
    }

    /// Submits up to ENTRIES prepared entries, waits for all, returns (user_data, result) pairs.
    fn run(&mut self, entries: &[io_uring::squeue::Entry]) -> std::io::Result<Vec<(u64, i32)>> {
        let mut done = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(ENTRIES as usize) {
            {
                let mut sq = self.ring.submission();
                for e in chunk {
                    // SAFETY: every buffer and iovec an entry points to is owned by the caller's frame
                    // and outlives this call, which waits for every completion before returning.
                    unsafe { sq.push(e).map_err(|_| std::io::Error::other("io_uring submission queue full"))? };
                }
            }
            let mut reaped = 0;
            while reaped < chunk.len() {
                match self.ring.submit_and_wait(chunk.len() - reaped) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                for cqe in self.ring.completion() {
                    done.push((cqe.user_data(), cqe.result()));
                    reaped += 1;
                }
            }
        }
        Ok(done)
    }
}

impl Backend for Uring {
    fn write_all(&mut self, ops: &mut [WriteOp<'_>]) {
        let iovecs: Vec<Vec<libc::iovec>> = ops
            .iter()
            .map(|op| {
                op.bufs
                    .iter()
                    .map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() })
                    .collect()
            })
            .collect();
        let entries: Vec<_> = ops
            .iter()
            .zip(&iovecs)
            .enumerate()
            .map(|(i, (op, iov))| {
                opcode::Writev::new(types::Fd(op.file.as_raw_fd()), iov.as_ptr(), iov.len() as u32)
                    .offset(op.offset)
                    .build()
                    .user_data(i as u64)
            })
            .collect();
        match self.run(&entries) {
            Ok(done) => {
                for (i, res) in done {
                    let op = &mut ops[i as usize];
                    let total: usize = op.bufs.iter().map(|b| b.len()).sum();
                    op.result = if res < 0 {
                        Err(std::io::Error::from_raw_os_error(-res))
                    } else if (res as usize) < total {
                        // A short write: finish the rest synchronously.
                        finish_short(op, res as usize)
                    } else {
                        Ok(())
                    };
                }
            }
            Err(e) => {
                for op in ops.iter_mut() {
                    op.result = Err(std::io::Error::new(e.kind(), e.to_string()));
                }
            }
        }
    }

    fn sync_all(&mut self, files: &[&File]) -> Vec<std::io::Result<()>> {
        let entries: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                opcode::Fsync::new(types::Fd(f.as_raw_fd()))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(i as u64)
            })
            .collect();
        let mut results: Vec<std::io::Result<()>> = files.iter().map(|_| Ok(())).collect();
        match self.run(&entries) {
            Ok(done) => {
                for (i, res) in done {
                    if res < 0 {
                        results[i as usize] = Err(std::io::Error::from_raw_os_error(-res));
                    }
                }
            }
            Err(e) => {
                for r in &mut results {
                    *r = Err(std::io::Error::new(e.kind(), e.to_string()));
                }
            }
        }
        results
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::IoUring
    }
}

fn finish_short(op: &WriteOp<'_>, mut written: usize) -> std::io::Result<()> {
    let mut rest: Vec<&[u8]> = Vec::new();
    for b in &op.bufs {
        if written >= b.len() {
            written -= b.len();
        } else {
            rest.push(&b[written..]);
            written = 0;
        }
    }
    let done: usize = op.bufs.iter().map(|b| b.len()).sum::<usize>() - rest.iter().map(|b| b.len()).sum::<usize>();
    pwritev_all(op.file, op.offset + done as u64, &rest)
}
