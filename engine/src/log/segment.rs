//! One segment: `<base offset>.log` with its `.index` and `.timeindex`.
//!
//! Every file operation goes through the log's [`Storage`] (`io/storage.rs`). Descriptors: only
//! the active segment holds an open file, for its writes (the O_DIRECT one when direct_io is on,
//! else the read-write one); index files hold none (see `index.rs`). Reads of a segment without an
//! open file (an inactive one, or the active one under direct_io) open it read-only for the read
//! and close it after ([`open_reader`]). A write still in flight, and a read running without the
//! partition's lock (`reader.rs`), keep their own `Arc` of the [`OpenFile`], so dropping the
//! segment's never closes a file the kernel is writing or reading through.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::LogConfig;
use super::index::{Index, OffsetEntry, TimeEntry};
use crate::error::{Error, Result};
use crate::io::storage::{Access, OpenFile, Storage};
use crate::record::{BatchHeader, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};

/// Kafka's file name for a segment file: the base offset, 20 digits, zero padded.
pub(crate) fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// A segment of a partition's log.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The log's storage (every file operation).
    storage: Arc<dyn Storage>,
    pub base_offset: i64,
    pub path: PathBuf,
    /// The read-write file: held by the active segment without direct_io.
    file: Option<Arc<OpenFile>>,
    /// The O_DIRECT write-only file of the active segment when `direct_io` is on.
    direct: Option<Arc<OpenFile>>,
    /// Bytes written and readable.
    pub size: u64,
    /// Bytes handed to the I/O thread's pipeline (>= size while writes are in flight).
    pub reserved: u64,
    pub offset_index: Index<OffsetEntry>,
    pub time_index: Index<TimeEntry>,
    pub(super) bytes_since_index_entry: u64,
    pub max_timestamp: i64,
    pub(super) offset_of_max_timestamp: i64,
    /// Offset after the last record written.
    pub next_offset: i64,
    /// Wall-clock ms of the segment's creation (segment.ms counts from here).
    pub created_ms: i64,
}

/// Opens an existing segment file for reading and writing.
pub(crate) fn open_read_write(storage: &Arc<dyn Storage>, path: &Path) -> Result<Arc<OpenFile>> {
    OpenFile::open(storage, path, Access::ReadWrite).map_err(|e| Error::io("open segment", path, e))
}

/// Opens `path` for O_DIRECT writes.
fn open_direct(storage: &Arc<dyn Storage>, path: &Path) -> Result<Arc<OpenFile>> {
    OpenFile::open(storage, path, Access::DirectWrite)
        .map_err(|e| Error::io("open segment with O_DIRECT (direct_io)", path, e))
}

impl Segment {
    /// A new, empty segment starting at `base_offset`.
    pub(crate) fn create(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenFile::create(storage, &path).map_err(|e| Error::io("create segment", &path, e))?;
        if config.preallocate {
            preallocate(&file, &path, config.segment_bytes)?;
        }
        // The index files are created when first written (see `index.rs`).
        let offset_index = Index::lazy(storage, &dir.join(file_name(base_offset, "index")), config.segment_index_bytes);
        let time_index =
            Index::lazy(storage, &dir.join(file_name(base_offset, "timeindex")), config.segment_index_bytes);
        let mut segment = Self::with(storage, path, base_offset, offset_index, time_index, now_ms);
        // The created file is read-write: the active segment keeps it without direct_io.
        if !config.direct_io {
            segment.file = Some(file);
        }
        segment.activate(config)?;
        Ok(segment)
    }

    /// A segment over a `.log` file and its indexes, with no batches accounted yet and no file held
    /// ([`Segment::activate`] opens the one writes go through).
    pub(super) fn with(
        storage: &Arc<dyn Storage>,
        path: PathBuf,
        base_offset: i64,
        offset_index: Index<OffsetEntry>,
        time_index: Index<TimeEntry>,
        now_ms: i64,
    ) -> Self {
        Segment {
            storage: Arc::clone(storage),
            base_offset,
            file: None,
            direct: None,
            size: 0,
            reserved: 0,
            offset_index,
            time_index,
            path,
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            created_ms: now_ms,
        }
    }

    /// The segment becomes the one written: with direct_io its O_DIRECT handle replaces the
    /// buffered one (one descriptor per active segment either way).
    pub(super) fn activate(&mut self, config: &LogConfig) -> Result<()> {
        if config.direct_io && self.direct.is_none() {
            self.direct = Some(open_direct(&self.storage, &self.path)?);
            self.file = None;
        } else if !config.direct_io && self.file.is_none() {
            self.file = Some(open_read_write(&self.storage, &self.path)?);
        }
        Ok(())
    }

    /// The segment is no longer written: its index files are written out and its handles dropped
    /// (reads reopen it). Writes still in flight keep their own handle.
    pub(super) fn deactivate(&mut self) -> Result<()> {
        self.offset_index.persist()?;
        self.time_index.persist()?;
        self.file = None;
        self.direct = None;
        Ok(())
    }

    /// The file writes go through (the active segment's).
    pub(crate) fn write_file(&self) -> &Arc<OpenFile> {
        self.direct.as_ref().or(self.file.as_ref()).expect("the active segment holds a write handle")
    }

    /// A file to read through: the segment's own, else the file opened read-only for this read.
    pub(crate) fn reader(&self) -> Result<Arc<OpenFile>> {
        match self.read_handle() {
            Some(f) => Ok(f),
            None => open_reader(&self.storage, &self.path),
        }
    }

