//! The backend through the storage seam: each write and fdatasync is a [`Storage::write_at`] /
//! [`Storage::sync_data`] call on the file's own storage, made at once (so each completes before
//! `write` / `sync` return, as `pwrite`'s). It is what lets a log run over the in-memory simulated
//! disk ([`super::sim::SimDisk`]), whose files have no descriptor; over [`super::storage::FsStorage`]
//! it works too, one lookup of the handle per operation slower than `pwrite`.
//!
//! Not selectable by the topic's `io` setting: the simulation test builds it with the disk.
//!
//! [`Storage::write_at`]: super::storage::Storage::write_at
//! [`Storage::sync_data`]: super::storage::Storage::sync_data

use std::time::Duration;

use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

#[derive(Debug, Default)]
#[cfg_attr(not(test), allow(dead_code))] // built by the simulation tests, with the disk
pub(crate) struct Through {
    done: Vec<Completion>,
    /// Planted bug (tests): every fdatasync reports success without running.
    #[cfg(test)]
    skip_syncs: bool,
}

#[cfg(test)]
impl Through {
    /// The backend with the simulation test's planted bug when `skip_syncs`: fdatasyncs report
    /// success and do nothing.
    pub(crate) fn skipping_syncs(skip_syncs: bool) -> Self {
        Through { skip_syncs, ..Through::default() }
    }
}

impl Backend for Through {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        let bufs: Vec<&[u8]> = iov
            .iter()
            .filter(|v| v.iov_len > 0)
            // SAFETY: Backend::write's contract: each iovec describes memory valid for reads, left
            // unmodified until this operation is reaped, which is after this call returns.
            .map(|v| unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>().cast_const(), v.iov_len) })
            .collect();
        let result = file.storage().write_at(file.handle(), offset, &bufs);
        self.done.push(Completion { token, result });
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        #[cfg(test)]
        if self.skip_syncs {
            self.done.push(Completion { token, result: Ok(()) });
            return;
        }
        let result = file.storage().sync_data(file.handle());
        self.done.push(Completion { token, result });
    }

    fn reap(&mut self, _wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        // Everything completed synchronously: there is never anything to wait for.
        out.append(&mut self.done);
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Sim
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::sim::SimDisk;
    use super::super::storage::{Access, Storage};
    use super::*;

    fn run(b: &mut Through) -> std::io::Result<()> {
        let mut out = Vec::new();
        b.reap(None, &mut out);
        out.pop().expect("completed").result
    }

    #[test]
    fn writes_and_fsyncs_reach_the_simulated_disk_through_its_calls() {
        let disk = Arc::new(SimDisk::new(1));
        let storage: Arc<dyn Storage> = disk.clone();
        storage.create_dir_all(Path::new("/d")).unwrap();
        let file = OpenFile::create(&storage, Path::new("/d/a.log")).unwrap();
        assert_eq!(file.raw_fd(), -1, "no descriptor behind a simulated file");
        let (one, two) = (b"hello ".to_vec(), b"world".to_vec());
        let iov = [&one, &two].map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() });
        let mut b = Through::default();
        // SAFETY: the buffers and `file` outlive the call; the completion is reaped right after.
        unsafe { b.write(1, &file, 0, &iov) };
        run(&mut b).unwrap();
        b.sync(2, &file);
        run(&mut b).unwrap();
        let dir = OpenFile::open(&storage, Path::new("/d"), Access::Directory).unwrap();
        b.sync(3, &dir);
        run(&mut b).unwrap();
        disk.power_loss();
        let again = OpenFile::open(&storage, Path::new("/d/a.log"), Access::ReadOnly).unwrap();
        let mut buf = [0u8; 11];
        again.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello world", "written, fdatasynced and its entry synced: durable");
    }
}
