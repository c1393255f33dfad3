//! The storage seam: every file operation a log needs, behind one trait, so the same log code runs
//! over the real filesystem ([`FsStorage`]) or a simulated disk ([`super::sim::SimDisk`]) that
//! models the page cache, durability, power loss and disk faults.
//!
//! An open file is a [`FileHandle`]: a logical handle the storage owns, not a descriptor. The
//! storage maps it to whatever it holds underneath (a real `File` today; a bounded LRU of
//! descriptors can go beneath it later without the callers noticing).
//!
//! What goes through it today: each `LocalLog` opens its partitions over one `Arc<dyn Storage>`
//! ([`FsStorage`]); through it the log creates and lists partition directories (recovery), deletes
//! segment files (retention, truncation, recovery after a hole) and does every operation on the
//! offset and time index files (create preallocated, load, write and trim on roll and close).
//!
//! Not yet: the segment `.log` files themselves are still opened with `std::fs`, because the
//! io_uring / pwrite / O_DIRECT [`super::Backend`] writes and fdatasyncs through their raw
//! descriptors (the `Arc<File>` a write or read in flight holds keeps each one open); fallocate,
//! ftruncate, the recovery scan and the readers go through those descriptors too, and the `sim`
//! backend models durability over those real files (`powercut.rs`). So [`super::sim::SimDisk`] is
//! not selectable for a log yet. The step left: segment files as handles (FsStorage exposing a
//! handle's descriptor to the Backend, a Backend writing and syncing through
//! [`Storage::write_at`] / [`Storage::sync_data`] for SimDisk).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A logical open file, owned by the storage that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileHandle(pub(crate) u64);

/// Every file operation of a log. Paths are absolute or relative to the process's directory; each
/// error is the OS's (or the simulated disk's) `io::Error`, which callers wrap with the path.
#[allow(dead_code)] // sync_data, allocate, rename, sync_dir: for segment files (see the module docs)
pub(crate) trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating an existing file) and opens it for reading and writing.
    fn create(&self, path: &Path) -> io::Result<FileHandle>;
    /// Opens an existing `path` for reading and writing.
    fn open(&self, path: &Path) -> io::Result<FileHandle>;
    /// Forgets `file` (its bytes stay).
    fn close(&self, file: FileHandle);
    /// Writes `bufs` back to back at `offset` (pwritev), all of them or an error.
    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, file: FileHandle, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// fdatasync: the file's bytes (and length) are durable when it returns Ok.
    fn sync_data(&self, file: FileHandle) -> io::Result<()>;
    /// fallocate mode 0: reserves space and extends the length to at least `len`.
    fn allocate(&self, file: FileHandle, len: u64) -> io::Result<()>;
    /// ftruncate.
    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()>;
    /// The file's length.
    fn len(&self, file: FileHandle) -> io::Result<u64>;
    /// rename(2): atomic replacement of `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// unlink(2).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory: entries created, renamed or removed in it are durable when Ok.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The real filesystem: each handle is a `File` (opened with O_DIRECT when `direct`, for block
/// aligned writes only).
#[derive(Debug, Default)]
pub(crate) struct FsStorage {
    direct: bool,
    files: Mutex<HashMap<u64, Arc<File>>>,
    next: AtomicU64,
}

impl FsStorage {
    /// A storage over the real filesystem; `direct` opens files with O_DIRECT.
    pub(crate) fn new(direct: bool) -> Self {
        FsStorage { direct, ..FsStorage::default() }
    }

    fn insert(&self, file: File) -> FileHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::new(file));
        FileHandle(id)
    }

    fn get(&self, file: FileHandle) -> io::Result<Arc<File>> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.get(&file.0).cloned().ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn options(&self) -> OpenOptions {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        if self.direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<FileHandle> {
        Ok(self.insert(self.options().create(true).truncate(true).open(path)?))
    }

    fn open(&self, path: &Path) -> io::Result<FileHandle> {
        Ok(self.insert(self.options().open(path)?))
    }

    fn close(&self, file: FileHandle) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.0);
    }

    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let f = self.get(file)?;
        let iov: Vec<libc::iovec> =
            bufs.iter().map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() }).collect();
        // SAFETY: every iovec points into a slice borrowed for the duration of this call.
        unsafe { super::pwrite::pwritev_all(f.as_raw_fd(), offset, &iov) }
    }

    fn read_at(&self, file: FileHandle, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let f = self.get(file)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn sync_data(&self, file: FileHandle) -> io::Result<()> {
        super::pwrite::fdatasync(self.get(file)?.as_raw_fd())
    }

    fn allocate(&self, file: FileHandle, len: u64) -> io::Result<()> {
        let f = self.get(file)?;
        // SAFETY: a plain syscall on an open fd; it touches no memory of ours.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()> {
        self.get(file)?.set_len(len)
    }

    fn len(&self, file: FileHandle) -> io::Result<u64> {
        Ok(self.get(file)?.metadata()?.len())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

/// Where `path` lives: its parent directory (empty for a bare name).
pub(crate) fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