    /// The buffered file the segment holds (the active one without direct_io), if any.
    pub(crate) fn read_handle(&self) -> Option<Arc<OpenFile>> {
        self.file.clone()
    }

    /// The log's storage.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Where to start scanning for the batch holding `offset`: the sparse offset index's position
    /// at or below it (0 without an entry), within the written size.
    pub(crate) fn index_hint(&self, offset: i64) -> u64 {
        let relative = (offset - self.base_offset).clamp(0, i64::from(i32::MAX)) as i32;
        u64::from(self.offset_index.lookup(relative)).min(self.size)
    }

    /// ftruncate of the segment file to `len` bytes, through a file it holds or by opening it.
    pub(crate) fn truncate_file(&self, len: u64, operation: &'static str) -> Result<()> {
        let file = match self.file.as_ref().or(self.direct.as_ref()) {
            Some(f) => Arc::clone(f),
            None => open_read_write(&self.storage, &self.path)?,
        };
        file.set_len(len).map_err(|e| Error::io(operation, &self.path, e))
    }

    /// The segment file's length on disk (preallocation and O_DIRECT padding included).
    pub(crate) fn file_len(&self) -> Result<u64> {
        let file = match self.file.as_ref().or(self.direct.as_ref()) {
            Some(f) => Arc::clone(f),
            None => open_reader(&self.storage, &self.path)?,
        };
        file.len().map_err(|e| Error::io("stat segment", &self.path, e))
    }

    /// Whether a batch of `batch_len` bytes must go to a new segment (Kafka's shouldRoll).
    pub(crate) fn should_roll(&self, batch_len: u64, last_offset: i64, config: &LogConfig, now_ms: i64) -> bool {
        if self.reserved == 0 {
            return false;
        }
        self.reserved > config.segment_bytes.saturating_sub(batch_len)
            || now_ms - self.created_ms > config.segment_ms as i64
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > i64::from(i32::MAX)
    }

    /// Bookkeeping after a batch at `position` was written: sparse index entries every
    /// index.interval.bytes (LogSegment.append), timestamps, next offset.
    pub(crate) fn record_append(&mut self, position: u64, header: &BatchHeader, interval: u32) {
        let last_offset = header.last_offset();
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if self.bytes_since_index_entry > u64::from(interval) {
            self.offset_index.append(OffsetEntry {
                relative_offset: (last_offset - self.base_offset) as i32,
                position: position as i32,
            });
            let newer = self.time_index.last().is_none_or(|t| self.max_timestamp > t.timestamp);
            if newer {
                self.time_index.append(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: (self.offset_of_max_timestamp - self.base_offset) as i32,
                });
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.size_in_bytes() as u64;
        self.next_offset = last_offset + 1;
    }

    /// The segment stops being active: a last time index entry for its largest timestamp (so
    /// retention.ms finds it after a restart, as Kafka's onBecomeInactiveSegment ensures), and both
    /// index files written and trimmed to their entries.
    pub(crate) fn seal(&mut self) -> Result<()> {
        if self.max_timestamp >= 0 && self.time_index.last().is_none_or(|t| self.max_timestamp > t.timestamp) {
            self.time_index.append(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: (self.offset_of_max_timestamp - self.base_offset) as i32,
            });
        }
        self.offset_index.persist()?;
        self.time_index.persist()
    }

    /// Removes the segment's three files (retention).
    pub(crate) fn delete(self) -> Result<()> {
        for p in [self.path.as_path(), self.offset_index.path(), self.time_index.path()] {
            match self.storage.remove(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete segment file", p, e)),
            }
        }
        Ok(())
    }
}

/// Opens a segment file read-only for a read (the real filesystem asks for sequential readahead).
pub(crate) fn open_reader(storage: &Arc<dyn Storage>, path: &Path) -> Result<Arc<OpenFile>> {
    OpenFile::open(storage, path, Access::ReadOnly).map_err(|e| Error::io("open segment", path, e))
}

/// The position of the batch holding `offset` (the first whose last offset is at or past it) in a
/// segment `file` of `size` written bytes, scanning batch headers forward from `from` (a batch
/// start, as the offset index gives); `None` when every batch there ends before `offset`.
pub(crate) fn find_position(file: &OpenFile, path: &Path, from: u64, size: u64, offset: i64) -> Result<Option<u64>> {
    let mut pos = from.min(size);
    let mut header = [0u8; RECORD_BATCH_OVERHEAD];
    while pos + RECORD_BATCH_OVERHEAD as u64 <= size {
        file.read_exact_at(&mut header, pos).map_err(|e| Error::io("read segment", path, e))?;
        let h = BatchHeader::parse(&header, pos, usize::MAX)?;
        if h.last_offset() >= offset {
            return Ok(Some(pos));
        }
        pos += (LOG_OVERHEAD + h.batch_length as usize) as u64;
    }
    Ok(None)
}

fn preallocate(file: &OpenFile, path: &Path, bytes: u64) -> Result<()> {
    // Mode 0 allocates the blocks and sets the file length, as Kafka's preallocate does: writes
    // inside the length are not extending writes, which ext4 must otherwise serialise (an O_DIRECT
    // write past EOF waits for the one before it). The zeros past the data are cut on roll and close,
    // and by recovery after a crash.
    match file.allocate(bytes) {
        // Filesystems without fallocate just skip the optimisation.
        Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => Err(Error::io("preallocate segment", path, e)),
        _ => Ok(()),
    }
}
