//! The producer's settings, by their Kafka names.

use std::time::Duration;

use crate::accumulator::{AccumulatorConfig, AccumulatorKind};
use crate::compression::CompressionType;
use crate::error::{Error, Result};
use crate::partitioner::PartitionerKind;
use crate::sender::{Acks, SenderConfig};

/// Settings of one [`Producer`](super::Producer). Defaults are the Java client's (Kafka 4.x).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks` (default all).
    pub acks: Acks,
    /// `batch.size` in bytes (default 16384).
    pub batch_size: usize,
    /// `linger.ms` (default 5 ms).
    pub linger: Duration,
    /// `buffer.memory` in bytes (default 32 MiB).
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60 s): how long `send` may wait for buffer memory.
    pub max_block: Duration,
    /// `max.request.size` in bytes (default 1 MiB): the largest record accepted.
    pub max_request_size: usize,
    /// `compression.type` (default none).
    pub compression: CompressionType,
    /// `compression.<codec>.level`; `None` = the codec's Kafka default.
    pub compression_level: Option<i32>,
    /// `compression.threads` (kbench's own setting; default: the machine's cores, at most 4): the
    /// threads the engine compresses closed batches on, named `kbench-compr-N` and started only when
    /// `compression.type` is not none. 0 compresses on the sender thread. Kafka's Java producer
    /// compresses on the threads that call `send`, librdkafka on its broker threads; kbench keeps the
    /// work inside the engine so that it is counted with the engine's other threads.
    pub compression_threads: usize,
    /// `enable.idempotence` (default true): stamp producerId, epoch and sequences so the log drops
    /// duplicates and rejects gaps.
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection` (default 5). Documented, see the module docs of
    /// [`sender`](crate::sender): the embedded log appends each partition's batches in order, so
    /// ordering holds for any value.
    pub max_in_flight: u32,
    /// Which partitioner picks partitions for records without an explicit partition.
    pub partitioner: PartitionerKind,
    /// `partitioner.ignore.keys` (default false).
    pub partitioner_ignore_keys: bool,
    /// Which accumulator implementation gathers records (kbench's own setting).
    pub accumulator: AccumulatorKind,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            compression: CompressionType::None,
            compression_level: None,
            compression_threads: default_compression_threads(),
            enable_idempotence: true,
            max_in_flight: 5,
            partitioner: PartitionerKind::Default,
            partitioner_ignore_keys: false,
            accumulator: AccumulatorKind::LockFree,
        }
    }
}

/// The default of `compression.threads`: one per core, at most 4.
pub fn default_compression_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_DEFAULT_COMPRESSION_THREADS)
}

const MAX_DEFAULT_COMPRESSION_THREADS: usize = 4;

/// The most `compression.threads` accepted.
pub const MAX_COMPRESSION_THREADS: usize = 256;

impl ProducerConfig {
    /// Checks ranges the way KafkaProducer's constructor does.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::config("batch.size", "must be at least 1"));
        }
        if self.buffer_memory == 0 {
            return Err(Error::config("buffer.memory", "must be at least 1"));
        }
        if self.batch_size > self.buffer_memory {
            // Kafka's BufferPool refuses any allocation above buffer.memory: every batch would fail.
            return Err(Error::config(
                "batch.size",
                format!(
                    "{} is above buffer.memory = {}: no batch could be allocated (raise buffer.memory or lower batch.size)",
                    self.batch_size, self.buffer_memory
                ),
            ));
        }
        if self.max_request_size == 0 {
            return Err(Error::config("max.request.size", "must be at least 1"));
        }
        if self.compression_threads > MAX_COMPRESSION_THREADS {
            return Err(Error::config(
                "compression.threads",
                format!("{} is above the most accepted, {MAX_COMPRESSION_THREADS}", self.compression_threads),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::config("max.in.flight.requests.per.connection", "must be at least 1"));
        }
        if self.enable_idempotence && self.max_in_flight > 5 {
            return Err(Error::config(
                "max.in.flight.requests.per.connection",
                format!("must be at most 5 with enable.idempotence=true, got {}", self.max_in_flight),
            ));
        }
        Ok(())
    }

    pub(crate) fn sender_config(&self) -> SenderConfig {
        SenderConfig {
            acks: self.acks,
            compression: self.compression,
            compression_level: self.compression_level,
            enable_idempotence: self.enable_idempotence,
            compression_threads: self.compression_threads,
            max_in_flight: self.max_in_flight,
        }
    }

    pub(crate) fn accumulator_config(&self, partitions: u32) -> AccumulatorConfig {
        AccumulatorConfig {
            partitions,
            batch_size: self.batch_size,
            linger: self.linger,
            buffer_memory: self.buffer_memory,
            max_block: self.max_block,
            max_request_size: self.max_request_size,
            compression: self.compression,
            kind: self.accumulator,
        }
    }
}
