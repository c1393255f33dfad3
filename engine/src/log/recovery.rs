//! Opening a partition's log: Kafka's LogLoader and LogSegment.recover.
//!
//! Every segment but the last is trusted when its indexes pass a sanity check and the whole file
//! holds whole, CRC-valid batches ending where the next segment begins; otherwise it is recovered
//! like the active one. (Checking only the tail after the last index entry missed a hole torn by a
//! power loss earlier in an unsynced inactive segment; the simulation test found it. Kafka skips the
//! segments below its recovery-point checkpoint instead, which this log does not keep yet.) The active (last) segment is
//! always recovered: every batch validated (size, magic, CRC), the file cut at the first partial or
//! invalid batch, both indexes rebuilt. After a cut every later segment is deleted: they would follow
//! a hole (Kafka does the same).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::LogConfig;
use super::index::{Index, OffsetEntry, TimeEntry};
use super::partition::PartitionLog;
use super::producer_state::ProducerState;
use super::segment::{Segment, file_name, open_read_write, open_reader};
use crate::error::{Error, Result};
use crate::io::storage::{OpenFile, Storage};
use crate::record::{BatchHeader, RECORD_BATCH_OVERHEAD, compute_crc};

/// A batch found by scanning a segment file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
}

/// Walks the batches of `file` from `from` up to `limit` bytes, validating size, magic and CRC, and
/// returns them with the end of the last valid one. Stops at the first partial or invalid batch.
pub(crate) fn scan(
    file: &OpenFile,
    path: &Path,
    from: u64,
    limit: u64,
) -> Result<(Vec<ScannedBatch>, u64, Option<String>)> {
    scan_checked(file, path, from, limit, true)
}

/// [`scan`], checking each batch's CRC only when `check_crc` (always, but for a bug the simulation
/// test plants: see [`LogConfig::recovery_checks_crc`]).
fn scan_checked(
    file: &OpenFile,
    path: &Path,
    from: u64,
    limit: u64,
    check_crc: bool,
) -> Result<(Vec<ScannedBatch>, u64, Option<String>)> {
    let mut batches = Vec::new();
    let mut pos = from;
    let mut header = [0u8; RECORD_BATCH_OVERHEAD];
    let mut body = Vec::new();
    while pos + RECORD_BATCH_OVERHEAD as u64 <= limit {
        file.read_exact_at(&mut header, pos).map_err(|e| Error::io("read segment", path, e))?;
        let parsed = match BatchHeader::parse(&header, pos, usize::MAX) {
            Ok(h) => h,
            Err(e) => return Ok((batches, pos, Some(e.to_string()))),
        };
        let size = parsed.size_in_bytes() as u64;
        if pos + size > limit {
            return Ok((
                batches,
                pos,
                Some(format!("partial batch at byte {pos}: {size} bytes declared, {} present", limit - pos)),
            ));
        }
        body.resize(size as usize, 0);
        file.read_exact_at(&mut body, pos).map_err(|e| Error::io("read segment", path, e))?;
        let computed = compute_crc(&body);
        if check_crc && computed != parsed.crc {
            return Ok((
                batches,
                pos,
                Some(format!("CRC mismatch at byte {pos}: stored {:#010x}, computed {computed:#010x}", parsed.crc)),
            ));
        }
        batches.push(ScannedBatch { position: pos, header: parsed });
        pos += size;
    }
    let tail = (pos < limit).then(|| format!("partial batch header at byte {pos}"));
    Ok((batches, pos, tail))
}

/// Opens a segment file read-only, with its length.
fn open_log_file(storage: &Arc<dyn Storage>, path: &Path) -> Result<(Arc<OpenFile>, u64)> {
    let file = open_reader(storage, path)?;
    let len = file.len().map_err(|e| Error::io("stat segment", path, e))?;
    Ok((file, len))
}

