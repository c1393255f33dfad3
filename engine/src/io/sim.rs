//! A simulated disk behind the [`Storage`] seam: in memory, deterministic from a seed.
//!
//! Per file it keeps the bytes in the page cache (what reads see) and the bytes made durable by
//! fdatasync, with the 512-byte sectors written since; per directory the entries as they are and
//! as a directory fsync last made them durable. Faults:
//! - [`SimDisk::cut`]: the disk is gone (the process dies, or the power goes): every later
//!   operation fails with EIO until the crash or power loss that follows;
//! - [`SimDisk::crash`] (process crash): handles are gone, the page cache survives;
//! - [`SimDisk::power_loss`]: every file goes back to its durable bytes, except that each sector
//!   written since its last fsync reached the disk or not (seeded coin per sector: a write in flight
//!   is torn at sector granularity); directories go back to their durable entries;
//! - [`SimDisk::fail_next_sync`] / [`SimDisk::fail_sync`]: the next fdatasync of a file (or the
//!   n-th of any) fails with EIO, once, and drops the file's dirty pages (Linux: the error is
//!   reported once and the pages are marked clean, so a later fsync succeeds over the loss);
//! - [`SimDisk::set_capacity`]: writes and allocations past it fail with ENOSPC;
//! - [`SimDisk::fail_write`] / [`SimDisk::fail_read`]: the n-th write or read from now fails with EIO
//!   (or the errno [`SimDisk::fail_write_with`] names: ENOSPC, say);
//! - [`SimDisk::set_latency`]: each operation sleeps with a seeded probability (a slow disk).
//!
//! Handles keep their access as the real filesystem does: a write through a read-only handle, or a
//! read through an O_DIRECT write-only one, fails with EBADF. A directory's handle
//! ([`Access::Directory`]) is for its fsync: `sync_data` through it makes its entries durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::storage::{Access, FileHandle, Storage, parent};

/// Sector size: the unit a power loss tears writes at.
pub(crate) const SECTOR: u64 = 512;

#[derive(Debug, Default, Clone)]
struct Inode {
    cache: Vec<u8>,
    durable: Vec<u8>,
    /// Sectors written (or cut) since the last successful fdatasync.
    dirty: BTreeSet<u64>,
}

#[derive(Debug)]
struct Sim {
    rng: SmallRng,
    inodes: HashMap<u64, Inode>,
    /// Entries as they are now (path -> inode), and as the last directory fsync left them.
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    handles: HashMap<u64, Opened>,
    next_id: u64,
    capacity: Option<u64>,
    fail_sync: BTreeSet<PathBuf>,
    /// Every operation fails with EIO (the disk is gone) until a crash or a power loss.
    cut: bool,
    /// Countdowns: the operation that brings one to zero fails.
    fail_sync_in: Option<u64>,
    fail_write_in: Option<u64>,
    fail_write_errno: i32,
    fail_read_in: Option<u64>,
    latency: Option<(f64, Duration)>,
}

