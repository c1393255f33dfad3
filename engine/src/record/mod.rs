//! Kafka's RecordBatch v2 format, byte for byte: varints, records, the batch header, building and
//! reading batches, and walking a segment's batches.

mod batch;
mod builder;
mod default_record;
mod header;
pub mod varint;

pub use batch::{BatchIter, DEFAULT_MAX_BATCH_SIZE, RecordBatch, RecordIter, Records};
pub use builder::{BatchBuilder, ProducerIdentity};
pub use default_record::{
    HeaderIter, HeaderRef, RecordHeader, RecordParts, RecordRef, decode_record, put_record, record_body_size,
    record_size, record_size_upper_bound, write_record,
};
pub use header::{
    Attributes, BatchHeader, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, RECORD_BATCH_OVERHEAD, TimestampType, compute_crc, finish_crc, offsets, set_base_offset,
    set_partition_leader_epoch,
};
