//! Reading a partition: fetch from an offset (offset index lookup, then a scan of batch headers) and
//! ListOffsets by timestamp (time index lookup, then a scan). Batches come back as stored, never
//! re-encoded, and only up to the high watermark (what was written and acknowledged).
//!
//! Reads take the partition's lock only to copy what they need, never across a disk read, as Kafka's
//! UnifiedLog.read runs without the log's lock from a local copy of the log end: under the lock a
//! read takes the high watermark, the log start offset and a [`SegmentView`] of the segment to read
//! (base offset, path, the handle the segment holds if any, its written size, the offset index's
//! position for the offset); the index-hinted scan and the reads of the batches then run unlocked,
//! so a slow disk read never holds up the I/O thread's placements and commits of that partition
//! (nor retention or truncation). Below the written size a segment's bytes never change while its
//! partition keeps its [`generation`](PartitionLog::generation), which changes whenever a file a
//! view may name is deleted, cut or replaced (retention, truncation, reopening after a restart). A
//! read that finds the generation changed once its disk reads are done (or sees its file vanish)
//! discards what it read and starts again from a new view, so it returns what the log holds then
//! (nothing below a log start offset retention moved), never an error or bytes of a file cut
//! under it. A restart changes the generation before the disk model rewrites files (power loss)
//! and the directory is offline until the reopened log is in place; a read checks the directory is
//! online after taking each view, so no read is served from files being rewritten.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::FetchData;
use super::partition::PartitionLog;
use super::recovery::scan;
use super::segment::{find_position, open_reader};
use crate::error::{Error, Result};
use crate::io::storage::{OpenFile, Storage};
use crate::record::{BatchHeader, RECORD_BATCH_OVERHEAD};

/// Reads started again after the partition changed under them before one gives up (each retry
/// follows a retention, truncation or restart that completed meanwhile).
const READ_ATTEMPTS: usize = 16;

/// Generations are unique in the process, so that a reopened partition never reuses its old one.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A new [`PartitionLog::generation`].
pub(crate) fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

/// What a read needs of one segment, copied under the partition's lock.
#[derive(Debug)]
pub(crate) struct SegmentView {
    base_offset: i64,
    path: PathBuf,
    /// The log's storage, to open `path` through when `file` is `None`.
    storage: Arc<dyn Storage>,
    /// The segment's own file (its Arc keeps it open for this read); `None`: open `path`
    /// read-only for the read.
    file: Option<Arc<OpenFile>>,
    /// Bytes written (batches below it are whole and never change in this generation).
    size: u64,
    /// The offset looked for here: the read's, or the segment's base offset when it starts later.
    target: i64,
    /// Where to start scanning: the offset index's position for the read's offset.
    hint: u64,
    /// The next segment's base offset, where a read that finds nothing here goes on.
    next_base: Option<i64>,
}

/// A partition's state as one read copies it.
struct Snapshot {
    generation: u64,
    /// The end of what the read may serve: the high watermark, within the caller's limit.
    end: i64,
    log_start_offset: i64,
    view: Option<SegmentView>,
    #[cfg(test)]
    gate: Option<ReadGate>,
}

fn lock(partition: &Mutex<PartitionLog>) -> MutexGuard<'_, PartitionLog> {
    partition.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a read gives up with after [`READ_ATTEMPTS`] (or the last one it saw).
fn gave_up(partition: &Mutex<PartitionLog>, last: Option<Error>) -> Error {
    last.unwrap_or_else(|| {
        let log = lock(partition);
        Error::io(
            "read segment",
            &log.dir,
            std::io::Error::other(format!("{}: the log changed under {READ_ATTEMPTS} reads in a row", log.name)),
        )
    })
}

impl SegmentView {
    fn of(log: &PartitionLog, index: usize, offset: i64) -> SegmentView {
        let segment = &log.segments[index];
        let target = offset.max(segment.base_offset);
        SegmentView {
            base_offset: segment.base_offset,
            path: segment.path.clone(),
            storage: Arc::clone(segment.storage()),
            file: segment.read_handle(),
            size: segment.size,
            target,
            hint: segment.index_hint(target),
            next_base: log.segments.get(index + 1).map(|s| s.base_offset),
        }
    }

