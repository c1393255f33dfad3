//! The 61-byte RecordBatch v2 header: field positions, attributes, and reading/writing them.

use crate::compression::CompressionType;
use crate::error::{Corruption, Error, Result};

/// Size of the v2 batch header; the records section starts here.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Bytes before and including `batchLength` (baseOffset + batchLength): not counted by batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic value this engine reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Byte positions of the header fields (Kafka's `DefaultRecordBatch` layout).
pub mod offsets {
    /// i64 baseOffset.
    pub const BASE_OFFSET: usize = 0;
    /// i32 batchLength (bytes after this field).
    pub const BATCH_LENGTH: usize = 8;
    /// i32 partitionLeaderEpoch (not covered by the CRC).
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    /// i8 magic.
    pub const MAGIC: usize = 16;
    /// u32 CRC-32C of bytes ATTRIBUTES..end.
    pub const CRC: usize = 17;
    /// i16 attributes; the CRC covers from here to the end of the batch.
    pub const ATTRIBUTES: usize = 21;
    /// i32 lastOffsetDelta.
    pub const LAST_OFFSET_DELTA: usize = 23;
    /// i64 baseTimestamp.
    pub const BASE_TIMESTAMP: usize = 27;
    /// i64 maxTimestamp.
    pub const MAX_TIMESTAMP: usize = 35;
    /// i64 producerId.
    pub const PRODUCER_ID: usize = 43;
    /// i16 producerEpoch.
    pub const PRODUCER_EPOCH: usize = 51;
    /// i32 baseSequence.
    pub const BASE_SEQUENCE: usize = 53;
    /// i32 recordsCount.
    pub const RECORDS_COUNT: usize = 57;
}

