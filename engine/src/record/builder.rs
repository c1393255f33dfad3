//! Building one record batch sequentially (tests, the mutex accumulator, tools).

use super::default_record::{RecordHeader, put_record};
use super::header::{
    Attributes, BatchHeader, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    RECORD_BATCH_OVERHEAD, TimestampType, finish_crc,
};
use crate::compression::{self, CompressionType};
use crate::error::Result;

/// Producer identity stamped on a batch by an idempotent or transactional producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// producerId.
    pub producer_id: i64,
    /// producerEpoch.
    pub producer_epoch: i16,
    /// Sequence of the batch's first record.
    pub base_sequence: i32,
}

impl ProducerIdentity {
    /// A batch from a producer without idempotence: all fields -1.
    pub const NONE: ProducerIdentity =
        ProducerIdentity { producer_id: NO_PRODUCER_ID, producer_epoch: NO_PRODUCER_EPOCH, base_sequence: NO_SEQUENCE };
}

/// Appends records with consecutive offset deltas, then encodes the batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    records: Vec<u8>,
    compression: CompressionType,
    level: Option<i32>,
    attributes: Attributes,
    producer: ProducerIdentity,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: i32,
}

impl BatchBuilder {
    /// An empty batch compressed with `compression` at the codec's Kafka default level.
    pub fn new(compression: CompressionType) -> Self {
        BatchBuilder {
            records: Vec::new(),
            compression,
            level: None,
            attributes: Attributes { compression, ..Attributes::default() },
            producer: ProducerIdentity::NONE,
            base_timestamp: None,
            max_timestamp: -1,
            count: 0,
        }
    }

    /// Sets the codec level (`compression.<codec>.level`).
    pub fn level(mut self, level: Option<i32>) -> Self {
        self.level = level;
        self
    }

    /// Stamps producerId, producerEpoch and baseSequence.
    pub fn producer(mut self, producer: ProducerIdentity) -> Self {
        self.producer = producer;
        self
    }

    /// Sets the timestamp type, transactional and control bits.
    pub fn flags(mut self, timestamp_type: TimestampType, transactional: bool, control: bool) -> Self {
        self.attributes.timestamp_type = timestamp_type;
        self.attributes.is_transactional = transactional;
        self.attributes.is_control = control;
        self
    }

    /// Appends a record; its offsetDelta is the number of records before it.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[RecordHeader]) {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        // The first record sets it: Kafka refuses timestamps below -1, so starting from -1 (NO_TIMESTAMP)
        // as the Java builder does only differs for inputs Kafka would never accept.
        self.max_timestamp = if self.count == 0 { timestamp } else { self.max_timestamp.max(timestamp) };
        // Java long arithmetic wraps; so does ours, rather than panic on extreme timestamps.
        put_record(&mut self.records, timestamp.wrapping_sub(base), self.count, key, value, headers);
        self.count += 1;
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Size of the batch if it were encoded without compression.
    pub fn uncompressed_size(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// Encodes the batch at `base_offset`: header, (compressed) records, CRC.
    pub fn build(&self, base_offset: i64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.uncompressed_size());
        out.resize(RECORD_BATCH_OVERHEAD, 0);
        if self.compression == CompressionType::None {
            out.extend_from_slice(&self.records);
        } else {
            compression::compress(self.compression, self.level, &self.records, &mut out)?;
        }
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let header = BatchHeader {
            base_offset,
            batch_length: (out.len() - 12) as i32,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            magic: MAGIC_V2,
            crc: 0,
            attributes: self.attributes,
            last_offset_delta: (self.count - 1).max(0),
            base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer.producer_id,
            producer_epoch: self.producer.producer_epoch,
            base_sequence: self.producer.base_sequence,
            records_count: self.count,
        };
        header.write(&mut out);
        finish_crc(&mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchIter, RecordBatch, offsets};

    #[test]
    fn builds_a_batch_that_reads_back() {
        let mut b = BatchBuilder::new(CompressionType::None).producer(ProducerIdentity {
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 42,
        });
        let headers = [RecordHeader { key: "h".into(), value: None }];
        b.append(1_000, Some(b"k1"), Some(b"v1"), &headers);
        b.append(999, None, None, &[]);
        b.append(1_005, Some(b""), Some(&[0u8; 300]), &[]);
        let bytes = b.build(100).unwrap();
        let batch = RecordBatch::parse(&bytes, 0, usize::MAX).unwrap();
        let h = batch.header();
        assert_eq!((h.base_offset, h.last_offset(), h.records_count), (100, 102, 3));
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_005));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence()), (7, 1, 42, 44));
        let records = batch.records().unwrap();
        let got: Vec<_> = records.iter().collect::<Result<_>>().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].key, got[0].value, got[0].header_count()), (Some(&b"k1"[..]), Some(&b"v1"[..]), 1));
        assert_eq!(got[0].headers().next().unwrap().key, b"h");
        assert_eq!((got[1].key, got[1].value, got[1].timestamp_delta, got[1].offset_delta), (None, None, -1, 1));
        assert_eq!(got[2].value.unwrap().len(), 300);
    }

    #[test]
    fn crc_detects_a_flipped_byte_and_ignores_base_offset() {
        let mut b = BatchBuilder::new(CompressionType::None);
        b.append(5, Some(b"key"), Some(b"value"), &[]);
        let mut bytes = b.build(0).unwrap();
        crate::record::set_base_offset(&mut bytes, 1 << 40);
        assert!(RecordBatch::parse(&bytes, 0, usize::MAX).is_ok());
        bytes[offsets::RECORDS_COUNT + 5] ^= 1;
        let err = RecordBatch::parse(&bytes, 4096, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("at byte 4096"), "{err}");
        assert!(err.to_string().contains("CRC-32C mismatch"), "{err}");
    }

    #[test]
    fn walk_stops_cleanly_at_a_torn_tail() {
        let mut b = BatchBuilder::new(CompressionType::None);
        b.append(5, None, Some(b"value"), &[]);
        let one = b.build(0).unwrap();
        let mut file = one.clone();
        file.extend_from_slice(&one);
        file.extend_from_slice(&one[..one.len() - 3]);
        let mut walk = BatchIter::new(&file, 0);
        assert_eq!(walk.by_ref().filter(|b| b.is_ok()).count(), 2);
        assert_eq!(walk.partial_tail(), Some(2 * one.len() as u64));
        assert_eq!(walk.valid_end(), 2 * one.len() as u64);
    }

    #[test]
    fn gzip_and_zstd_batches_round_trip() {
        for codec in [CompressionType::Gzip, CompressionType::Zstd] {
            let mut b = BatchBuilder::new(codec);
            for i in 0..100 {
                b.append(i, Some(format!("key-{i}").as_bytes()), Some(&[b'x'; 100]), &[]);
            }
            let bytes = b.build(0).unwrap();
            assert!(bytes.len() < b.uncompressed_size() / 4, "{codec} did not compress");
            let batch = RecordBatch::parse(&bytes, 0, usize::MAX).unwrap();
            assert_eq!(batch.header().attributes.compression, codec);
            assert_eq!(batch.records().unwrap().iter().count(), 100);
        }
    }
}