    fn open(&self) -> Result<Arc<OpenFile>> {
        match &self.file {
            Some(f) => Ok(Arc::clone(f)),
            None => open_reader(&self.storage, &self.path),
        }
    }

    /// Whole batches of this segment from the one holding the target offset: at least one, then as
    /// many as fit `max_bytes`, none starting at or after `end`. `None` when no batch here ends at or
    /// after the target (the read goes on in the next segment).
    fn read(&self, offset: i64, max_bytes: usize, end: i64) -> Result<Option<(Vec<u8>, i64)>> {
        let file = self.open()?;
        let Some(start) = find_position(&file, &self.path, self.hint, self.size, self.target)? else {
            return Ok(None);
        };
        let mut stop = start;
        let mut first = None;
        let mut header = [0u8; RECORD_BATCH_OVERHEAD];
        while stop + RECORD_BATCH_OVERHEAD as u64 <= self.size {
            file.read_exact_at(&mut header, stop).map_err(|e| Error::io("read segment", &self.path, e))?;
            let h = BatchHeader::parse(&header, stop, usize::MAX)?;
            let size = h.size_in_bytes() as u64;
            if h.base_offset >= end
                || stop + size > self.size
                || (first.is_some() && (stop + size - start) as usize > max_bytes)
            {
                break;
            }
            first.get_or_insert(h.base_offset);
            stop += size;
        }
        let mut bytes = vec![0u8; (stop - start) as usize];
        file.read_exact_at(&mut bytes, start).map_err(|e| Error::io("read segment", &self.path, e))?;
        Ok(Some((bytes, first.unwrap_or(offset))))
    }

    /// The offset of this segment's first batch whose maxTimestamp is >= `timestamp`, scanning from
    /// the batch holding the target offset (the time index's).
    fn find_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        let file = self.open()?;
        let from = find_position(&file, &self.path, self.hint, self.size, self.target)?.unwrap_or(0);
        let (batches, _, _) = scan(&file, &self.path, from, self.size)?;
        Ok(batches.iter().find(|b| b.header.max_timestamp >= timestamp).map(|b| b.header.base_offset))
    }
}

impl PartitionLog {
    /// The state a read from `offset` copies, with the view of the segment at `from` (`offset`
    /// first, then the base offset of each next segment), within `limit`; `end` as an earlier
    /// snapshot of the same read took it. No view when nothing from there is below the end.
    fn snapshot(&mut self, from: i64, offset: i64, limit: i64, end: Option<i64>) -> Snapshot {
        let end = end.unwrap_or(self.high_watermark.min(limit));
        let index = self.segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
        let readable = offset < end
            && offset >= self.log_start_offset
            && self.segments.get(index).is_some_and(|s| s.base_offset < end);
        Snapshot {
            generation: self.generation,
            end,
            log_start_offset: self.log_start_offset,
            view: readable.then(|| SegmentView::of(self, index, offset)),
            #[cfg(test)]
            gate: self.read_gate.take(),
        }
    }

    /// The state a ListOffsets-by-time copies: the view of the first segment after `after` (its
    /// base offset) whose largest timestamp reaches `timestamp`, hinted by the time index.
    fn time_snapshot(&mut self, after: Option<i64>, timestamp: i64) -> Snapshot {
        let found = self
            .segments
            .iter()
            .position(|s| after.is_none_or(|a| s.base_offset > a) && s.max_timestamp >= timestamp && s.size > 0);
        let view = found.map(|i| {
            let s = &self.segments[i];
            SegmentView::of(self, i, s.base_offset + i64::from(s.time_index.lookup(timestamp)))
        });
        Snapshot {
            generation: self.generation,
            end: self.high_watermark,
            log_start_offset: self.log_start_offset,
            view,
            #[cfg(test)]
            gate: self.read_gate.take(),
        }
    }
}