/// `producerId` / `producerEpoch` / `baseSequence` value meaning "none".
pub const NO_PRODUCER_ID: i64 = -1;
/// See [`NO_PRODUCER_ID`].
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// See [`NO_PRODUCER_ID`].
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` when unknown.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

const CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Which clock a batch's timestamps come from (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker on append.
    LogAppendTime,
}

/// The batch attributes (i16) decoded into their parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes {
    /// Codec of the records section.
    pub compression: CompressionType,
    /// Timestamp type.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub is_transactional: bool,
    /// A control batch (transaction marker).
    pub is_control: bool,
    /// baseTimestamp holds the delete horizon (set by compaction).
    pub has_delete_horizon: bool,
}

impl Attributes {
    /// Encodes the attributes as stored.
    pub fn to_i16(self) -> i16 {
        let mut a = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            a |= TIMESTAMP_TYPE_BIT;
        }
        if self.is_transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if self.is_control {
            a |= CONTROL_BIT;
        }
        if self.has_delete_horizon {
            a |= DELETE_HORIZON_BIT;
        }
        a
    }

    /// Decodes stored attributes; `None` when the codec id is not one Kafka defines.
    pub fn from_i16(a: i16) -> Option<Self> {
        Some(Attributes {
            compression: CompressionType::from_id((a & CODEC_MASK) as u8)?,
            timestamp_type: if a & TIMESTAMP_TYPE_BIT != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            is_transactional: a & TRANSACTIONAL_BIT != 0,
            is_control: a & CONTROL_BIT != 0,
            has_delete_horizon: a & DELETE_HORIZON_BIT != 0,
        })
    }
}

/// Every field of a v2 batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes of the batch after the batchLength field.
    pub batch_length: i32,
    /// Leader epoch at append time, or -1.
    pub partition_leader_epoch: i32,
    /// Magic byte (always 2 for a header that parsed).
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Decoded attributes.
    pub attributes: Attributes,
    /// Offset of the last record minus baseOffset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Total size of the batch on disk, header included.
    pub fn size_in_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        // Java long arithmetic wraps; a hostile baseOffset near i64::MAX must not panic a reader.
        self.base_offset.wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Sequence number of the last record (wrapping as Kafka's does), or -1 without a sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            NO_SEQUENCE
        } else {
            // Kafka: DefaultRecordBatch.incrementSequence wraps past Integer.MAX_VALUE to 0.
            let next = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
            if next > i64::from(i32::MAX) { (next - i64::from(i32::MAX) - 1) as i32 } else { next as i32 }
        }
    }

    /// Parses the header at the start of `bytes` without checking the CRC.
    ///
    /// `position` is where `bytes` starts in its file, used only for error messages. Checks that the
    /// header is complete, that magic is 2, that batchLength is at least the v2 minimum and at most
    /// `max_batch_size` (the whole batch, header included), and that the codec id is known.
    pub fn parse(bytes: &[u8], position: u64, max_batch_size: usize) -> Result<Self> {
        if bytes.len() < RECORD_BATCH_OVERHEAD {
            return Err(Error::Truncated {
                position,
                what: "record batch header",
                needed: RECORD_BATCH_OVERHEAD as u64,
                available: bytes.len() as u64,
            });
        }
        let corrupt = |reason| Error::CorruptBatch { position, reason };
        let batch_length = be_i32(bytes, offsets::BATCH_LENGTH);
        let magic = bytes[offsets::MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(corrupt(Corruption::UnsupportedMagic(magic)));
        }
        if (batch_length as i64) < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i64 {
            return Err(corrupt(Corruption::BatchLengthTooSmall(batch_length)));
        }
        if batch_length as usize + LOG_OVERHEAD > max_batch_size {
            return Err(corrupt(Corruption::BatchLengthTooLarge { length: batch_length, limit: max_batch_size }));
        }
        let raw_attributes = be_i16(bytes, offsets::ATTRIBUTES);
        let attributes = Attributes::from_i16(raw_attributes)
            .ok_or_else(|| corrupt(Corruption::UnknownCodec((raw_attributes & CODEC_MASK) as u8)))?;
        Ok(BatchHeader {
            base_offset: be_i64(bytes, offsets::BASE_OFFSET),
            batch_length,
            partition_leader_epoch: be_i32(bytes, offsets::PARTITION_LEADER_EPOCH),
            magic,
            crc: be_u32(bytes, offsets::CRC),
            attributes,
            last_offset_delta: be_i32(bytes, offsets::LAST_OFFSET_DELTA),
            base_timestamp: be_i64(bytes, offsets::BASE_TIMESTAMP),
            max_timestamp: be_i64(bytes, offsets::MAX_TIMESTAMP),
            producer_id: be_i64(bytes, offsets::PRODUCER_ID),
            producer_epoch: be_i16(bytes, offsets::PRODUCER_EPOCH),
            base_sequence: be_i32(bytes, offsets::BASE_SEQUENCE),
            records_count: be_i32(bytes, offsets::RECORDS_COUNT),
        })
    }

    /// Writes every field except the CRC into `out[..61]`; call [`finish_crc`] once the records follow.
    pub fn write(&self, out: &mut [u8]) {
        out[offsets::BASE_OFFSET..][..8].copy_from_slice(&self.base_offset.to_be_bytes());
        out[offsets::BATCH_LENGTH..][..4].copy_from_slice(&self.batch_length.to_be_bytes());
        out[offsets::PARTITION_LEADER_EPOCH..][..4].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[offsets::MAGIC] = self.magic as u8;
        out[offsets::ATTRIBUTES..][..2].copy_from_slice(&self.attributes.to_i16().to_be_bytes());
        out[offsets::LAST_OFFSET_DELTA..][..4].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[offsets::BASE_TIMESTAMP..][..8].copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[offsets::MAX_TIMESTAMP..][..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[offsets::PRODUCER_ID..][..8].copy_from_slice(&self.producer_id.to_be_bytes());
        out[offsets::PRODUCER_EPOCH..][..2].copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[offsets::BASE_SEQUENCE..][..4].copy_from_slice(&self.base_sequence.to_be_bytes());
        out[offsets::RECORDS_COUNT..][..4].copy_from_slice(&self.records_count.to_be_bytes());
    }
}

/// CRC-32C (Castagnoli, hardware accelerated where the CPU has it) of a whole batch's
/// attributes..end range, as stored in its header.
#[inline]
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[offsets::ATTRIBUTES..])
}

/// Computes and stores the CRC of a complete batch (header + records section).
#[inline]
pub fn finish_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[offsets::CRC..][..4].copy_from_slice(&crc.to_be_bytes());
}

/// Overwrites baseOffset: the log assigns offsets at append time. The CRC does not cover it.
#[inline]
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[offsets::BASE_OFFSET..][..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch, which the CRC does not cover either.
#[inline]
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[offsets::PARTITION_LEADER_EPOCH..][..4].copy_from_slice(&epoch.to_be_bytes());
}

#[inline]
pub(crate) fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
#[inline]
pub(crate) fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
#[inline]
pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
#[inline]
pub(crate) fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
