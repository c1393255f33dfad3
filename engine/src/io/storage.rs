//! The storage seam: every file operation a log needs, behind one trait, so the same log code runs
//! over the real filesystem ([`FsStorage`]) or a simulated disk ([`super::sim::SimDisk`]) that
//! models the page cache, durability, power loss and disk faults.
//!
//! An open file is a [`FileHandle`]: a logical handle the storage owns, not a descriptor. The
//! storage maps it to whatever it holds underneath (a real `File` on the real filesystem, an inode
//! of the simulated disk). The log holds its open files as [`OpenFile`]s: a handle that closes
//! itself when the last clone goes, so that a write or read in flight (which holds a clone) keeps
//! the file open after the segment let it go. An [`OpenFile`] keeps its descriptor open for as
//! long as it lives, so a bounded LRU of descriptors (issue 15) could only close files no
//! [`OpenFile`] holds; bounding the active segments' descriptors means dropping a cold
//! partition's [`OpenFile`] and opening it again on its next write.
//!
//! Everything the log does to a file goes through it: each `LocalLog` opens its partitions over one
//! `Arc<dyn Storage>`, and through it the log creates and lists partition directories, creates,
//! opens (read-only for reads and for loading inactive segments; read-write or O_DIRECT for the
//! active segment), preallocates, cuts, scans and reads segment files, deletes them, does every
//! operation on the index files, and opens directories and rolled segments for their fsyncs.
//!
//! The I/O [`super::Backend`] writes and fdatasyncs [`OpenFile`]s. On the real filesystem the
//! io_uring, pwrite and O_DIRECT backends use the descriptor behind the handle, looked up once when
//! the file is opened and kept in the [`OpenFile`] ([`OpenFile::raw_fd`]): a write costs no lookup,
//! lock or allocation more than it did on a bare descriptor. The `storage` backend
//! (`io/through.rs`) writes and syncs through [`Storage::write_at`] / [`Storage::sync_data`]
//! instead, so a log runs entirely over the simulated disk (the simulation test does:
//! `log/sim_tests.rs`). The harness's `engine.io: sim` is the power-cut model over real files
//! (`io/powercut.rs`), whose memory does not grow with the bytes written.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A logical open file, owned by the storage that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileHandle(pub(crate) u64);

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only (a read of a segment, loading an inactive one, an index file).
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
    /// Block-aligned writes bypassing the page cache (O_DIRECT; direct_io's active segment).
    DirectWrite,
    /// A directory, opened for an fsync: [`Storage::sync_data`] through it makes its entries durable.
    Directory,
}

/// Every file operation of a log. Paths are absolute or relative to the process's directory; each
/// error is the OS's (or the simulated disk's) `io::Error`, which callers wrap with the path.
pub(crate) trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating an existing file) and opens it for reading and writing.
    fn create(&self, path: &Path) -> io::Result<FileHandle>;
    /// Opens an existing `path` (or directory) as `access` says.
    fn open_as(&self, path: &Path, access: Access) -> io::Result<FileHandle>;
    /// Opens an existing `path` for reading and writing.
    fn open(&self, path: &Path) -> io::Result<FileHandle> {
        self.open_as(path, Access::ReadWrite)
    }
    /// The descriptor behind `file` on the real filesystem (valid until `file` is closed); `None` on
    /// a simulated disk.
    fn raw_fd(&self, file: FileHandle) -> Option<RawFd>;
    /// Forgets `file` (its bytes stay).
    fn close(&self, file: FileHandle);
    /// Writes `bufs` back to back at `offset` (pwritev), all of them or an error.
    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, file: FileHandle, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// fdatasync: the file's bytes (and length) are durable when it returns Ok; through a
    /// [`Access::Directory`] handle, the directory's entries.
    fn sync_data(&self, file: FileHandle) -> io::Result<()>;
    /// fallocate mode 0: reserves space and extends the length to at least `len`.
    fn allocate(&self, file: FileHandle, len: u64) -> io::Result<()>;
    /// ftruncate.
    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()>;
    /// The file's length.
    fn len(&self, file: FileHandle) -> io::Result<u64>;
    /// rename(2): atomic replacement of `to`.
    #[allow(dead_code)] // the log renames nothing yet (Kafka's .deleted / .cleaned suffixes would)
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// unlink(2).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory: entries created, renamed or removed in it are durable when Ok (the
    /// log fsyncs directories through an [`Access::Directory`] handle, so that its backend runs it).
    #[allow(dead_code)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// An open file of a storage, shared (`Arc<OpenFile>`) by its segment and the writes, reads and
