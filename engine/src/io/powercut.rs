//! The `sim` backend: `pwrite` over real files, plus a model of what the disk has made durable, so
//! that a power loss can be played over the log's own files.
//!
//! Per segment file the model keeps its length at the last successful fdatasync (the *durable
//! length*) and, for every 512-byte sector inside it written since, the bytes the sector held then
//! (read before the write overwrites them). [`PowerCut::power_loss`] (after the log's I/O thread
//! stopped) puts every file back to what a power loss leaves:
//! - each overwritten sector keeps its new bytes or gets its durable ones back, by a seeded coin
//!   (a write in flight torn at sector granularity);
//! - past the durable length the file keeps a seeded, possibly empty, run of the sectors written
//!   there (written back in order up to some sector) and is cut after it;
//! - every offset and time index file under the disk's root is deleted: the log never fsyncs them,
//!   so none can be trusted, and recovery rebuilds missing indexes from the log (as Kafka rebuilds
//!   the indexes of segments past its recovery point).
//!
//! Directory entries count as durable: the log fsyncs a partition's directory in the same group as
//! the first fsync of a new segment, and a segment whose entry was never fsynced holds no durable
//! bytes in the model either, so recovery sees the same data as if the entry had vanished.
//!
//! Faults: [`PowerCut::cut`] (the disk is gone: every later write and fsync fails with EIO, until
//! the power loss), the n-th fdatasync failing with EIO (Linux semantics: reported once, the dirty
//! pages dropped, the file back to its durable bytes), a full disk (every write fails with ENOSPC),
//! and a slow disk (every write and fsync waits). (The simulation test, which also fails the n-th
//! write, runs over the in-memory disk of `sim.rs` instead.)
//!
//! Memory: the model holds the durable bytes of overwritten sectors only (appends past the durable
//! length cost a sector number each), so a log that never fsyncs and never preallocates costs little;
//! with `preallocate` every unsynced write is an overwrite and its old bytes are held until the next
//! fdatasync.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::pwrite::Pwrite;
use super::sim::{SECTOR, countdown};
use super::storage::OpenFile;
use super::{Backend, Completion, IoBackendKind, Waker};

/// One file as the model knows it.
#[derive(Debug, Default)]
struct Shadow {
    /// The file's length at its last successful fdatasync (or when the model first saw it).
    durable_len: u64,
    /// Sectors below `durable_len` written since: their durable bytes (the last one may be short).
    before: BTreeMap<u64, Vec<u8>>,
}

#[derive(Debug, Default)]
struct DiskState {
    files: HashMap<PathBuf, Shadow>,
    cut: bool,
    full: bool,
    latency: Duration,
    fail_sync_in: Option<u64>,
}

/// The modelled disk of one broker, shared by the backends its log gets across restarts.
#[derive(Debug, Default)]
pub(crate) struct PowerCut {
    /// Where index files are dropped at a power loss (none: no index file is dropped).
    root: Option<PathBuf>,
    state: Mutex<DiskState>,
}

fn path_of(fd: RawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().filter(|p| p.is_file())
}

fn file_len(fd: RawFd) -> u64 {
    // SAFETY: fstat writes into the zeroed struct we own; `fd` is open (the caller's guarantee).
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 { st.st_size as u64 } else { 0 }
    }
}

/// Puts `shadow`'s file back to its durable bytes: every overwritten sector for which `lost` says so,
/// and, past the durable length, everything from the first sector `lost` says was lost on.
fn restore(path: &Path, shadow: &mut Shadow, mut lost: impl FnMut() -> bool) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    for (&sector, old) in &shadow.before {
        let start = sector * SECTOR;
        if start < len && lost() {
            file.write_all_at(&old[..old.len().min((len - start) as usize)], start)?;
        }
    }
    if len > shadow.durable_len {
        // Written back in order up to some sector: keep a seeded run of whole sectors, cut the rest.
        let mut keep = shadow.durable_len;
        while keep < len && !lost() {
            keep = ((keep / SECTOR) + 1) * SECTOR;
        }
        if keep < len {
            file.set_len(keep)?;
        }
    }
    shadow.before.clear();
    shadow.durable_len = file.metadata()?.len();
    Ok(())
}

