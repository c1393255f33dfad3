//! One partition's log: its segments, offsets, producer state and what awaits an fsync.
//!
//! The I/O thread changes it in two steps per batch: [`PartitionLog::place`] assigns offsets and a
//! file position (rolling first when Kafka would) before the write; [`PartitionLog::commit`] makes
//! the batch written once its write completed, and readable then or, when it waits for an fsync
//! (flush.messages), when [`PartitionLog::expose`] is called after the fsync. A failed write takes
//! the directory offline instead of undoing anything (`offline.rs`). Opening lives in
//! `recovery.rs`, reading in `reader.rs`, retention in `retention.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::LogConfig;
use super::producer_state::{ProducerState, SequenceCheck};
use super::segment::Segment;
use crate::error::{Error, Result};
use crate::io::IoBackendKind;
use crate::io::storage::{Access, OpenFile, Storage};
use crate::record::{
    BatchHeader, TimestampType, compute_crc, finish_crc, offsets, set_base_offset, set_partition_leader_epoch,
};

/// A batch placed in the log but not yet written.
#[derive(Debug)]
pub(crate) struct Placed {
    /// The file to write through (O_DIRECT when direct_io is on).
    pub file: Arc<OpenFile>,
    pub path: PathBuf,
    pub segment_base: i64,
    pub position: u64,
    pub header: BatchHeader,
    /// The log append time when the batch uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// A file an fsync must cover, with its path for the error if the fsync fails. `file` is the
/// open file of the segment being written; without one (the directory, a segment rolled since)
/// the I/O thread opens `path` through the log's storage for the fsync and closes it after, so that
/// no descriptor is held for it meanwhile (an fdatasync through any descriptor of a file covers
/// every write to it).
#[derive(Debug)]
pub(crate) struct SyncTarget {
    pub file: Option<Arc<OpenFile>>,
    pub path: PathBuf,
    storage: Arc<dyn Storage>,
    /// `path` is the partition's directory: its fsync makes new entries durable.
    dir: bool,
}

impl SyncTarget {
    /// A segment file to fsync, through `file` if held.
    pub(crate) fn file(storage: &Arc<dyn Storage>, file: Option<Arc<OpenFile>>, path: &Path) -> Self {
        SyncTarget { file, path: path.to_path_buf(), storage: Arc::clone(storage), dir: false }
    }

    /// What to fsync through: the held file, else `path` opened read-only (a directory, as one).
    pub(crate) fn open(&self) -> Result<Arc<OpenFile>> {
        match &self.file {
            Some(f) => Ok(Arc::clone(f)),
            None => {
                let access = if self.dir { Access::Directory } else { Access::ReadOnly };
                OpenFile::open(&self.storage, &self.path, access)
                    .map_err(|e| Error::io("open for fdatasync", &self.path, e))
            }
        }
    }
}

/// What the log decided for an incoming batch.
#[derive(Debug)]
pub(crate) enum Placement {
    Write(Placed),
    Duplicate { base_offset: i64, last_offset: i64 },
}

/// A partition's log.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    /// Where the log's files live (`io/storage.rs`).
    pub(super) storage: Arc<dyn Storage>,
    pub name: String,
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    pub(super) segments: Vec<Segment>,
    /// Next offset to assign.
    pub(super) next_offset: i64,
    /// Offset after the last readable batch: the last written one, or, when batches wait for an
    /// fsync, the last one whose fsync succeeded (Kafka moves the high watermark after the flush).
    pub high_watermark: i64,
    /// Offset after the last written batch (>= high_watermark).
    pub(super) written_end: i64,
    pub log_start_offset: i64,
    /// The partitionLeaderEpoch stamped on batches placed as leader (0 without replication).
    pub leader_epoch: i32,
    /// partitionLeaderEpoch of the last batch written (-1 when empty): a follower's truncation point
    /// is looked up by it (KIP-101).
    pub last_epoch: i32,
    pub(super) producers: ProducerState,
    /// Records written since the last fsync was started (flush.messages counts these).
    pub unflushed_records: u64,
    /// Files written since the last fsync was started (a roll leaves two), plus the directory after
    /// a segment was created (its new entry must be durable too).
    pub(super) unsynced: Vec<SyncTarget>,
    /// The directory's fsync is due (a segment was created in it); it is opened for that fsync only.
    pub(super) dir_unsynced: bool,
    /// Changes whenever a file a reader may have a view of is deleted, cut or replaced (retention,
    /// truncation; a reopened log has a new one): a read whose partition changed generation during
    /// its disk reads starts again (`reader.rs`).
    pub(crate) generation: u64,
    /// Test hook: the next read stops where its disk reads begin until the test lets it go.
    #[cfg(test)]
    pub(crate) read_gate: Option<super::reader::ReadGate>,
}

