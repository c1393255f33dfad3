//! The `pwrite` backend: `pwritev` per write (continuing after short writes), `fdatasync` per file.

use std::fs::File;
use std::io::IoSlice;

use super::{Backend, IoBackendKind, WriteOp};

#[derive(Debug)]
pub(crate) struct Pwrite;

/// Writes `bufs` at `offset`, retrying on EINTR and continuing after short writes.
pub(crate) fn pwritev_all(file: &File, mut offset: u64, bufs: &[&[u8]]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut index = 0;
    let mut skip = 0usize;
    while index < bufs.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&bufs[index][skip..]))
            .chain(bufs[index + 1..].iter().map(|b| IoSlice::new(b)))
            .collect();
        let count = slices.len().min(libc::UIO_MAXIOV as usize);
        // SAFETY: `slices` holds `count` valid IoSlices (ABI-compatible with iovec) borrowed for the
        // call; the fd is open for the lifetime of `file`.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                slices.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                offset as libc::off_t,
            )
        };
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
        while n > 0 && index < bufs.len() {
            let left = bufs[index].len() - skip;
            if n >= left {
                n -= left;
                index += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
        while index < bufs.len() && bufs[index].len() == skip {
            index += 1;
            skip = 0;
        }
    }
    Ok(())
}

impl Backend for Pwrite {
    fn write_all(&mut self, ops: &mut [WriteOp<'_>]) {
        for op in ops {
            op.result = pwritev_all(op.file, op.offset, &op.bufs);
        }
    }

    fn sync_all(&mut self, files: &[&File]) -> Vec<std::io::Result<()>> {
        files.iter().map(|f| f.sync_data()).collect()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Pwrite
    }
}
