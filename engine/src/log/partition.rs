//! One partition's log: its segments, offsets and producer state.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::LogConfig;
use super::producer_state::{ProducerState, SequenceCheck};
use super::segment::{Segment, scan};
use crate::error::{Error, Result};
use crate::record::{BatchHeader, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, set_base_offset, set_partition_leader_epoch};

/// A batch placed in the log but not yet written.
#[derive(Debug)]
pub(crate) struct Placed {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub segment_base: i64,
    pub position: u64,
    pub header: BatchHeader,
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
    pub name: String,
    dir: PathBuf,
    config: LogConfig,
    segments: Vec<Segment>,
    /// Next offset to assign.
    next_offset: i64,
    /// Offset after the last written (readable, acknowledgeable) batch.
    pub high_watermark: i64,
    pub log_start_offset: i64,
    producers: ProducerState,
    pub unflushed_records: u64,
}

impl PartitionLog {
    /// Opens `dir` (creating it), recovering existing segments: the last one is validated batch by
    /// batch and cut at a torn or corrupt tail; every segment's indexes are rebuilt.
    pub(crate) fn open(dir: PathBuf, name: String, config: LogConfig, now_ms: i64) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create partition directory", &dir, e))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list partition directory", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("list partition directory", &dir, e))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".log")) else { continue };
            if stem.len() == 20
                && let Ok(base) = stem.parse::<i64>()
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut producers = ProducerState::default();
        for (i, base) in bases.iter().enumerate() {
            let (segment, problem) = Segment::recover(&dir, *base, &config, now_ms)?;
            if let Some(p) = problem {
                log::warn!("recovery: {p}");
                // Kafka deletes every later segment after a truncation: they cannot follow a hole.
                segments.push(segment);
                for later in &bases[i + 1..] {
                    let (s, _) = Segment::recover(&dir, *later, &config, now_ms)?;
                    log::warn!("recovery: deleting {} after the truncation", s.path.display());
                    s.delete()?;
                }
                break;
            }
            segments.push(segment);
        }
        if let Some(last) = segments.last() {
            let (batches, _, _) = scan(&last.file, &last.path, 0, last.size)?;
            for b in batches {
                producers.update(&b.header);
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0, &config, now_ms)?);
        }
        let next_offset = segments.last().map_or(0, |s| s.next_offset);
        let log_start_offset = segments.first().map_or(0, |s| s.base_offset);
        Ok(PartitionLog {
            name,
            dir,
            config,
            segments,
            next_offset,
            high_watermark: next_offset,
            log_start_offset,
            producers,
            unflushed_records: 0,
        })
    }

    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has an active segment")
    }

    /// Assigns offsets and a file position to `batch` (rolling first when Kafka would), stamping its
    /// baseOffset and partitionLeaderEpoch. The bytes are not written yet.
    pub(crate) fn place(&mut self, batch: &mut [u8], now_ms: i64) -> Result<Placement> {
        let header = BatchHeader::parse(batch, 0, usize::MAX)?;
        if header.size_in_bytes() != batch.len() {
            return Err(Error::config(
                "batch",
                format!("{}: batchLength says {} bytes, got {}", self.name, header.size_in_bytes(), batch.len()),
            ));
        }
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
        let roll = self.segments.last().expect("active segment").should_roll(
            batch.len() as u64,
            last_offset,
            &self.config,
            now_ms,
        );
        if roll {
            self.roll(base_offset, now_ms)?;
        }
        set_base_offset(batch, base_offset);
        set_partition_leader_epoch(batch, 0);
        let header = BatchHeader { base_offset, partition_leader_epoch: 0, ..header };
        self.producers.update(&header);
        self.next_offset = last_offset + 1;
        let active = self.active();
        let position = active.reserved;
        active.reserved += batch.len() as u64;
        Ok(Placement::Write(Placed {
            file: Arc::clone(&active.file),
            path: active.path.clone(),
            segment_base: active.base_offset,
            position,
            header,
        }))
    }

    fn roll(&mut self, base_offset: i64, now_ms: i64) -> Result<()> {
        self.active().trim_indexes()?;
        let segment = Segment::create(&self.dir, base_offset, &self.config, now_ms)?;
        self.segments.push(segment);
        Ok(())
    }

    /// The write of `placed` completed: make it readable and index it.
    pub(crate) fn commit(&mut self, placed: &Placed) -> Result<()> {
        let interval = self.config.index_interval_bytes;
        let segment = self
            .segments
            .iter_mut()
            .rev()
            .find(|s| s.base_offset == placed.segment_base)
            .expect("a placed batch's segment exists until retention, which never takes the active one");
        segment.record_append(placed.position, &placed.header, interval)?;
        segment.size = placed.position + placed.header.size_in_bytes() as u64;
        self.high_watermark = placed.header.last_offset() + 1;
        self.unflushed_records += placed.header.records_count as u64;
        Ok(())
    }

    /// The write of `placed` failed: forget it and everything placed after it, cut the file back to
    /// the last good batch, so the log stays readable and offsets stay contiguous.
    pub(crate) fn rollback(&mut self, placed: &Placed) {
        self.next_offset = self.next_offset.min(placed.header.base_offset);
        if let Some(seg) = self.segments.iter_mut().rev().find(|s| s.base_offset == placed.segment_base) {
            // Commits run in placement order, so nothing after this position was made readable.
            seg.reserved = placed.position;
            if let Err(e) = seg.file.set_len(placed.position) {
                log::warn!(
                    "{}: could not cut {} back to {} bytes: {e}",
                    self.name,
                    seg.path.display(),
                    placed.position
                );
            }
        }
        // Producer state: rebuild from what is really in the active segment.
        let mut producers = ProducerState::default();
        if let Some(last) = self.segments.last()
            && let Ok((batches, _, _)) = scan(&last.file, &last.path, 0, last.size)
        {
            for b in batches {
                producers.update(&b.header);
            }
        }
        self.producers = producers;
    }

    /// Files with unflushed data (the active segment and any rolled since the last flush).
    pub(crate) fn files_to_sync(&self) -> Vec<Arc<File>> {
        self.segments.iter().rev().take(2).map(|s| Arc::clone(&s.file)).collect()
    }

    /// Reads whole batches from the one holding `offset`: at least one, then up to `max_bytes`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Result<(Vec<u8>, i64)> {
        if offset >= self.high_watermark || offset < self.log_start_offset {
            return Ok((Vec::new(), offset));
        }
        let idx = self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        for segment in &self.segments[idx..] {
            let Some(start) = segment.find_position(offset.max(segment.base_offset))? else { continue };
            let mut end = start;
            let mut first = None;
            let mut header = [0u8; RECORD_BATCH_OVERHEAD];
            while end + RECORD_BATCH_OVERHEAD as u64 <= segment.size {
                segment
                    .file
                    .read_exact_at(&mut header, end)
                    .map_err(|e| Error::io("read segment", &segment.path, e))?;
                let h = BatchHeader::parse(&header, end, usize::MAX)?;
                let size = (LOG_OVERHEAD + h.batch_length as usize) as u64;
                if first.is_some() && (end + size - start) as usize > max_bytes {
                    break;
                }
                first.get_or_insert(h.base_offset);
                end += size;
            }
            let mut bytes = vec![0u8; (end - start) as usize];
            segment.file.read_exact_at(&mut bytes, start).map_err(|e| Error::io("read segment", &segment.path, e))?;
            return Ok((bytes, first.unwrap_or(offset)));
        }
        Ok((Vec::new(), offset))
    }

    /// The offset of the first batch whose max timestamp is >= `timestamp` (ListOffsets by time).
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        for segment in &self.segments {
            if segment.max_timestamp < timestamp || segment.size == 0 {
                continue;
            }
            let from_rel = segment.time_index.lookup(timestamp);
            let from = segment.find_position(segment.base_offset + i64::from(from_rel))?.unwrap_or(0);
            let (batches, _, _) = scan(&segment.file, &segment.path, from, segment.size)?;
            if let Some(b) = batches.iter().find(|b| b.header.max_timestamp >= timestamp) {
                return Ok(Some(b.header.base_offset));
            }
        }
        Ok(None)
    }

    /// Deletes whole segments past retention.ms / retention.bytes, never the active one.
    pub(crate) fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        let mut total: i64 = self.segments.iter().map(|s| s.size as i64).sum();
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let by_time = self.config.retention_ms.is_some_and(|ms| ms >= 0 && now_ms - oldest.max_timestamp > ms);
            let by_size = self.config.retention_bytes.is_some_and(|b| b >= 0 && total - b >= oldest.size as i64);
            if !(by_time || by_size) {
                break;
            }
            let segment = self.segments.remove(0);
            total -= segment.size as i64;
            segment.delete()?;
            deleted += 1;
        }
        self.log_start_offset = self.segments[0].base_offset;
        Ok(deleted)
    }

    /// Trims the indexes of the active segment (close).
    pub(crate) fn close(&mut self) -> Result<()> {
        self.active().trim_indexes()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}
