//! The engine's one error type.
//!
//! Every fallible engine call returns [`Result`]. Errors are `Clone` because one failure (a write that
//! hit ENOSPC, say) must reach every producer waiting on the batch it carried.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the engine.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input ended before a complete structure could be read.
    #[error("truncated input at byte {position}: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// Byte position (within the file or buffer being read) where the structure starts.
        position: u64,
        /// What was being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that were available.
        available: u64,
    },

    /// A record batch failed validation.
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptBatch {
        /// Byte position of the batch's first byte (its baseOffset field).
        position: u64,
        /// What is wrong with it.
        reason: Corruption,
    },

    /// A codec could not compress or decompress.
    #[error("{codec} {operation} failed: {message}")]
    Compression {
        /// Kafka's name of the codec (`gzip`, `snappy`, `lz4`, `zstd`).
        codec: &'static str,
        /// `compression` or `decompression`.
        operation: &'static str,
        /// The codec's own explanation.
        message: String,
    },

    /// An operating-system I/O call failed on a file.
    #[error("{operation} {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the engine was doing (`open`, `write`, `fsync`, ...).
        operation: &'static str,
        /// The OS error (shared so the error stays `Clone`).
        #[source]
        source: Arc<std::io::Error>,
    },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid value for {key}: {message}")]
    Config {
        /// Kafka's name of the setting.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },

    /// buffer.memory stayed exhausted for max.block.ms (Kafka's BufferExhaustedException).
    #[error("buffer.memory exhausted: no {requested} bytes became free within max.block.ms = {max_block_ms} ms")]
    BufferExhausted {
        /// Bytes the append needed.
        requested: usize,
        /// The configured max.block.ms.
        max_block_ms: u64,
    },

    /// A record is larger than max.request.size or buffer.memory (Kafka's RecordTooLargeException).
    #[error("record of {size} bytes exceeds {limit_name} = {limit}")]
    RecordTooLarge {
        /// Serialized size of the record in a batch of its own.
        size: usize,
        /// The config that limits it.
        limit_name: &'static str,
        /// Its value.
        limit: usize,
    },

    /// The producer (or log) was closed; nothing further is accepted.
    #[error("{what} is closed")]
    Closed {
        /// What was closed (`producer`, `log orders-3`, ...).
        what: String,
    },

    /// An idempotent batch arrived with a sequence gap (Kafka's OutOfOrderSequenceException).
    #[error("out of order sequence for producerId {producer_id} on {partition}: expected {expected}, got {received}")]
    OutOfOrderSequence {
        /// The partition (`topic-N`).
        partition: String,
        /// The batch's producerId.
        producer_id: i64,
        /// The sequence the log expected next.
        expected: i32,
        /// The batch's baseSequence.
        received: i32,
    },

    /// A consumer's commit was refused (Kafka's CommitFailedException): the group rebalanced since
    /// the member's generation, or the member was removed from the group.
    #[error("commit failed for group {group}: {reason}")]
    CommitFailed {
        /// The group id.
        group: String,
        /// Why.
        reason: String,
    },

    /// A consumer has no position for a partition: nothing committed and `auto.offset.reset` is
    /// `none` (Kafka's NoOffsetForPartitionException), or the position fell outside the log
    /// (Kafka's OffsetOutOfRangeException).
    #[error("no valid offset for partition {partition}: {reason} (auto.offset.reset is none)")]
    NoOffset {
        /// The partition.
        partition: u32,
        /// Why there is none.
        reason: String,
    },

    /// An acks=all append found fewer in-sync replicas than min.insync.replicas (Kafka's
    /// NotEnoughReplicasException; `after_append`: NotEnoughReplicasAfterAppendException, the ISR
    /// shrank while the batch waited, which the leader has written).
    #[error(
        "not enough replicas for {partition}: the ISR has {isr} member(s), min.insync.replicas is {min_insync_replicas}{}",
        if *after_append { " (after the leader appended the batch)" } else { "" }
    )]
    NotEnoughReplicas {
        /// The partition (`topic-N`).
        partition: String,
        /// ISR size at the time.
        isr: u32,
        /// The configured min.insync.replicas.
        min_insync_replicas: u32,
        /// Whether the leader had already appended the batch.
        after_append: bool,
    },

    /// The partition has no leader, or the leader that took the batch lost leadership before it was
    /// acknowledged (Kafka's NotLeaderOrFollower / LeaderNotAvailable; retriable in Kafka).
    #[error("no leader for {partition}: {reason}")]
    NotLeader {
        /// The partition (`topic-N`).
        partition: String,
        /// What happened.
        reason: String,
    },

    /// A log directory went offline after a write, fsync or file operation failed in it (Kafka's
    /// KafkaStorageException; Kafka takes the directory offline through its LogDirFailureChannel).
    /// Every append waiting on it and every later append, read, flush and truncation fails with this
    /// error; nothing written after its last successful fsync is acknowledged. Reopening the log
    /// runs recovery.
    #[error("log directory {dir} is offline (KafkaStorageException) after: {cause}")]
    KafkaStorage {
        /// The log directory taken offline.
        dir: PathBuf,
        /// The failure that took it offline (an [`Error::Io`] naming the operation and the file).
        cause: Box<Error>,
    },

    /// A topic needs more file descriptors than the process may open: RLIMIT_NOFILE, after the
    /// engine raised its soft limit to the hard one. Checked when the log opens (one descriptor per
    /// partition and replica, plus headroom), so a run never meets EMFILE half-way.
    #[error(
        "topic {topic}: {partitions} partitions x {replicas} replicas need about {needed} file descriptors ({open} already open, one per partition and replica, and headroom) but RLIMIT_NOFILE allows {limit} (hard limit {hard}): raise the limit (ulimit -n, systemd LimitNOFILE=) or use fewer partitions"
    )]
    DescriptorLimit {
        /// The topic being opened.
        topic: String,
        /// Its partition count.
        partitions: u32,
        /// Replicas of each partition (replication.factor).
        replicas: u32,
        /// Descriptors the process would hold with the topic open.
        needed: u64,
        /// Descriptors open before the topic.
        open: u64,
        /// The soft RLIMIT_NOFILE in force.
        limit: u64,
        /// The hard RLIMIT_NOFILE.
        hard: u64,
    },

    /// The partition index is not in the topic.
    #[error("unknown partition {partition} (topic has {partitions})")]
    UnknownPartition {
        /// The requested partition.
        partition: u32,
        /// How many partitions exist.
        partitions: u32,
    },
}