/// fsyncs in flight through it; the handle is closed when the last of them lets it go.
#[derive(Debug)]
pub(crate) struct OpenFile {
    storage: Arc<dyn Storage>,
    handle: FileHandle,
    /// [`Storage::raw_fd`] of the handle, looked up once at open (-1 on a simulated disk).
    fd: RawFd,
}

impl OpenFile {
    /// Opens `path` through `storage` as `access` says.
    pub(crate) fn open(storage: &Arc<dyn Storage>, path: &Path, access: Access) -> io::Result<Arc<OpenFile>> {
        let handle = storage.open_as(path, access)?;
        Ok(Self::wrap(storage, handle))
    }

    /// Creates `path` empty through `storage`, open for reading and writing.
    pub(crate) fn create(storage: &Arc<dyn Storage>, path: &Path) -> io::Result<Arc<OpenFile>> {
        let handle = storage.create(path)?;
        Ok(Self::wrap(storage, handle))
    }

    fn wrap(storage: &Arc<dyn Storage>, handle: FileHandle) -> Arc<OpenFile> {
        let fd = storage.raw_fd(handle).unwrap_or(-1);
        Arc::new(OpenFile { storage: Arc::clone(storage), handle, fd })
    }

    /// The storage's handle.
    pub(crate) fn handle(&self) -> FileHandle {
        self.handle
    }

    /// The storage the file belongs to.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The descriptor for the descriptor-based backends (io_uring, pwrite), open while `self` lives;
    /// -1 on a simulated disk, where a system call through it fails with EBADF.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Reads exactly `buf.len()` bytes at `offset` (UnexpectedEof when the file ends first).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let n = self.storage.read_at(self.handle, offset, buf)?;
        if n < buf.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{n} of {} bytes", buf.len())));
        }
        Ok(())
    }

    /// The file's length.
    pub(crate) fn len(&self) -> io::Result<u64> {
        self.storage.len(self.handle)
    }

    /// ftruncate.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        self.storage.set_len(self.handle, len)
    }

    /// fallocate mode 0 to `len` bytes.
    pub(crate) fn allocate(&self, len: u64) -> io::Result<()> {
        self.storage.allocate(self.handle, len)
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.storage.close(self.handle);
    }
}

/// The real filesystem: each handle is a `File`.
#[derive(Debug, Default)]
pub(crate) struct FsStorage {
    files: Mutex<HashMap<u64, Arc<File>>>,
    next: AtomicU64,
}

/// Consumers read segments front to back: asks for the kernel's larger sequential readahead.
/// Advice only; a filesystem that ignores it changes nothing.
fn advise_sequential(file: &File) {
    // SAFETY: posix_fadvise reads no memory of ours; the fd is open for the call's duration.
    let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
}

impl FsStorage {
    /// A storage over the real filesystem.
    pub(crate) fn new() -> Self {
        FsStorage::default()
    }

    fn insert(&self, file: File) -> FileHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Arc::new(file));
        FileHandle(id)
    }

    /// The open file behind `file` (EBADF for a closed handle). The clone keeps its descriptor open
    /// for the caller's system call even if the handle is closed meanwhile.
    fn get(&self, file: FileHandle) -> io::Result<Arc<File>> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.get(&file.0).cloned().ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<FileHandle> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        advise_sequential(&file);
        Ok(self.insert(file))
    }

    fn open_as(&self, path: &Path, access: Access) -> io::Result<FileHandle> {
        let mut o = OpenOptions::new();
        match access {
            Access::ReadOnly | Access::Directory => o.read(true),
            Access::ReadWrite => o.read(true).write(true),
            Access::DirectWrite => o.write(true).custom_flags(libc::O_DIRECT),
        };
        let file = o.open(path)?;
        if matches!(access, Access::ReadOnly | Access::ReadWrite) {
            advise_sequential(&file);
        }
        Ok(self.insert(file))
    }

    fn raw_fd(&self, file: FileHandle) -> Option<RawFd> {
        self.get(file).ok().map(|f| f.as_raw_fd())
    }

    fn close(&self, file: FileHandle) {
        let closed = self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(&file.0);
        drop(closed); // close(2) outside the lock
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
