//! Time- and size-based retention (cleanup.policy=delete): whole segments, oldest first, never the
//! active one, run by the I/O thread every log.retention.check.interval.ms.

use super::partition::PartitionLog;
use crate::error::Result;

impl PartitionLog {
    /// Deletes the oldest segments while retention.ms (now - the segment's largest timestamp) or
    /// retention.bytes (total size - retention.bytes >= the segment's size) says so, as Kafka's
    /// UnifiedLog.deleteRetentionMsBreachedSegments / deleteRetentionSizeBreachedSegments. Returns how
    /// many were deleted; moves the log start offset.
    pub(crate) fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        let mut total: i64 = self.segments.iter().map(|s| s.size as i64).sum();
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let by_time = self.config.retention_ms.is_some_and(|ms| ms >= 0 && now_ms - oldest.max_timestamp > ms);
            let by_size = self.config.retention_bytes.is_some_and(|b| b >= 0 && total - b >= oldest.size as i64);
            // A segment rolled while its last writes are still in flight is kept until they land.
            let settled = oldest.size == oldest.reserved;
            if !(by_time || by_size) || !settled {
                break;
            }
            let segment = self.segments.remove(0);
            // A read holding a view of it starts again (`reader.rs`).
            self.generation = super::reader::next_generation();
            total -= segment.size as i64;
            // Later segments start where this one ended: the log start moves before the files go, so a
            // reader never looks for the deleted segment.
            self.log_start_offset = self.segments[0].base_offset;
            // A deleted file needs no fsync (and has no path left to open one through).
            self.unsynced.retain(|t| t.path != segment.path);
            segment.delete()?;
            deleted += 1;
        }
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
        Ok(deleted)
    }
}
