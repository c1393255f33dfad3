//! The sparse `.index` (i32 relativeOffset, i32 position) and `.timeindex` (i64 timestamp,
//! i32 relativeOffset) of a segment, big-endian, as Kafka writes them.
//!
//! Entries are kept in memory for lookups; the file holds no descriptor. Every operation on the file
//! goes through the log's [`Storage`] (opened for the operation, closed after). A new segment's index file
//! is created lazily, as Kafka's `LazyIndex` defers its index files: written whole when the segment
//! rolls ([`Index::persist`], so that reopening trusts the inactive segment), or when the log closes
//! if it holds entries ([`Index::flush`]); an active segment without entries leaves no index file
//! (segment.index.bytes still bounds the entries: a full index rolls). So a partition that never
//! indexed anything costs one file, not three, to create, sync and remove. Until then a crash leaves
//! the active index unwritten (or absent), which changes nothing: recovery always rebuilds the active
//! segment's indexes from its batches (Kafka's recovery rebuilds a missing index too), and inactive
//! segments' indexes were written at their roll.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::storage::{Access, FileHandle, Storage};

/// Bytes per offset index entry.
pub(crate) const OFFSET_ENTRY: usize = 8;
/// Bytes per time index entry.
pub(crate) const TIME_ENTRY: usize = 12;

/// One index file and its entries.
#[derive(Debug)]
pub(crate) struct Index<E> {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    entries: Vec<E>,
    max_entries: usize,
    entry_size: usize,
    /// The file does not hold exactly `entries` (new entries, or a file left from before).
    dirty: bool,
    /// The file may exist; `false` for a new segment's index until its first write.
    on_disk: bool,
}

/// An offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: i32,
    pub position: i32,
}

/// A time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: i32,
}

pub(crate) trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

impl Entry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = TIME_ENTRY;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry { timestamp: i64::from_be_bytes(ts), relative_offset: i32::from_be_bytes([b[8], b[9], b[10], b[11]]) }
    }
}

impl<E: Entry> Index<E> {
    /// A new segment's index, holding at most `max_bytes` (segment.index.bytes) of entries. No file
    /// is created here (see the module docs): the first [`Index::flush`] with entries, or
    /// [`Index::persist`], writes it.
    pub(crate) fn lazy(storage: &Arc<dyn Storage>, path: &Path, max_bytes: u32) -> Self {
        let max_entries = (max_bytes as usize / E::SIZE).max(1);
        Index {
            storage: Arc::clone(storage),
            path: path.to_path_buf(),
            entries: Vec::new(),
            max_entries,
            entry_size: E::SIZE,
            dirty: false,
            on_disk: false,
        }
    }

    /// An index to be rebuilt (recovery) over a file that may exist and hold anything: the next
    /// [`Index::flush`] rewrites it with the rebuilt entries and cuts it to them. Touches no file.
    pub(crate) fn create(storage: &Arc<dyn Storage>, path: &Path, max_bytes: u32) -> Result<Self> {
        Ok(Index { dirty: true, on_disk: true, ..Self::lazy(storage, path, max_bytes) })
    }

    /// Reads an existing (trimmed) index file's entries; `None` when the file is missing or not a
    /// whole number of entries. The entries are not validated here: the caller's sanity check decides
    /// whether to rebuild.
    pub(crate) fn load(storage: &Arc<dyn Storage>, path: &Path, max_bytes: u32) -> Result<Option<Self>> {
        let file = match storage.open_as(path, Access::ReadOnly) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open index", path, e)),
        };
        let bytes = read_all(&**storage, file);
        storage.close(file);
        let bytes = bytes.map_err(|e| Error::io("read index", path, e))?;
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let max_entries = (max_bytes as usize / E::SIZE).max(1).max(entries.len());
        Ok(Some(Index {
            storage: Arc::clone(storage),
            path: path.to_path_buf(),
            entries,
            max_entries,
            entry_size: E::SIZE,
            dirty: false,
            on_disk: true,
        }))
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Whether no entry fits any more (Kafka rolls the segment then).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// Adds an entry (written to the file by the next [`Index::flush`]).
    pub(crate) fn append(&mut self, entry: E) {
        if self.is_full() {
            return;
        }
        self.entries.push(entry);
        self.dirty = true;
    }

    /// Writes the entries and cuts the file to them (close), unless the file already holds exactly
    /// them, or it was never created and there is nothing to write. Opens the file for the write only.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if !self.dirty || (!self.on_disk && self.entries.is_empty()) {
            return Ok(());
        }
        self.write()
    }

    /// [`Index::flush`], creating the file even without entries (roll: a reopened log trusts an
    /// inactive segment only with both index files present).
    pub(crate) fn persist(&mut self) -> Result<()> {
        if !self.dirty && self.on_disk {
            return Ok(());
        }
        self.write()
    }

    fn write(&mut self) -> Result<()> {
        let mut bytes = vec![0u8; self.entries.len() * self.entry_size];
        for (e, out) in self.entries.iter().zip(bytes.chunks_exact_mut(self.entry_size)) {
            e.encode(out);
        }
        // Written over the old bytes, then cut: never an empty file in between.
        let storage = &*self.storage;
        let file = match storage.open(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => storage.create(&self.path),
            opened => opened,
        }
        .map_err(|e| Error::io("open index", &self.path, e))?;
        let written =
            storage.write_at(file, 0, &[&bytes]).map_err(|e| Error::io("write index", &self.path, e)).and_then(|()| {
                storage.set_len(file, bytes.len() as u64).map_err(|e| Error::io("trim index", &self.path, e))
            });
        storage.close(file);
        written?;
        self.dirty = false;
        self.on_disk = true;
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The whole of an open file.
fn read_all(storage: &dyn Storage, file: FileHandle) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; storage.len(file)? as usize];
    let n = storage.read_at(file, 0, &mut bytes)?;
    bytes.truncate(n);
    Ok(bytes)
}

impl Index<OffsetEntry> {
    /// Position to start scanning for `relative_offset`: the entry with the largest offset at or below
    /// it, else the segment's start.
    pub(crate) fn lookup(&self, relative_offset: i32) -> u32 {
        let i = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 { 0 } else { self.entries[i - 1].position as u32 }
    }
}

impl Index<TimeEntry> {
    /// Relative offset to start scanning for the first record with timestamp >= `timestamp`.
    pub(crate) fn lookup(&self, timestamp: i64) -> i32 {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        if i == 0 { 0 } else { self.entries[i - 1].relative_offset }
    }
}