/// The simulated disk (thread-safe; every operation is atomic under one lock).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // built by the simulation tests (the harness's `sim` is powercut.rs)
pub(crate) struct SimDisk {
    sim: Mutex<Sim>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

/// Counts a fault's countdown down; true for the operation that brings it to zero (which clears it).
pub(crate) fn countdown(slot: &mut Option<u64>) -> bool {
    match slot {
        Some(1) => {
            *slot = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

#[cfg_attr(not(test), allow(dead_code))] // see `SimDisk`
impl SimDisk {
    /// An empty disk whose random choices all follow from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SimDisk {
            sim: Mutex::new(Sim {
                rng: SmallRng::seed_from_u64(seed),
                inodes: HashMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                dirs: BTreeSet::new(),
                handles: HashMap::new(),
                next_id: 1,
                capacity: None,
                fail_sync: BTreeSet::new(),
                cut: false,
                fail_sync_in: None,
                fail_write_in: None,
                fail_write_errno: libc::EIO,
                fail_read_in: None,
                latency: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sim> {
        let mut sim = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, d)) = sim.latency
            && sim.rng.random_bool(p)
        {
            std::thread::sleep(d);
        }
        sim
    }

    /// The disk is gone: every later operation fails with EIO until [`SimDisk::crash`] or
    /// [`SimDisk::power_loss`] (a process that died, or lost power, writes nothing more).
    pub(crate) fn cut(&self) {
        self.lock().cut = true;
    }

    /// Process crash: every handle is gone; the page cache (file bytes and entries) survives.
    pub(crate) fn crash(&self) {
        let mut sim = self.lock();
        sim.handles.clear();
        sim.cut = false;
    }

    /// Power loss: handles gone, each file back to its durable bytes plus a seeded choice of the
    /// sectors written since its last fsync, each directory back to its durable entries.
    pub(crate) fn power_loss(&self) {
        let mut guard = self.lock();
        let sim = &mut *guard;
        sim.handles.clear();
        sim.cut = false;
        sim.names = sim.durable_names.clone();
        let live: BTreeSet<u64> = sim.names.values().copied().collect();
        sim.inodes.retain(|id, _| live.contains(id));
        let mut ids: Vec<u64> = sim.inodes.keys().copied().collect();
        ids.sort_unstable(); // the coins are thrown in a fixed order
        for id in ids {
            let inode = sim.inodes.get_mut(&id).expect("listed");
            let mut after = inode.durable.clone();
            for &sector in &inode.dirty {
                if !sim.rng.random_bool(0.5) {
                    continue;
                }
                let start = (sector * SECTOR) as usize;
                let end = (start + SECTOR as usize).min(inode.cache.len());
                if start >= end {
                    continue;
                }
                if after.len() < end {
                    after.resize(end, 0);
                }
                after[start..end].copy_from_slice(&inode.cache[start..end]);
            }
            inode.cache = after.clone();
            inode.durable = after;
            inode.dirty.clear();
        }
    }

    /// The next fdatasync of `path` fails with EIO and drops the file's dirty pages.
    pub(crate) fn fail_next_sync(&self, path: &Path) {
        self.lock().fail_sync.insert(path.to_path_buf());
    }

    /// The `n`-th fdatasync from now (1: the next) fails as [`SimDisk::fail_next_sync`] says.
    pub(crate) fn fail_sync(&self, n: u64) {
        self.lock().fail_sync_in = Some(n.max(1));
    }

    /// The `n`-th write from now (1: the next) fails with EIO, writing nothing.
    pub(crate) fn fail_write(&self, n: u64) {
        self.fail_write_with(n, libc::EIO);
    }

    /// The `n`-th write from now fails with `errno`, writing nothing.
    pub(crate) fn fail_write_with(&self, n: u64, errno: i32) {
        let mut sim = self.lock();
        sim.fail_write_in = Some(n.max(1));
        sim.fail_write_errno = errno;
    }

    /// The `n`-th read from now fails with EIO.
    pub(crate) fn fail_read(&self, n: u64) {
        self.lock().fail_read_in = Some(n.max(1));
    }

    /// Total bytes the files may hold (`None`: unlimited); beyond it writes fail with ENOSPC.
    pub(crate) fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Each operation sleeps `delay` with probability `p` (`None`: never).
    pub(crate) fn set_latency(&self, spike: Option<(f64, Duration)>) {
        self.lock().latency = spike.map(|(p, d)| (p.clamp(0.0, 1.0), d));
    }
}

/// What a handle is open on.
#[derive(Debug, Clone)]
enum Opened {
    File { inode: u64, access: Access },
    Dir(PathBuf),
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

impl Sim {
    /// The inode behind `file`, if its access allows writing (`write`) or reading.
    fn inode_for(&mut self, file: FileHandle, write: bool) -> io::Result<&mut Inode> {
        let Some(Opened::File { inode, access }) = self.handles.get(&file.0) else { return Err(ebadf()) };
        let allowed = match access {
            Access::ReadWrite => true,
            Access::ReadOnly => !write,
            Access::DirectWrite => write,
            Access::Directory => false,
        };
        if !allowed {
            return Err(ebadf());
        }
        let id = *inode;
        self.inodes.get_mut(&id).ok_or_else(ebadf)
    }

    /// The inode behind `file`, whatever its access (length, fsync).
    fn inode(&mut self, file: FileHandle) -> io::Result<&mut Inode> {
        let Some(Opened::File { inode, .. }) = self.handles.get(&file.0) else { return Err(ebadf()) };
        let id = *inode;
        self.inodes.get_mut(&id).ok_or_else(ebadf)
    }

    fn path_of(&self, file: FileHandle) -> Option<PathBuf> {
        let Some(Opened::File { inode, .. }) = self.handles.get(&file.0) else { return None };
        self.names.iter().find(|(_, i)| *i == inode).map(|(p, _)| p.clone())
    }

    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.cache.len() as u64).sum()
    }

    /// Grows `file` to `len` if the capacity allows.
    fn grow(&mut self, file: FileHandle, len: u64) -> io::Result<()> {
        let current = self.inode_for(file, true)?.cache.len() as u64;
        if len > current {
            if self.capacity.is_some_and(|c| self.used() + (len - current) > c) {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let inode = self.inode_for(file, true)?;
            inode.cache.resize(len as usize, 0);
            inode.dirty.extend(current / SECTOR..len.div_ceil(SECTOR));
        }
        Ok(())
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<()> {
        if dir.as_os_str().is_empty() || self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        }
    }

    fn handle(&mut self, opened: Opened) -> FileHandle {
        let h = self.next_id;
        self.next_id += 1;
        self.handles.insert(h, opened);
        FileHandle(h)
    }

    /// EIO while the disk is cut.
    fn live(&self) -> io::Result<()> {
        if self.cut { Err(eio()) } else { Ok(()) }
    }

    /// A directory fsync: the entries of `dir` as they are now become durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.dir_exists(dir)?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        self.durable_names.retain(|p, _| !in_dir(p));
        let now: Vec<(PathBuf, u64)> =
            self.names.iter().filter(|(p, _)| in_dir(p)).map(|(p, i)| (p.clone(), *i)).collect();
        self.durable_names.extend(now);
        Ok(())
    }
}

impl Storage for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // Directories themselves are durable at once (the log's directories outlive its files).
        let mut sim = self.lock();
        sim.live()?;
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            sim.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<FileHandle> {
        let mut sim = self.lock();
        sim.live()?;
        sim.dir_exists(&parent(path))?;
        let id = match sim.names.get(path) {
            Some(&id) => id,
            None => {
                let id = sim.next_id;
                sim.next_id += 1;
                sim.names.insert(path.to_path_buf(), id);
                id
            }
        };
        let inode = sim.inodes.entry(id).or_default();
        let old_sectors = (inode.cache.len() as u64).div_ceil(SECTOR);
        inode.cache.clear();
        inode.dirty.extend(0..old_sectors);
        Ok(sim.handle(Opened::File { inode: id, access: Access::ReadWrite }))
    }

    fn open_as(&self, path: &Path, access: Access) -> io::Result<FileHandle> {
        let mut sim = self.lock();
        sim.live()?;
        if access == Access::Directory {
            sim.dir_exists(path)?;
            if path.as_os_str().is_empty() {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            return Ok(sim.handle(Opened::Dir(path.to_path_buf())));
        }
        let id = *sim.names.get(path).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok(sim.handle(Opened::File { inode: id, access }))
    }

    fn raw_fd(&self, _file: FileHandle) -> Option<std::os::fd::RawFd> {
        None
    }

    fn close(&self, file: FileHandle) {
        self.lock().handles.remove(&file.0);
    }

    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.inode_for(file, true)?;
        if countdown(&mut sim.fail_write_in) {
            return Err(io::Error::from_raw_os_error(sim.fail_write_errno));
        }
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        sim.grow(file, offset + total)?;
        let inode = sim.inode_for(file, true)?;
        let mut at = offset as usize;
        for b in bufs {
            inode.cache[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
        if total > 0 {
            inode.dirty.extend(offset / SECTOR..(offset + total).div_ceil(SECTOR));
        }
        Ok(())
    }

    fn read_at(&self, file: FileHandle, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut sim = self.lock();
        sim.live()?;
        sim.inode_for(file, false)?;
        if countdown(&mut sim.fail_read_in) {
            return Err(eio());
        }
        let inode = sim.inode_for(file, false)?;
        let start = (offset as usize).min(inode.cache.len());
        let n = buf.len().min(inode.cache.len() - start);
        buf[..n].copy_from_slice(&inode.cache[start..start + n]);
        Ok(n)
    }

    fn sync_data(&self, file: FileHandle) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        if let Some(Opened::Dir(dir)) = sim.handles.get(&file.0).cloned() {
            return sim.sync_dir(&dir);
        }
        sim.inode(file)?;
        let by_path = sim.path_of(file).filter(|p| sim.fail_sync.contains(p));
        let by_count = countdown(&mut sim.fail_sync_in);
        if by_path.is_some() || by_count {
            if let Some(path) = by_path {
                sim.fail_sync.remove(&path);
            }
            // Linux: the writeback error is reported once and the dirty pages are dropped.
            let inode = sim.inode(file)?;
            inode.cache = inode.durable.clone();
            inode.dirty.clear();
            return Err(eio());
        }
        let inode = sim.inode(file)?;
        inode.durable = inode.cache.clone();
        inode.dirty.clear();
        Ok(())
    }

    fn allocate(&self, file: FileHandle, len: u64) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.grow(file, len)
    }

    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.grow(file, len)?;
        let inode = sim.inode_for(file, true)?;
        if (len as usize) < inode.cache.len() {
            let old = (inode.cache.len() as u64).div_ceil(SECTOR);
            inode.cache.truncate(len as usize);
            inode.dirty.extend(len / SECTOR..old);
        }
        Ok(())
    }

    fn len(&self, file: FileHandle) -> io::Result<u64> {
        let mut sim = self.lock();
        sim.live()?;
        Ok(sim.inode(file)?.cache.len() as u64)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.dir_exists(&parent(to))?;
        let id = sim.names.remove(from).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        sim.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.names.remove(path).map(drop).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        sim.live()?;
        sim.sync_dir(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let sim = self.lock();
        sim.live()?;
        sim.dir_exists(dir)?;
        let mut names: Vec<String> = sim
            .names
            .keys()
            .chain(sim.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
