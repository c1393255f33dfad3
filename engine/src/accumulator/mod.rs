//! The record accumulator: records gathered into per-partition batches until the sender drains them.
//!
//! Two implementations behind one trait, chosen by `accumulator: lockfree | mutex`:
//! - [`lockfree`]: appenders claim space in the open batch with one `fetch_add` on a packed state word,
//!   encode the record in place and publish it by storing its first byte last; a batch that fills is
//!   sealed and handed to the drainer through a lock-free queue. No mutex or spin on the append path,
//!   and one read-modify-write on a shared line per record.
//! - [`mutex`]: built the way Kafka's Java client is — a lock per partition's deque of batches.
//!
//! Both follow Kafka's RecordAccumulator: `batch.size` (a record too large for an empty batch gets a
//! batch of its own), `linger.ms`, readiness when full / lingered / memory exhausted / flushing /
//! closing, and `buffer.memory` ([`buffer_pool`]) with `max.block.ms` back-pressure.
//!
//! "Full" is decided at the append that fills the batch: once a record of the size just appended
//! would no longer fit, the batch is ready (Kafka finds the same one append later, when the next record
//! fails to fit and opens a second batch in the deque).
//!
//! With compression, Kafka writes records through the codec as they arrive and estimates a batch's
//! size as uncompressed bytes x estimated ratio x 1.05 (CompressionRatioEstimator). Batches here are
//! compressed by the sender after drain, so the open batch holds uncompressed bytes, and its capacity is
//! batch.size / (estimated ratio x 1.05): the same number of records per batch as Kafka would put in,
//! with the ratio fed back by the sender from each compressed batch ([`ratio`]).

mod buffer_pool;
mod control;
mod lockfree;
mod mutex;
mod pool;
mod produce_result;
mod ratio;
#[cfg(all(test, not(loom)))]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use produce_result::{BatchMetadata, ProduceResult};

use crate::compression::CompressionType;
use crate::error::{Error, Result};
use crate::record::RecordHeader;

/// Which accumulator implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccumulatorKind {
    /// Lock-free appends (the default).
    #[default]
    LockFree,
    /// A mutex per partition, as Kafka's Java client.
    Mutex,
}

impl FromStr for AccumulatorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lockfree" => Ok(AccumulatorKind::LockFree),
            "mutex" => Ok(AccumulatorKind::Mutex),
            other => Err(Error::config("accumulator", format!("`{other}` is not one of lockfree, mutex"))),
        }
    }
}

/// Accumulator settings (Kafka's names in the docs of each field).
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    /// Partitions of the topic.
    pub partitions: u32,
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `buffer.memory`.
    pub buffer_memory: usize,
    /// `max.block.ms`.
    pub max_block: Duration,
    /// `max.request.size`: the largest record (in a batch of its own) accepted.
    pub max_request_size: usize,
    /// `compression.type`, for the batch capacity estimate.
    pub compression: CompressionType,
    /// Implementation.
    pub kind: AccumulatorKind,
}

impl Default for AccumulatorConfig {
    fn default() -> Self {
        AccumulatorConfig {
            partitions: 1,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            compression: CompressionType::None,
            kind: AccumulatorKind::LockFree,
        }
    }
}

/// A record's handle on its batch's shared completion: derefs to the [`ProduceResult`].
///
/// The mutex accumulator hands out a clone of the completion's counted pointer; the lock-free one a
/// reference its batch was created with, so a record costs no reference-count increment. Either way
/// the completion's memory goes back to the accumulator's free list (`pool.rs`) with the last handle.
pub(crate) struct ResultHandle(HandleRepr);

enum HandleRepr {
    Shared(pool::Pooled<ProduceResult>),
    Batch(lockfree::BatchRef),
}

impl std::ops::Deref for ResultHandle {
    type Target = ProduceResult;
    #[inline]
    fn deref(&self) -> &ProduceResult {
        match &self.0 {
            HandleRepr::Shared(r) => r,
            HandleRepr::Batch(b) => b.result(),
        }
    }
}

