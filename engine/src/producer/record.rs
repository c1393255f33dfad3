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

/// The size KafkaProducer checks against `max.request.size` and `buffer.memory` before it appends a
/// record (`ensureValidRecordSize` of `estimateSizeInBytesUpperBound`): the record alone in a batch, at
/// the worst-case timestamp and offset deltas, uncompressed.
///
/// Computed from lengths (`None`: a null key, value or header value; headers as key and value
/// lengths), so a record can be judged before it is built; the accumulator refuses the same size.
pub fn serialized_size_upper_bound(
    key: Option<usize>,
    value: Option<usize>,
    headers: &[(usize, Option<usize>)],
) -> u64 {
    use crate::record::RECORD_BATCH_OVERHEAD;
    use crate::record::varint::{MAX_VARINT_LEN, MAX_VARLONG_LEN, varint_len};
    // A length prefix is a varint of the length (-1 for null); lengths past i32 take the most bytes.
    let bytes = |len: Option<usize>| -> u64 {
        match len {
            None => 1,
            Some(n) => i32::try_from(n).map_or(MAX_VARINT_LEN, varint_len) as u64 + n as u64,
        }
    };
    let headers_len: u64 = headers.iter().map(|(k, v)| bytes(Some(*k)) + bytes(*v)).sum();
    let header_count = i32::try_from(headers.len()).map_or(MAX_VARINT_LEN, varint_len) as u64;
    // Record: length varint, attributes, timestampDelta varlong, offsetDelta varint, then the parts.
    (RECORD_BATCH_OVERHEAD + MAX_VARINT_LEN + 1 + MAX_VARLONG_LEN + MAX_VARINT_LEN) as u64
        + bytes(key)
        + bytes(value)
        + header_count
        + headers_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RECORD_BATCH_OVERHEAD, record_size_upper_bound};

    #[test]
    fn the_size_from_lengths_is_the_size_of_the_built_record() {
        let headers = vec![
            RecordHeader { key: "h0".into(), value: Some(b"header-value-0000".to_vec()) },
            RecordHeader { key: "kbench-id".into(), value: None },
        ];
        type Shape<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [RecordHeader]);
        let shapes: [Shape<'_>; 4] = [
            (None, Some(&[7u8; 100]), &[]),
            (Some(b"0000000000000042"), Some(&[7u8; 70_000]), &headers),
            (None, None, &[]),
            (Some(&[1u8; 300]), Some(&[]), &headers[..1]),
        ];
        for (key, value, hs) in shapes {
            let built = (record_size_upper_bound(key, value, hs) + RECORD_BATCH_OVERHEAD) as u64;
            let lengths: Vec<(usize, Option<usize>)> =
                hs.iter().map(|h| (h.key.len(), h.value.as_ref().map(Vec::len))).collect();
            let from_lengths = serialized_size_upper_bound(key.map(<[u8]>::len), value.map(<[u8]>::len), &lengths);
            assert_eq!(from_lengths, built, "key {:?} value {:?}", key.map(<[u8]>::len), value.map(<[u8]>::len));
        }
        // 2 GiB does not fit an i32 length: the largest prefix, no wrap-around.
        assert_eq!(serialized_size_upper_bound(None, Some(2 << 30), &[]), 61 + 21 + 1 + 5 + (2 << 30) + 1);
    }
}