impl PartitionLog {
    pub(super) fn from_segments(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        name: String,
        config: LogConfig,
        segments: Vec<Segment>,
        producers: ProducerState,
    ) -> Self {
        let next_offset = segments.last().map_or(0, |s| s.next_offset);
        let log_start_offset = segments.first().map_or(0, |s| s.base_offset);
        PartitionLog {
            storage,
            name,
            dir,
            config,
            segments,
            next_offset,
            high_watermark: next_offset,
            written_end: next_offset,
            log_start_offset,
            leader_epoch: 0,
            last_epoch: -1,
            producers,
            unflushed_records: 0,
            unsynced: Vec::new(),
            // The first fsync after opening also covers the directory: opening may have created it
            // and the first segment.
            dir_unsynced: true,
            generation: super::reader::next_generation(),
            #[cfg(test)]
            read_gate: None,
        }
    }

    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has an active segment")
    }

    /// Validates `batch` as a broker does (size, magic, CRC, producer sequence), assigns its offsets
    /// and file position (rolling first when Kafka would), and stamps baseOffset,
    /// partitionLeaderEpoch and, under LogAppendTime, maxTimestamp. The bytes are not written yet.
    pub(crate) fn place(&mut self, batch: &mut [u8], now_ms: i64) -> Result<Placement> {
        let header = self.validate(batch)?;
        match self.producers.check(&header) {
            SequenceCheck::Append => {}
            SequenceCheck::Duplicate { base_offset, last_offset } => {
                return Ok(Placement::Duplicate { base_offset, last_offset });
            }
            SequenceCheck::OutOfOrder { expected } => {
                return Err(Error::OutOfOrderSequence {
                    partition: self.name.clone(),
                    producer_id: header.producer_id,
                    expected,
                    received: header.base_sequence,
                });
            }
        }
        let base_offset = self.next_offset;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let active = self.segments.last().expect("active segment");
        if active.should_roll(batch.len() as u64, last_offset, &self.config, now_ms) {
            self.roll(base_offset, now_ms)?;
        }
        set_base_offset(batch, base_offset);
        set_partition_leader_epoch(batch, self.leader_epoch);
        let mut header = BatchHeader { base_offset, partition_leader_epoch: self.leader_epoch, ..header };
        let mut log_append_time_ms = -1;
        if header.attributes.timestamp_type == TimestampType::LogAppendTime {
            // As Kafka's LogValidator: the broker's clock becomes the batch's maxTimestamp; CRC redone.
            batch[offsets::MAX_TIMESTAMP..][..8].copy_from_slice(&now_ms.to_be_bytes());
            finish_crc(batch);
            header.max_timestamp = now_ms;
            log_append_time_ms = now_ms;
        }
        self.producers.update(&header);
        Ok(Placement::Write(self.reserve(header, batch.len(), log_append_time_ms)))
    }

    /// Places a batch fetched from the leader as a follower does (Kafka's appendAsFollower): validated
    /// (size, CRC), its baseOffset must be the next offset, and the leader's stamps are kept.
    pub(crate) fn place_as_follower(&mut self, batch: &mut [u8], now_ms: i64) -> Result<Placement> {
        let header = self.validate(batch)?;
        if header.base_offset != self.next_offset {
            return Err(Error::config(
                "replication",
                format!(
                    "{}: a follower append starts at offset {} but the log ends at {}",
                    self.name, header.base_offset, self.next_offset
                ),
            ));
        }
        let last_offset = header.last_offset();
        let active = self.segments.last().expect("active segment");
        if active.should_roll(batch.len() as u64, last_offset, &self.config, now_ms) {
            self.roll(header.base_offset, now_ms)?;
        }
        self.producers.update(&header);
        let log_append_time_ms =
            if header.attributes.timestamp_type == TimestampType::LogAppendTime { header.max_timestamp } else { -1 };
        Ok(Placement::Write(self.reserve(header, batch.len(), log_append_time_ms)))
    }

    /// Size and CRC checks every appended batch passes.
    fn validate(&self, batch: &[u8]) -> Result<BatchHeader> {
        let header = BatchHeader::parse(batch, 0, usize::MAX)?;
        if header.size_in_bytes() != batch.len() {
            return Err(Error::config(
                "batch",
                format!("{}: batchLength says {} bytes, got {}", self.name, header.size_in_bytes(), batch.len()),
            ));
        }
        let crc = compute_crc(batch);
        if crc != header.crc {
            return Err(Error::CorruptBatch {
                position: 0,
                reason: crate::Corruption::CrcMismatch { stored: header.crc, computed: crc },
            });
        }
        Ok(header)
    }

    /// Takes the next offsets and the active segment's next position for a validated batch.
    fn reserve(&mut self, header: BatchHeader, len: usize, log_append_time_ms: i64) -> Placed {
        self.next_offset = header.last_offset() + 1;
        let active = self.active();
        let position = active.reserved;
        active.reserved += len as u64;
        Placed {
            file: Arc::clone(active.write_file()),
            path: active.path.clone(),
            segment_base: active.base_offset,
            position,
            header,
            log_append_time_ms,
        }
    }

    pub(super) fn roll(&mut self, base_offset: i64, now_ms: i64) -> Result<()> {
        self.active().seal()?;
        if self.config.preallocate && !self.config.direct_io {
            // Buffered writes in flight all lie below `reserved`: the preallocated rest can go now.
            // (O_DIRECT pads past it; the pipeline trims once those writes completed.)
            let base = self.active().base_offset;
            self.trim_padding(base)?;
        }
        // The old segment's descriptor goes (writes in flight hold their own); a pending fsync of it
        // opens it again.
        let old = self.active();
        old.deactivate()?;
        let old_path = old.path.clone();
        for t in &mut self.unsynced {
            if t.path == old_path {
                t.file = None;
            }
        }
        let segment = Segment::create(&self.storage, &self.dir, base_offset, &self.config, now_ms)?;
        self.segments.push(segment);
        self.dir_unsynced = true;
        Ok(())
    }

    /// The write of `placed` completed: index it, and make it readable when `visible` (else it
    /// waits for [`PartitionLog::expose`] after the fsync that covers it).
    pub(crate) fn commit(&mut self, placed: &Placed, visible: bool) -> Result<()> {
        let interval = self.config.index_interval_bytes;
        let active = self.segments.last().is_some_and(|s| s.base_offset == placed.segment_base);
        let Some(segment) = self.segments.iter_mut().rev().find(|s| s.base_offset == placed.segment_base) else {
            return Err(Error::io(
                "commit a write",
                &placed.path,
                std::io::Error::other("the segment is gone (deleted while the write was in flight)"),
            ));
        };
        if self.config.io == IoBackendKind::Discard {
            // Nothing reaches the disk with `discard`, index files included.
            segment.next_offset = placed.header.last_offset() + 1;
        } else {
            segment.record_append(placed.position, &placed.header, interval);
        }
        segment.size = placed.position + placed.header.size_in_bytes() as u64;
        self.written_end = placed.header.last_offset() + 1;
        if visible {
            self.high_watermark = self.written_end;
        }
        self.last_epoch = placed.header.partition_leader_epoch;
        self.unflushed_records += placed.header.records_count.max(0) as u64;
        let pending = self.unsynced.iter().any(|t| match &t.file {
            Some(f) => Arc::ptr_eq(f, &placed.file),
            None => t.path.as_os_str() == placed.path.as_os_str(),
        });
        if !pending {
            // A write to a segment rolled since holds no descriptor for its fsync.
            let file = active.then(|| Arc::clone(&placed.file));
            self.unsynced.push(SyncTarget::file(&self.storage, file, &placed.path));
        }
        Ok(())
    }

    /// The fsync covering every batch before `end` succeeded: they become readable.
    pub(crate) fn expose(&mut self, end: i64) {
        self.high_watermark = self.high_watermark.max(end.min(self.written_end));
    }

    /// Takes the files an fsync must cover now (and resets the flush.messages count): the segments
    /// written since the last sync and, after a roll, the directory.
    pub(crate) fn take_unsynced(&mut self) -> Vec<SyncTarget> {
        self.unflushed_records = 0;
        let mut files = std::mem::take(&mut self.unsynced);
        if self.dir_unsynced {
            self.dir_unsynced = false;
            files.push(SyncTarget {
                file: None,
                path: self.dir.clone(),
                storage: Arc::clone(&self.storage),
                dir: true,
            });
        }
        files
    }

    /// How many descriptors [`PartitionLog::take_unsynced`]'s targets would open for their fsync.
    pub(crate) fn unsynced_to_open(&self) -> usize {
        self.unsynced.iter().filter(|t| t.file.is_none()).count() + usize::from(self.dir_unsynced)
    }

    /// Whether anything written is not covered by an fsync started since.
    pub(crate) fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty() || self.dir_unsynced
    }

    /// The active segment's base offset and logical size (the O_DIRECT writer pads and must trim).
    pub(crate) fn active_segment(&self) -> (i64, u64) {
        let s = self.segments.last().expect("active segment");
        (s.base_offset, s.reserved)
    }

    /// Cuts `segment_base`'s file to its logical size (preallocation, O_DIRECT block padding).
    pub(crate) fn trim_padding(&self, segment_base: i64) -> Result<()> {
        if let Some(s) = self.segments.iter().find(|s| s.base_offset == segment_base)
            && s.file_len()? > s.reserved
        {
            s.truncate_file(s.reserved, "trim preallocated segment")?;
        }
        Ok(())
    }

    /// Writes the active segment's indexes, trimmed to their entries (close).
    pub(crate) fn close(&mut self) -> Result<()> {
        let active = self.active();
        active.offset_index.flush()?;
        active.time_index.flush()
    }
}
