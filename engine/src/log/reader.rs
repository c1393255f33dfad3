//! Reading a partition: fetch from an offset (offset index lookup, then a scan of batch headers) and
//! ListOffsets by timestamp (time index lookup, then a scan). Batches come back as stored, never
//! re-encoded, and only up to the high watermark (what was written and acknowledged).

use std::os::unix::fs::FileExt;

use super::partition::PartitionLog;
use super::recovery::scan;
use crate::error::{Error, Result};
use crate::record::{BatchHeader, RECORD_BATCH_OVERHEAD};

impl PartitionLog {
    /// Whole batches from the one holding `offset`: at least one, then as many as fit `max_bytes`,
    /// none starting at or after `end` (at most the written end). Returns the bytes and the first
    /// batch's baseOffset; empty at or past `end` or below the log start offset.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, end: i64) -> Result<(Vec<u8>, i64)> {
        let end = end.min(self.high_watermark);
        if offset >= end || offset < self.log_start_offset {
            return Ok((Vec::new(), offset));
        }
        let end_offset = end;
        let idx = self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        for segment in &self.segments[idx..] {
            let file = segment.reader()?;
            let Some(start) = segment.find_position(&file, offset.max(segment.base_offset))? else { continue };
            let mut end = start;
            let mut first = None;
            let mut header = [0u8; RECORD_BATCH_OVERHEAD];
            while end + RECORD_BATCH_OVERHEAD as u64 <= segment.size {
                file.read_exact_at(&mut header, end).map_err(|e| Error::io("read segment", &segment.path, e))?;
                let h = BatchHeader::parse(&header, end, usize::MAX)?;
                let size = h.size_in_bytes() as u64;
                if h.base_offset >= end_offset
                    || end + size > segment.size
                    || (first.is_some() && (end + size - start) as usize > max_bytes)
                {
                    break;
                }
                first.get_or_insert(h.base_offset);
                end += size;
            }
            let mut bytes = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut bytes, start).map_err(|e| Error::io("read segment", &segment.path, e))?;
            return Ok((bytes, first.unwrap_or(offset)));
        }
        Ok((Vec::new(), offset))
    }

    /// The offset of the first batch whose maxTimestamp is >= `timestamp` (ListOffsets by time, at
    /// batch granularity as Kafka's LogSegment.findOffsetByTimestamp), or `None` when every batch
    /// is older.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        for segment in &self.segments {
            if segment.max_timestamp < timestamp || segment.size == 0 {
                continue;
            }
            let from_rel = segment.time_index.lookup(timestamp);
            let file = segment.reader()?;
            let from = segment.find_position(&file, segment.base_offset + i64::from(from_rel))?.unwrap_or(0);
            let (batches, _, _) = scan(&file, &segment.path, from, segment.size)?;
            if let Some(b) = batches.iter().find(|b| b.header.max_timestamp >= timestamp) {
                return Ok(Some(b.header.base_offset.max(self.log_start_offset)));
            }
        }
        Ok(None)
    }
}