impl From<pool::Pooled<ProduceResult>> for ResultHandle {
    #[inline]
    fn from(result: pool::Pooled<ProduceResult>) -> Self {
        ResultHandle(HandleRepr::Shared(result))
    }
}

impl From<lockfree::BatchRef> for ResultHandle {
    #[inline]
    fn from(batch: lockfree::BatchRef) -> Self {
        ResultHandle(HandleRepr::Batch(batch))
    }
}

impl std::fmt::Debug for ResultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResultHandle").field(&**self).finish()
    }
}

/// What an append returns.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The batch's shared completion.
    pub result: ResultHandle,
    /// The record's offsetDelta in its batch.
    pub relative_offset: u32,
    /// The append left the batch full (it is ready now).
    pub batch_is_full: bool,
    /// The append opened a new batch.
    pub new_batch_created: bool,
    /// Encoded size of the record.
    pub appended_bytes: usize,
}

/// A batch taken by the sender.
#[derive(Debug)]
pub(crate) struct DrainedBatch {
    /// Its partition.
    pub partition: u32,
    /// 61 bytes reserved for the header, then the encoded records; `len()` is the batch size.
    pub buffer: Vec<u8>,
    /// Records in it.
    pub record_count: u32,
    /// baseTimestamp (the first record's CreateTime, ms).
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// When the batch was opened.
    pub created: Instant,
    /// The completion its records wait on (the sender completes the batch through it).
    pub result: ResultHandle,
}

/// The accumulator as the producer (append) and the sender (drain) see it.
pub(crate) trait RecordAccumulator: Send + Sync + std::fmt::Debug {
    /// Appends one record (`timestamp`: CreateTime, ms). Blocks only while buffer.memory is exhausted.
    fn append(
        &self,
        partition: u32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) -> Result<Appended>;
    /// Single caller (the sender): moves every ready batch into `out`, each partition's in order;
    /// returns when the next not-yet-ready batch becomes ready by linger, if any.
    fn drain(&self, now: Instant, out: &mut Vec<DrainedBatch>) -> Option<Instant>;
    /// Parks the sender until work may be ready, `deadline`, or [`wake`](Self::wake).
    fn wait_for_work(&self, deadline: Option<Instant>);
    /// Wakes the sender.
    fn wake(&self);
    /// Starts a flush: every non-empty batch is ready until [`end_flush`](Self::end_flush).
    fn begin_flush(&self);
    /// Ends a flush.
    fn end_flush(&self);
    /// Refuses further appends with [`Error::Closed`]; every batch becomes ready.
    fn close(&self);
    /// Whether any appended record has not been drained yet.
    fn has_undrained(&self) -> bool;
    /// Returns a drained batch's buffer to buffer.memory.
    fn deallocate(&self, buffer: Vec<u8>);
    /// Feeds back the compressed/uncompressed ratio of a closed batch.
    fn record_compression_ratio(&self, ratio: f32);
    /// Appends waiting for memory (a probe for the accumulator's tests, no longer public).
    #[cfg_attr(not(test), allow(dead_code))]
    fn memory_waiters(&self) -> usize;
    /// Bytes of buffer.memory not held by batches (a probe for the accumulator's tests).
    #[cfg_attr(not(test), allow(dead_code))]
    fn available_memory(&self) -> usize;
}

/// Builds the accumulator `config.kind` names, after checking the config.
pub(crate) fn new_accumulator(config: AccumulatorConfig) -> Result<Arc<dyn RecordAccumulator>> {
    if config.partitions == 0 {
        return Err(Error::config("partitions", "must be at least 1"));
    }
    if config.batch_size == 0 || config.batch_size > (1 << 30) {
        return Err(Error::config("batch.size", "must be between 1 and 1 GiB"));
    }
    if config.buffer_memory == 0 {
        return Err(Error::config("buffer.memory", "must be at least 1"));
    }
    Ok(match config.kind {
        AccumulatorKind::LockFree => Arc::new(lockfree::LockFreeAccumulator::new(config)),
        AccumulatorKind::Mutex => Arc::new(mutex::MutexAccumulator::new(config)),
    })
}
