//! Truncation: a follower cutting its log back to where its new leader's log agrees with it (Kafka's
//! `Log.truncateTo` after the leader-epoch lookup of KIP-101). Whole batches from the first one that
//! holds `offset` go; later segments are deleted; the last kept segment is recovered from its file,
//! which rebuilds its indexes and the producer state.

use std::sync::Arc;

use super::partition::{PartitionLog, SyncTarget};
use super::recovery::scan;
use super::segment::Segment;
use crate::error::Result;

impl PartitionLog {
    /// Cuts the log back so that it ends before `offset` (at a batch boundary). Nothing may be in
    /// flight for the partition (the I/O thread flushes first).
    pub(crate) fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        if offset >= self.written_end {
            return Ok(());
        }
        // Files are cut and deleted below: a read holding a view of them starts again (`reader.rs`).
        self.generation = super::reader::next_generation();
        // Segments starting at or after the cut go entirely (the first one is kept as the file to
        // cut when everything goes).
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.base_offset >= offset) {
            if let Some(s) = self.segments.pop() {
                self.unsynced.retain(|t| t.path != s.path);
                s.delete()?;
            }
        }
        let active = self.segments.pop().expect("a log always has an active segment");
        self.unsynced.retain(|t| t.path != active.path);
        let (batches, _, _) = scan(&*active.reader()?, &active.path, 0, active.size)?;
        let cut = batches.iter().find(|b| b.header.last_offset() >= offset).map_or(active.size, |b| b.position);
        active.truncate_file(cut, "truncate segment")?;
        let base = active.base_offset;
        drop(active);
        let (mut segment, kept, _) = Segment::recover(&self.storage, &self.dir, base, &self.config, now_ms)?;
        segment.activate(&self.config)?;
        self.producers = Default::default();
        self.last_epoch = kept.last().map_or(-1, |b| b.header.partition_leader_epoch);
        for b in &kept {
            self.producers.update(&b.header);
        }
        self.next_offset = segment.next_offset;
        self.high_watermark = segment.next_offset;
        self.written_end = segment.next_offset;
        self.log_start_offset = self.log_start_offset.min(segment.base_offset);
        self.unsynced.push(SyncTarget::file(&self.storage, Some(Arc::clone(segment.write_file())), &segment.path));
        self.segments.push(segment);
        self.dir_unsynced = true;
        Ok(())
    }
}
