//! What a caller sends and what a delivery reports.

use crate::record::RecordHeader;

/// One record to send (Kafka's ProducerRecord), borrowed: the bytes are copied into a batch by `send`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerRecord<'a> {
    /// The key; `None` is Kafka's null key (keyless records are spread by the sticky partitioner).
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Record headers.
    pub headers: &'a [RecordHeader],
    /// An explicit partition, which wins over the partitioner.
    pub partition: Option<u32>,
    /// CreateTime in ms since the epoch; `None` takes the current time.
    pub timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A record with a value and an optional key, everything else defaulted.
    pub fn new(key: Option<&'a [u8]>, value: &'a [u8]) -> Self {
        ProducerRecord { key, value: Some(value), ..ProducerRecord::default() }
    }
}

/// Where a delivered record landed (Kafka's RecordMetadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: u32,
    /// The record's offset, or -1 with acks=0.
    pub offset: i64,
    /// CreateTime of the record, or the log's append time under LogAppendTime.
    pub timestamp: i64,
}
