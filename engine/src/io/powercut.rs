//! A test backend that models durability over real files: `pwrite` underneath, plus per file the
//! bytes as the last successful fdatasync left them and the 512-byte sectors written since. After
//! the log stopped, [`PowerCut::power_loss`] puts every file back to its durable bytes except a
//! seeded choice of the sectors written since (a torn write), so recovery runs over what a power
//! loss would leave. Faults: [`PowerCut::cut`] (the disk is gone: every later write and fsync
//! fails), and the n-th fdatasync or write failing (an fdatasync failure drops the dirty sectors on
//! disk, as Linux drops pages it failed to write back).
//!
//! Only the segment data goes through a backend; index files and directory entries are written by
//! the log directly and count as durable here (the storage seam, `storage.rs`, is where they move).

use std::collections::{BTreeSet, HashMap};
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::pwrite::Pwrite;
use super::sim::{SECTOR, countdown};
use super::{Backend, Completion, IoBackendKind, Waker};

#[derive(Debug, Default)]
struct Shadow {
    durable: Vec<u8>,
    dirty: BTreeSet<u64>,
}

#[derive(Debug, Default)]
struct DiskState {
    files: HashMap<PathBuf, Shadow>,
    cut: bool,
    fail_sync_in: Option<u64>,
    fail_write_in: Option<u64>,
}

/// The modelled disk, shared by the backends of one test's logs.
#[derive(Debug, Default)]
pub(crate) struct PowerCut {
    state: Mutex<DiskState>,
}

fn path_of(fd: RawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().filter(|p| p.is_file())
}

fn read_file(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

impl PowerCut {
    fn lock(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The disk is gone: every later write and fsync fails with EIO.
    pub(crate) fn cut(&self) {
        self.lock().cut = true;
    }

    /// The `n`-th fdatasync from now fails (1: the next).
    pub(crate) fn fail_sync(&self, n: u64) {
        self.lock().fail_sync_in = Some(n.max(1));
    }

    /// The `n`-th write from now fails with ENOSPC.
    pub(crate) fn fail_write(&self, n: u64) {
        self.lock().fail_write_in = Some(n.max(1));
    }

    /// After the log stopped: every file back to its durable bytes, each sector written since its
    /// last fdatasync kept or lost by a coin from `seed`.
    pub(crate) fn power_loss(&self, seed: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut st = self.lock();
        let mut paths: Vec<PathBuf> = st.files.keys().cloned().collect();
        paths.sort();
        for path in paths {
            let shadow = st.files.get_mut(&path).expect("listed");
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else { continue };
            let len = file.metadata().map_or(0, |m| m.len());
            for &sector in &shadow.dirty {
                let start = sector * SECTOR;
                if start >= len || rng.random_bool(0.5) {
                    continue; // beyond the file now, or this sector reached the disk
                }
                let end = (start + SECTOR).min(len);
                let mut old = vec![0u8; (end - start) as usize];
                let from = (start as usize).min(shadow.durable.len());
                let to = (end as usize).min(shadow.durable.len());
                old[..to - from].copy_from_slice(&shadow.durable[from..to]);
                let _ = file.write_all_at(&old, start);
            }
            shadow.dirty.clear();
            shadow.durable = read_file(&path);
        }
        st.cut = false;
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
}

fn eio() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EIO)
}

impl Backend for PowerCutBackend {
    unsafe fn write(&mut self, token: u64, fd: RawFd, offset: u64, iov: &[libc::iovec]) {
        let mut st = self.disk.lock();
        if st.cut {
            self.done.push(Completion { token, result: Err(eio()) });
            return;
        }
        if countdown(&mut st.fail_write_in) {
            self.done.push(Completion { token, result: Err(std::io::Error::from_raw_os_error(libc::ENOSPC)) });
            return;
        }
        if let Some(path) = path_of(fd) {
            let total: u64 = iov.iter().map(|v| v.iov_len as u64).sum();
            let shadow = st
                .files
                .entry(path.clone())
                .or_insert_with(|| Shadow { durable: read_file(&path), ..Shadow::default() });
            if total > 0 {
                shadow.dirty.extend(offset / SECTOR..(offset + total).div_ceil(SECTOR));
            }
        }
        drop(st);
        // SAFETY: forwarded under the caller's guarantee (buffers valid until reaped).
        unsafe { self.inner.write(token, fd, offset, iov) }
    }

    fn sync(&mut self, token: u64, fd: RawFd) {
        let mut st = self.disk.lock();
        if st.cut {
            self.done.push(Completion { token, result: Err(eio()) });
            return;
        }
        let path = path_of(fd);
        if countdown(&mut st.fail_sync_in) {
            // Linux: the writeback failed and the dirty pages are dropped; the disk keeps old bytes.
            if let Some(shadow) = path.as_ref().and_then(|p| st.files.get_mut(p))
                && let Ok(file) = std::fs::OpenOptions::new().write(true).open(path.as_ref().expect("some"))
            {
                for &sector in &shadow.dirty {
                    let start = (sector * SECTOR) as usize;
                    let mut old = vec![0u8; SECTOR as usize];
                    let to = (start + SECTOR as usize).min(shadow.durable.len());
                    if start < to {
                        old[..to - start].copy_from_slice(&shadow.durable[start..to]);
                    }
                    let len = file.metadata().map_or(0, |m| m.len()) as usize;
                    if start < len {
                        let _ = file.write_all_at(&old[..(len - start).min(old.len())], start as u64);
                    }
                }
                shadow.dirty.clear();
            }
            self.done.push(Completion { token, result: Err(eio()) });
            return;
        }
        drop(st);
        self.inner.sync(token, fd);
        if let Some(path) = path {
            let mut st = self.disk.lock();
            let durable = read_file(&path);
            let shadow = st.files.entry(path).or_default();
            shadow.durable = durable;
            shadow.dirty.clear();
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
        IoBackendKind::Pwrite
    }
}