/// Deletes every `.index` and `.timeindex` file under `dir`.
fn drop_indexes(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            drop_indexes(&path);
        } else if path.extension().is_some_and(|e| e == "index" || e == "timeindex") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl PowerCut {
    /// A disk whose files live under `root` (its index files are dropped by a power loss).
    pub(crate) fn new(root: &Path) -> Self {
        PowerCut { root: Some(root.to_path_buf()), state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The disk is gone: every later write and fsync fails with EIO, until [`PowerCut::power_loss`].
    pub(crate) fn cut(&self) {
        self.lock().cut = true;
    }

    /// The `n`-th fdatasync from now fails (1: the next).
    pub(crate) fn fail_sync(&self, n: u64) {
        self.lock().fail_sync_in = Some(n.max(1));
    }

    /// While `full`, every write fails with ENOSPC.
    pub(crate) fn set_full(&self, full: bool) {
        self.lock().full = full;
    }

    /// Every write and fdatasync waits `delay` first (zero: none).
    pub(crate) fn set_latency(&self, delay: Duration) {
        self.lock().latency = delay;
    }

    /// After the log stopped: every file back to what a power loss leaves (see the module docs),
    /// the torn sectors chosen by coins from `seed`; the disk works again afterwards.
    pub(crate) fn power_loss(&self, seed: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut st = self.lock();
        let mut paths: Vec<PathBuf> = st.files.keys().cloned().collect();
        paths.sort(); // the coins are thrown in a fixed order
        for path in paths {
            let shadow = st.files.get_mut(&path).expect("listed");
            if let Err(e) = restore(&path, shadow, || rng.random_bool(0.5))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                log::warn!("power loss: restoring {}: {e}", path.display());
            }
        }
        st.files.retain(|p, _| p.exists());
        st.cut = false;
        drop(st);
        if let Some(root) = &self.root {
            drop_indexes(root);
        }
    }

    /// Before a write of `len` bytes at `offset` to `fd`: the durable bytes of the sectors it
    /// overwrites that were not written since the last fdatasync.
    fn note_write(&self, st: &mut DiskState, fd: RawFd, offset: u64, len: u64) {
        let Some(path) = path_of(fd) else { return };
        let shadow =
            st.files.entry(path.clone()).or_insert_with(|| Shadow { durable_len: file_len(fd), ..Shadow::default() });
        if len == 0 || offset >= shadow.durable_len {
            return;
        }
        let reader = std::fs::File::open(&path).ok();
        let last = (offset + len).min(shadow.durable_len).div_ceil(SECTOR);
        for sector in offset / SECTOR..last {
            if shadow.before.contains_key(&sector) {
                continue;
            }
            let start = sector * SECTOR;
            let mut old = vec![0u8; (SECTOR.min(shadow.durable_len - start)) as usize];
            if let Some(r) = &reader {
                let _ = r.read_exact_at(&mut old, start);
            }
            shadow.before.insert(sector, old);
        }
    }
}

/// The backend over one [`PowerCut`] disk.
#[derive(Debug)]
pub(crate) struct PowerCutBackend {
    inner: Pwrite,
    disk: Arc<PowerCut>,
    done: Vec<Completion>,
}

impl PowerCutBackend {
    pub(crate) fn new(disk: Arc<PowerCut>) -> Self {
        PowerCutBackend { inner: Pwrite::default(), disk, done: Vec::new() }
    }

    fn wait_latency(&self) {
        let delay = self.disk.lock().latency;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

fn errno(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

impl Backend for PowerCutBackend {
    unsafe fn write(&mut self, token: u64, file: &OpenFile, offset: u64, iov: &[libc::iovec]) {
        let fd = file.raw_fd();
        self.wait_latency();
        let mut st = self.disk.lock();
        if st.cut {
            self.done.push(Completion { token, result: Err(errno(libc::EIO)) });
            return;
        }
        if st.full {
            self.done.push(Completion { token, result: Err(errno(libc::ENOSPC)) });
            return;
        }
        let total: u64 = iov.iter().map(|v| v.iov_len as u64).sum();
        self.disk.note_write(&mut st, fd, offset, total);
        // The write runs under the lock, so that a power loss never sees half of it noted.
        // SAFETY: forwarded under the caller's guarantee (buffers valid until reaped).
        unsafe { self.inner.write(token, file, offset, iov) }
    }

    fn sync(&mut self, token: u64, file: &OpenFile) {
        let fd = file.raw_fd();
        self.wait_latency();
        let mut st = self.disk.lock();
        if st.cut {
            self.done.push(Completion { token, result: Err(errno(libc::EIO)) });
            return;
        }
        // Directories (the log fsyncs a partition's after creating a segment) are not modelled.
        let path = path_of(fd);
        if countdown(&mut st.fail_sync_in) {
            // Linux: the writeback failed, the dirty pages are dropped; the disk keeps its old bytes.
            if let Some(p) = &path
                && let Some(shadow) = st.files.get_mut(p)
                && let Err(e) = restore(p, shadow, || true)
            {
                log::warn!("fsync failure: restoring {}: {e}", p.display());
            }
            self.done.push(Completion { token, result: Err(errno(libc::EIO)) });
            return;
        }
        self.inner.sync(token, file);
        if let Some(path) = path {
            let shadow = st.files.entry(path).or_default();
            shadow.before.clear();
            shadow.durable_len = file_len(fd);
        }
    }

    fn reap(&mut self, _wait: Option<(&Waker, Duration)>, out: &mut Vec<Completion>) {
        self.inner.reap(None, out);
        out.append(&mut self.done);
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.done.len()
    }

    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Sim
    }
}

#[cfg(test)]
mod tests {
    use super::super::storage::{FsStorage, Storage};
    use super::*;

    fn write(b: &mut PowerCutBackend, file: &OpenFile, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let iov = [libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() }];
        // SAFETY: `bytes` and `file` outlive the call and the completion is reaped below, before it returns.
        unsafe { b.write(1, file, offset, &iov) };
        let mut out = Vec::new();
        b.reap(None, &mut out);
        out.pop().expect("completed").result
    }

    fn sync(b: &mut PowerCutBackend, file: &OpenFile) -> std::io::Result<()> {
        b.sync(2, file);
        let mut out = Vec::new();
        b.reap(None, &mut out);
        out.pop().expect("completed").result
    }

    fn setup() -> (tempfile::TempDir, Arc<PowerCut>, PowerCutBackend, Arc<OpenFile>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(PowerCut::new(dir.path()));
        let b = PowerCutBackend::new(Arc::clone(&disk));
        let path = dir.path().join("00000000000000000000.log");
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
        let file = OpenFile::create(&storage, &path).unwrap();
        (dir, disk, b, file, path)
    }

    #[test]
    fn a_power_loss_keeps_what_fdatasync_made_durable_and_drops_the_rest() {
        let (dir, disk, mut b, file, path) = setup();
        write(&mut b, &file, 0, &[1u8; 2048]).unwrap();
        sync(&mut b, &file).unwrap();
        // Unsynced: an overwrite of the durable part and an append past it.
        write(&mut b, &file, 512, &[2u8; 512]).unwrap();
        write(&mut b, &file, 2048, &[3u8; 100 * 512]).unwrap();
        std::fs::write(dir.path().join("00000000000000000000.index"), [0u8; 8]).unwrap();
        disk.cut();
        assert_eq!(write(&mut b, &file, 0, &[9u8; 1]).unwrap_err().raw_os_error(), Some(libc::EIO));
        disk.power_loss(7);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(&after[..512], &[1u8; 512][..], "a synced sector never written again is kept");
        assert!(after[512..1024] == [1u8; 512] || after[512..1024] == [2u8; 512], "torn only at sector bounds");
        assert_eq!(after.len() % 512, 0);
        assert!(after.len() >= 2048 && after.len() < 2048 + 100 * 512, "the append survives as a prefix at most");
        assert!(after[2048..].iter().all(|&x| x == 3));
        assert!(!dir.path().join("00000000000000000000.index").exists(), "index files are never trusted");
        // The disk works again.
        write(&mut b, &file, 0, &[4u8; 1]).unwrap();
    }

    #[test]
    fn without_any_fdatasync_a_new_file_loses_everything_and_a_failed_fsync_drops_the_pages() {
        let (_dir, disk, mut b, file, path) = setup();
        write(&mut b, &file, 0, &[5u8; 4096]).unwrap();
        disk.fail_sync(1);
        assert_eq!(sync(&mut b, &file).unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(std::fs::read(&path).unwrap().len(), 0, "the failed fsync dropped the dirty pages");
        disk.set_full(true);
        assert_eq!(write(&mut b, &file, 0, &[6u8; 1]).unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        disk.set_full(false);
        write(&mut b, &file, 0, &[6u8; 512]).unwrap();
        disk.power_loss(1);
        let len = std::fs::read(&path).unwrap().len();
        assert!(len == 0 || len == 512, "{len}");
    }
}