impl Segment {
    /// Validates every batch, truncates a torn or corrupt tail, and rebuilds both indexes from the
    /// batches (Kafka's LogSegment.recover). Returns the segment, its batches and, when it was cut, why.
    pub(crate) fn recover(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(Self, Vec<ScannedBatch>, Option<String>)> {
        let path = dir.join(file_name(base_offset, "log"));
        let (file, len) = open_log_file(storage, &path)?;
        let (batches, valid_end, problem) = scan_checked(&file, &path, 0, len, config.recovery_checks_crc())?;
        drop(file);
        if valid_end < len {
            // Only a cut needs the file writable.
            let file = open_read_write(storage, &path)?;
            file.set_len(valid_end).map_err(|e| Error::io("truncate segment", &path, e))?;
        }
        let offset_index =
            Index::create(storage, &dir.join(file_name(base_offset, "index")), config.segment_index_bytes)?;
        let time_index =
            Index::create(storage, &dir.join(file_name(base_offset, "timeindex")), config.segment_index_bytes)?;
        let mut segment = Self::with(storage, path, base_offset, offset_index, time_index, now_ms);
        for b in &batches {
            segment.record_append(b.position, &b.header, config.index_interval_bytes);
        }
        segment.size = valid_end;
        segment.reserved = valid_end;
        let problem = problem.map(|p| format!("{}: {p}; truncated to {valid_end} bytes", segment.path.display()));
        Ok((segment, batches, problem))
    }

    /// Opens an inactive segment from its indexes when they are sane and its batches are whole,
    /// CRC-valid and end at `next_base` (the next segment's base offset); `None` when it must be
    /// recovered instead.
    fn load(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base_offset: i64,
        next_base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Option<Self>> {
        let path = dir.join(file_name(base_offset, "log"));
        let (file, len) = open_log_file(storage, &path)?;
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let (Some(offset_index), Some(time_index)) = (
            Index::<OffsetEntry>::load(storage, &index_path, config.segment_index_bytes)?,
            Index::<TimeEntry>::load(storage, &time_path, config.segment_index_bytes)?,
        ) else {
            return Ok(None);
        };
        if !sane(offset_index.entries(), time_index.entries(), len, next_base - base_offset) {
            return Ok(None);
        }
        let (tail, end, problem) = scan_checked(&file, &path, 0, len, config.recovery_checks_crc())?;
        drop(file);
        if problem.is_some() || end != len || tail.last().map(|b| b.header.last_offset() + 1) != Some(next_base) {
            return Ok(None);
        }
        let mut segment = Self::with(storage, path, base_offset, offset_index, time_index, now_ms);
        segment.size = len;
        segment.reserved = len;
        segment.next_offset = next_base;
        if let Some(t) = segment.time_index.last().copied() {
            segment.max_timestamp = t.timestamp;
            segment.offset_of_max_timestamp = base_offset + i64::from(t.relative_offset);
        }
        for b in &tail {
            if b.header.max_timestamp > segment.max_timestamp {
                segment.max_timestamp = b.header.max_timestamp;
                segment.offset_of_max_timestamp = b.header.last_offset();
            }
        }
        Ok(Some(segment))
    }
}

/// Kafka's index sanity check, a little stricter: offsets and positions strictly increasing and
/// inside the segment, timestamps non-decreasing.
fn sane(offsets: &[OffsetEntry], times: &[TimeEntry], len: u64, span: i64) -> bool {
    let offsets_ok =
        offsets.windows(2).all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && offsets.iter().all(|e| {
                e.relative_offset >= 0
                    && i64::from(e.relative_offset) < span
                    && e.position >= 0
                    && (e.position as u64) < len
            });
    let times_ok = times.windows(2).all(|w| w[0].timestamp <= w[1].timestamp)
        && times.iter().all(|e| e.relative_offset >= 0 && i64::from(e.relative_offset) < span);
    offsets_ok && times_ok
}

/// Base offsets of the segments in `dir`, ascending.
fn segment_bases(storage: &dyn Storage, dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for file_name in storage.list(dir).map_err(|e| Error::io("list partition directory", dir, e))? {
        let Some(stem) = file_name.strip_suffix(".log") else { continue };
        if stem.len() == 20
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Deletes a segment's three files (after a truncation before it).
fn delete_files(storage: &dyn Storage, dir: &Path, base: i64) -> Result<()> {
    for ext in ["log", "index", "timeindex"] {
        let p = dir.join(file_name(base, ext));
        match storage.remove(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete segment file", &p, e)),
        }
    }
    Ok(())
}

impl PartitionLog {
    /// Opens `dir` (creating it), recovering what is there (see the module docs) and rebuilding the
    /// producer state from the active segment's batches.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        name: String,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Self> {
        storage.create_dir_all(&dir).map_err(|e| Error::io("create partition directory", &dir, e))?;
        let bases = segment_bases(&*storage, &dir)?;
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut producers = ProducerState::default();
        let mut last_epoch = -1;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let loaded = match next_base {
                Some(next) => Segment::load(&storage, &dir, base, next, &config, now_ms)?,
                None => None,
            };
            if let Some(segment) = loaded {
                segments.push(segment);
                continue;
            }
            let (segment, batches, problem) = Segment::recover(&storage, &dir, base, &config, now_ms)?;
            if let Some(p) = &problem {
                log::warn!("recovery: {p}");
            }
            let hole = next_base.is_some_and(|next| segment.next_offset != next);
            if next_base.is_none() {
                for b in &batches {
                    producers.update(&b.header);
                }
                last_epoch = batches.last().map_or(-1, |b| b.header.partition_leader_epoch);
            }
            segments.push(segment);
            if hole {
                for &later in &bases[i + 1..] {
                    log::warn!(
                        "recovery: deleting segment {} of {name}: it follows a truncated segment",
                        file_name(later, "log")
                    );
                    delete_files(&*storage, &dir, later)?;
                }
                break;
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(&storage, &dir, 0, &config, now_ms)?);
        }
        // Only the active segment keeps a descriptor; the others' indexes are written if rebuilt.
        let last = segments.len() - 1;
        for s in &mut segments[..last] {
            s.deactivate()?;
        }
        segments[last].activate(&config)?;
        let mut log = PartitionLog::from_segments(storage, dir, name, config, segments, producers);
        log.last_epoch = last_epoch;
        Ok(log)
    }
}
