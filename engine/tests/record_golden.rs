//! Golden vectors: segment files written by kafka-python (a Kafka-conformant writer that is not ours,
//! see scripts/gen-golden.py) decode field by field, for every codec; and our encoder's bytes match
//! hand-verified layouts.

use kbench_engine::CompressionType;
use kbench_engine::record::{
    BatchBuilder, BatchIter, ProducerIdentity, RecordBatch, RecordHeader, TimestampType, compute_crc,
};

const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
const TIMESTAMP_JITTER: [i64; 5] = [0, 5, 3, 12, 7];
/// (baseOffset, producerId, producerEpoch, baseSequence, transactional, record count): as the script.
const BATCHES: [(i64, i64, i16, i32, bool, usize); 3] =
    [(0, -1, -1, -1, false, 5), (5, 4242, 3, 17, false, 4), (9, 4242, 3, 21, true, 2)];

struct Expected {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Mirrors `record()` in scripts/gen-golden.py.
fn expected(b: usize, i: usize) -> Expected {
    let key = (i % 3 != 1).then(|| format!("key-{b}-{i}").into_bytes());
    let value = if b == 0 && i == 4 {
        None
    } else if b == 1 && i == 1 {
        Some((0..3600).flat_map(|j| format!("{j:08} kafka record payload\n").into_bytes()).collect())
    } else {
        Some(format!("value {b} {i} ").repeat(20).into_bytes())
    };
    let headers = if i.is_multiple_of(2) {
        vec![(b"h1".to_vec(), Some(b"v1".to_vec())), (b"null".to_vec(), None)]
    } else {
        vec![]
    };
    Expected { timestamp: BASE_TIMESTAMP + b as i64 * 1000 + TIMESTAMP_JITTER[i % 5], key, value, headers }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn kafka_python_segments_decode_field_by_field() {
    for codec in CompressionType::ALL {
        let bytes = fixture(&format!("kafka-python-{codec}.log"));
        let mut iter = BatchIter::new(&bytes, 0);
        let mut position = 0u64;
        for (b, &(base_offset, pid, epoch, seq, txn, count)) in BATCHES.iter().enumerate() {
            let batch = iter.next().unwrap_or_else(|| panic!("{codec}: batch {b} missing")).unwrap();
            let h = batch.header();
            let ctx = format!("{codec} batch {b}");
            assert_eq!(batch.position(), position, "{ctx}");
            assert_eq!(h.base_offset, base_offset, "{ctx}");
            assert_eq!(h.partition_leader_epoch, 7, "{ctx}");
            assert_eq!(h.magic, 2, "{ctx}");
            assert_eq!(h.crc, compute_crc(batch.as_bytes()), "{ctx}");
            assert_eq!(h.attributes.compression, codec, "{ctx}");
            assert_eq!(h.attributes.timestamp_type, TimestampType::CreateTime, "{ctx}");
            assert_eq!((h.attributes.is_transactional, h.attributes.is_control), (txn, false), "{ctx}");
            assert_eq!(h.last_offset_delta, count as i32 - 1, "{ctx}");
            assert_eq!(h.last_offset(), base_offset + count as i64 - 1, "{ctx}");
            let timestamps: Vec<i64> = (0..count).map(|i| expected(b, i).timestamp).collect();
            assert_eq!(h.base_timestamp, timestamps[0], "{ctx}");
            assert_eq!(h.max_timestamp, *timestamps.iter().max().unwrap(), "{ctx}");
            assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (pid, epoch, seq), "{ctx}");
            assert_eq!(h.records_count, count as i32, "{ctx}");
            let records = batch.records().unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let mut n = 0;
            for (i, record) in records.iter().enumerate() {
                let record = record.unwrap_or_else(|e| panic!("{ctx} record {i}: {e}"));
                let want = expected(b, i);
                assert_eq!(record.attributes, 0);
                assert_eq!(h.base_timestamp + record.timestamp_delta, want.timestamp, "{ctx} record {i}");
                assert_eq!(record.offset_delta, i as i32, "{ctx} record {i}");
                assert_eq!(record.key, want.key.as_deref(), "{ctx} record {i}");
                assert_eq!(record.value, want.value.as_deref(), "{ctx} record {i}");
                let headers: Vec<_> = record.headers().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
                assert_eq!(headers, want.headers, "{ctx} record {i}");
                n += 1;
            }
            assert_eq!(n, count, "{ctx}");
            position += batch.size_in_bytes() as u64;
        }
        assert!(iter.next().is_none(), "{codec}: trailing data");
        assert_eq!(iter.valid_end(), bytes.len() as u64);
        assert_eq!(iter.partial_tail(), None);
    }
}

#[test]
fn compressed_fixtures_use_kafkas_framing() {
    // The first batch's records section starts at byte 61 of each file.
    let snappy = fixture("kafka-python-snappy.log");
    assert_eq!(&snappy[61..77], &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    let lz4 = fixture("kafka-python-lz4.log");
    assert_eq!(&lz4[61..65], &[0x04, 0x22, 0x4d, 0x18]);
    let gzip = fixture("kafka-python-gzip.log");
    assert_eq!(&gzip[61..63], &[0x1f, 0x8b]);
    let zstd = fixture("kafka-python-zstd.log");
    assert_eq!(&zstd[61..65], &[0x28, 0xb5, 0x2f, 0xfd]);
}

#[test]
fn a_torn_tail_stops_the_walk_cleanly() {
    let bytes = fixture("kafka-python-lz4.log");
    let first = RecordBatch::parse(&bytes, 0, usize::MAX).unwrap().size_in_bytes();
    for cut in [first + 1, first + 16, first + 61, bytes.len() - 1] {
        let mut iter = BatchIter::new(&bytes[..cut], 0);
        let batches = iter.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        assert!(!batches.is_empty() && iter.partial_tail().is_some(), "cut at {cut}");
        assert_eq!(iter.valid_end(), iter.partial_tail().unwrap());
    }
}

/// A batch whose every byte was checked by hand against Kafka's layout (kafka-format.md), so a change
/// in our encoder's output shows up as a diff here.
#[test]
fn encoder_matches_a_hand_verified_batch() {
    let mut b = BatchBuilder::new(CompressionType::None)
        .producer(ProducerIdentity { producer_id: 1, producer_epoch: 2, base_sequence: 3 })
        .flags(TimestampType::CreateTime, true, false);
    b.append(1_000, Some(b"k"), Some(b"vv"), &[RecordHeader { key: "h".into(), value: None }]);
    b.append(999, None, None, &[]);
    let bytes = b.build(0x10).unwrap();
    #[rustfmt::skip]
    let mut want: Vec<u8> = vec![
        0, 0, 0, 0, 0, 0, 0, 0x10,          // baseOffset 16
        0, 0, 0, 69,                        // batchLength = 81 - 12
        0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch -1
        2,                                  // magic
        0, 0, 0, 0,                         // crc, filled below
        0, 0x10,                            // attributes: transactional, no codec, CreateTime
        0, 0, 0, 1,                         // lastOffsetDelta
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // maxTimestamp 1000
        0, 0, 0, 0, 0, 0, 0, 1,             // producerId
        0, 2,                               // producerEpoch
        0, 0, 0, 3,                         // baseSequence
        0, 0, 0, 2,                         // recordsCount
        // record 0: body length 12 (zig-zag 24), attrs, tsDelta 0, offDelta 0, key len 1 "k", value len 2 "vv",
        // 1 header: key len 1 "h", value null
        24, 0, 0, 0, 2, b'k', 4, b'v', b'v', 2, 2, b'h', 1,
        // record 1: body length 6 (zig-zag 12), attrs, tsDelta -1 (zig-zag 1), offDelta 1 (2), key null, value null, 0 headers
        12, 0, 1, 2, 1, 1, 0,
    ];
    // The CRC-32C is checked independently against the reference implementation's known value for
    // "123456789" below, then applied to the expected bytes.
    assert_eq!(crc32c_reference(b"123456789"), 0xe306_9283);
    let crc = crc32c_reference(&want[21..]);
    want[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(bytes, want);
}

/// Bitwise CRC-32C (reflected polynomial 0x82F63B78): slow, obviously correct, independent of the
/// hardware-accelerated crate the engine uses.
fn crc32c_reference(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// Found by the batch_decoder fuzz target: baseOffset i64::MAX with a positive lastOffsetDelta
/// overflowed `last_offset` (a panic in debug builds). It wraps, as Java's long arithmetic does.
#[test]
fn last_offset_of_a_hostile_header_wraps_instead_of_panicking() {
    let mut b = kbench_engine::record::BatchBuilder::new(kbench_engine::CompressionType::None);
    b.append(0, None, Some(b"a"), &[]);
    b.append(0, None, Some(b"b"), &[]);
    let bytes = b.build(i64::MAX).unwrap();
    let batch = kbench_engine::record::RecordBatch::parse(&bytes, 0, usize::MAX).unwrap();
    assert_eq!(batch.header().last_offset(), i64::MIN);
}
