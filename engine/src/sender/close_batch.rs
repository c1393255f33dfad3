//! Closing a drained batch (Kafka's ProducerBatch.close + MemoryRecordsBuilder.close): header,
//! compression of the records section as one stream, CRC.

use std::time::Instant;

use super::stats::BatchStats;
use crate::accumulator::{DrainedBatch, ResultHandle};
use crate::compression::{self, CompressionType};
use crate::error::Result;
use crate::record::{
    Attributes, BatchHeader, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, ProducerIdentity,
    RECORD_BATCH_OVERHEAD, finish_crc,
};

/// A batch ready for the log.
#[derive(Debug)]
pub(crate) struct ClosedBatch {
    pub partition: u32,
    /// The complete batch, or why it could not be built.
    pub bytes: Result<Vec<u8>>,
    /// The accumulator's buffer when `bytes` is a compressed copy: held until the batch completes so
    /// buffer.memory bounds what is in flight, as Kafka frees a batch's memory only on completion.
    pub original: Option<Vec<u8>>,
    pub result: ResultHandle,
    pub stats: BatchStats,
}

/// Writes the header and CRC in place (no compression) or into a compressed copy.
pub(crate) fn close_batch(
    batch: DrainedBatch,
    producer: ProducerIdentity,
    codec: CompressionType,
    level: Option<i32>,
    drained_at: Instant,
) -> ClosedBatch {
    let started = Instant::now();
    let uncompressed = batch.buffer.len() - RECORD_BATCH_OVERHEAD;
    let header = |total_len: usize| BatchHeader {
        base_offset: 0,
        batch_length: (total_len - LOG_OVERHEAD) as i32,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        magic: MAGIC_V2,
        crc: 0,
        attributes: Attributes { compression: codec, ..Attributes::default() },
        last_offset_delta: batch.record_count as i32 - 1,
        base_timestamp: batch.base_timestamp,
        max_timestamp: batch.max_timestamp,
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        base_sequence: producer.base_sequence,
        records_count: batch.record_count as i32,
    };
    let (bytes, original) = if codec == CompressionType::None {
        let mut buffer = batch.buffer;
        let total = buffer.len();
        header(total).write(&mut buffer[..RECORD_BATCH_OVERHEAD]);
        finish_crc(&mut buffer);
        (Ok(buffer), None)
    } else {
        let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + uncompressed / 2 + 64);
        out.resize(RECORD_BATCH_OVERHEAD, 0);
        let bytes = compression::compress(codec, level, &batch.buffer[RECORD_BATCH_OVERHEAD..], &mut out).map(|()| {
            let total = out.len();
            header(total).write(&mut out[..RECORD_BATCH_OVERHEAD]);
            finish_crc(&mut out);
            out
        });
        (bytes, Some(batch.buffer))
    };
    let compressed = bytes.as_ref().map(|b| b.len() - RECORD_BATCH_OVERHEAD).unwrap_or(uncompressed);
    ClosedBatch {
        partition: batch.partition,
        bytes,
        original,
        result: batch.result,
        stats: BatchStats {
            partition: batch.partition,
            records: batch.record_count,
            uncompressed_bytes: uncompressed,
            compressed_bytes: compressed,
            queue_ns: drained_at.saturating_duration_since(batch.created).as_nanos() as u64,
            compress_ns: started.elapsed().as_nanos() as u64,
            ..BatchStats::default()
        },
    }
}