impl Error {
    /// Builds an [`Error::Io`] from an OS error.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), operation, source: Arc::new(source) }
    }

    /// Builds an [`Error::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: message.into() }
    }
}

/// Why a record batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The magic byte is not 2.
    UnsupportedMagic(i8),
    /// batchLength is below the 49 bytes a v2 header needs after the length field.
    BatchLengthTooSmall(i32),
    /// batchLength is larger than the reader's limit.
    BatchLengthTooLarge {
        /// The declared batchLength.
        length: i32,
        /// The limit the reader enforces.
        limit: usize,
    },
    /// The stored CRC does not match the CRC-32C of attributes..end.
    CrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The attributes name a codec id Kafka does not define.
    UnknownCodec(u8),
    /// recordsCount is negative or disagrees with the records found.
    RecordCount {
        /// Count stored in the header.
        declared: i32,
        /// Records actually decoded (or -1 when the header value alone is invalid).
        found: i64,
    },
    /// A record inside the batch is malformed.
    BadRecord {
        /// Index of the record within the batch.
        index: u32,
        /// Byte position within the (decompressed) records section.
        position: u64,
        /// What is wrong.
        detail: &'static str,
    },
    /// The compressed records section could not be decompressed.
    Decompression(String),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::UnsupportedMagic(m) => {
                write!(f, "magic byte is {m}, only magic 2 (RecordBatch v2) is supported")
            }
            Corruption::BatchLengthTooSmall(l) => write!(f, "batchLength {l} is below the v2 minimum of 49"),
            Corruption::BatchLengthTooLarge { length, limit } => {
                write!(f, "batchLength {length} exceeds the limit of {limit} bytes")
            }
            Corruption::CrcMismatch { stored, computed } => {
                write!(f, "CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            Corruption::UnknownCodec(c) => write!(f, "unknown compression codec id {c}"),
            Corruption::RecordCount { declared, found } => {
                write!(f, "recordsCount is {declared} but {found} records were found")
            }
            Corruption::BadRecord { index, position, detail } => {
                write!(f, "record {index} at byte {position} of the records section: {detail}")
            }
            Corruption::Decompression(m) => write!(f, "records section does not decompress: {m}"),
        }
    }
}
