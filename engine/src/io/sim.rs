//! A simulated disk behind the [`Storage`] seam: in memory, deterministic from a seed.
//!
//! Per file it keeps the bytes in the page cache (what reads see) and the bytes made durable by
//! fdatasync, with the 512-byte sectors written since; per directory the entries as they are and
//! as a directory fsync last made them durable. Faults:
//! - [`SimDisk::crash`] (process crash): handles are gone, the page cache survives;
//! - [`SimDisk::power_loss`]: every file goes back to its durable bytes, except that each sector
//!   written since its last fsync reached the disk or not (seeded coin per sector: a write in flight
//!   is torn at sector granularity); directories go back to their durable entries;
//! - [`SimDisk::fail_next_sync`]: the next fdatasync of a file fails with EIO, once, and drops the
//!   file's dirty pages (Linux: the error is reported once and the pages are marked clean, so a
//!   later fsync succeeds over the loss);
//! - [`SimDisk::set_capacity`]: writes and allocations past it fail with ENOSPC;
//! - [`SimDisk::fail_write`] / [`SimDisk::fail_read`]: the n-th write or read from now fails with EIO;
//! - [`SimDisk::set_latency`]: each operation sleeps with a seeded probability (a slow disk).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::storage::{FileHandle, Storage, parent};

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
    handles: HashMap<u64, u64>,
    next_id: u64,
    capacity: Option<u64>,
    fail_sync: BTreeSet<PathBuf>,
    /// Countdowns: the operation that brings one to zero fails.
    fail_write_in: Option<u64>,
    fail_read_in: Option<u64>,
    latency: Option<(f64, Duration)>,
}

/// The simulated disk (thread-safe; every operation is atomic under one lock).
#[derive(Debug)]
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

#[allow(dead_code)] // the log moves onto the seam next (see storage.rs)
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
                fail_write_in: None,
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

    /// Process crash: every handle is gone; the page cache (file bytes and entries) survives.
    pub(crate) fn crash(&self) {
        self.lock().handles.clear();
    }

    /// Power loss: handles gone, each file back to its durable bytes plus a seeded choice of the
    /// sectors written since its last fsync, each directory back to its durable entries.
    pub(crate) fn power_loss(&self) {
        let mut guard = self.lock();
        let sim = &mut *guard;
        sim.handles.clear();
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

    /// The `n`-th write from now (1: the next) fails with EIO, writing nothing.
    pub(crate) fn fail_write(&self, n: u64) {
        self.lock().fail_write_in = Some(n.max(1));
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

impl Sim {
    fn inode(&mut self, file: FileHandle) -> io::Result<&mut Inode> {
        let id = *self.handles.get(&file.0).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        self.inodes.get_mut(&id).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn path_of(&self, file: FileHandle) -> Option<PathBuf> {
        let id = self.handles.get(&file.0)?;
        self.names.iter().find(|(_, i)| *i == id).map(|(p, _)| p.clone())
    }

    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.cache.len() as u64).sum()
    }

    /// Grows `file` to `len` if the capacity allows.
    fn grow(&mut self, file: FileHandle, len: u64) -> io::Result<()> {
        let current = self.inode(file)?.cache.len() as u64;
        if len > current {
            if self.capacity.is_some_and(|c| self.used() + (len - current) > c) {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let inode = self.inode(file)?;
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

    fn handle(&mut self, id: u64) -> FileHandle {
        let h = self.next_id;
        self.next_id += 1;
        self.handles.insert(h, id);
        FileHandle(h)
    }
}

impl Storage for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // Directories themselves are durable at once (the log's directories outlive its files).
        let mut sim = self.lock();
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            sim.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<FileHandle> {
        let mut sim = self.lock();
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
        Ok(sim.handle(id))
    }

    fn open(&self, path: &Path) -> io::Result<FileHandle> {
        let mut sim = self.lock();
        let id = *sim.names.get(path).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok(sim.handle(id))
    }

    fn close(&self, file: FileHandle) {
        self.lock().handles.remove(&file.0);
    }

    fn write_at(&self, file: FileHandle, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let mut sim = self.lock();
        if countdown(&mut sim.fail_write_in) {
            return Err(eio());
        }
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        sim.grow(file, offset + total)?;
        let inode = sim.inode(file)?;
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
        if countdown(&mut sim.fail_read_in) {
            return Err(eio());
        }
        let inode = sim.inode(file)?;
        let start = (offset as usize).min(inode.cache.len());
        let n = buf.len().min(inode.cache.len() - start);
        buf[..n].copy_from_slice(&inode.cache[start..start + n]);
        Ok(n)
    }

    fn sync_data(&self, file: FileHandle) -> io::Result<()> {
        let mut sim = self.lock();
        let failing = sim.path_of(file).filter(|p| sim.fail_sync.contains(p));
        if let Some(path) = failing {
            sim.fail_sync.remove(&path);
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
        self.lock().grow(file, len)
    }

    fn set_len(&self, file: FileHandle, len: u64) -> io::Result<()> {
        let mut sim = self.lock();
        sim.grow(file, len)?;
        let inode = sim.inode(file)?;
        if (len as usize) < inode.cache.len() {
            let old = (inode.cache.len() as u64).div_ceil(SECTOR);
            inode.cache.truncate(len as usize);
            inode.dirty.extend(len / SECTOR..old);
        }
        Ok(())
    }

    fn len(&self, file: FileHandle) -> io::Result<u64> {
        Ok(self.lock().inode(file)?.cache.len() as u64)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        sim.dir_exists(&parent(to))?;
        let id = sim.names.remove(from).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        sim.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.lock();
        sim.names.remove(path).map(drop).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut guard = self.lock();
        let sim = &mut *guard;
        sim.dir_exists(dir)?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        sim.durable_names.retain(|p, _| !in_dir(p));
        for (p, id) in sim.names.iter().filter(|(p, _)| in_dir(p)) {
            sim.durable_names.insert(p.clone(), *id);
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let sim = self.lock();
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