#[cfg(test)]
fn pass(gate: Option<ReadGate>) {
    if let Some(g) = gate {
        g.pass();
    }
}

/// Whole batches of `partition` from the one holding `offset`: at least one, then as many as fit
/// `max_bytes`, none starting at or after the high watermark or `limit`; empty at or past either, or
/// below the log start offset. The disk reads run without the partition's lock (module docs).
/// `online` is asked after each snapshot, before its disk reads (the directory's health).
pub(crate) fn read(
    partition: &Mutex<PartitionLog>,
    offset: i64,
    max_bytes: usize,
    limit: i64,
    online: &dyn Fn() -> Result<()>,
) -> Result<FetchData> {
    let mut last_error = None;
    'attempt: for _ in 0..READ_ATTEMPTS {
        let mut from = offset;
        let mut taken: Option<(u64, i64)> = None; // the first snapshot's generation and end
        loop {
            let snap = lock(partition).snapshot(from, offset, limit, taken.map(|t| t.1));
            let (generation, end) = *taken.get_or_insert((snap.generation, snap.end));
            if snap.generation != generation {
                continue 'attempt; // changed between two segments of this read
            }
            let empty = FetchData { bytes: Vec::new(), first_offset: offset, high_watermark: end };
            let Some(view) = snap.view else { return Ok(empty) };
            online()?;
            #[cfg(test)]
            pass(snap.gate);
            let outcome = view.read(offset, max_bytes, end);
            if lock(partition).generation != generation {
                last_error = outcome.err();
                continue 'attempt;
            }
            match outcome? {
                Some((bytes, first_offset)) => return Ok(FetchData { bytes, first_offset, high_watermark: end }),
                None => match view.next_base {
                    Some(next) => from = next,
                    None => return Ok(empty),
                },
            }
        }
    }
    Err(gave_up(partition, last_error))
}

/// The offset of the first batch of `partition` whose maxTimestamp is >= `timestamp` (ListOffsets by
/// time, at batch granularity as Kafka's LogSegment.findOffsetByTimestamp), or `None` when every
/// batch is older. The disk reads run without the partition's lock (module docs).
pub(crate) fn offset_for_timestamp(
    partition: &Mutex<PartitionLog>,
    timestamp: i64,
    online: &dyn Fn() -> Result<()>,
) -> Result<Option<i64>> {
    let mut last_error = None;
    'attempt: for _ in 0..READ_ATTEMPTS {
        let mut after = None;
        let mut generation = None;
        loop {
            let snap = lock(partition).time_snapshot(after, timestamp);
            if *generation.get_or_insert(snap.generation) != snap.generation {
                continue 'attempt;
            }
            let Some(view) = snap.view else { return Ok(None) };
            online()?;
            #[cfg(test)]
            pass(snap.gate);
            let outcome = view.find_timestamp(timestamp);
            if lock(partition).generation != snap.generation {
                last_error = outcome.err();
                continue 'attempt;
            }
            match outcome? {
                Some(found) => return Ok(Some(found.max(snap.log_start_offset))),
                None => after = Some(view.base_offset),
            }
        }
    }
    Err(gave_up(partition, last_error))
}

/// Test hook ([`PartitionLog::read_gate`]): a read that takes it signals `entered` where its disk
/// reads begin, then waits for `release` (or for the test to drop it), as a read held up by a slow disk.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ReadGate {
    entered: crossbeam_channel::Sender<()>,
    release: crossbeam_channel::Receiver<()>,
}

#[cfg(test)]
impl ReadGate {
    /// A gate, the receiver told when a read reaches it, and the sender that lets the read go.
    pub(crate) fn new() -> (Self, crossbeam_channel::Receiver<()>, crossbeam_channel::Sender<()>) {
        let (entered, entered_rx) = crossbeam_channel::bounded(1);
        let (release_tx, release) = crossbeam_channel::bounded(1);
        (ReadGate { entered, release }, entered_rx, release_tx)
    }

    pub(crate) fn pass(self) {
        let _ = self.entered.send(());
        let _ = self.release.recv();
    }
}
