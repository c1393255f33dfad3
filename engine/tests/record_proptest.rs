//! Property tests: any records, any codec, any producer fields encode and decode back unchanged; any
//! damage to a valid batch gives an error, never a panic or wrong data passed off as valid.

use kbench_engine::record::{BatchBuilder, BatchIter, ProducerIdentity, RecordBatch, RecordHeader, TimestampType};
use kbench_engine::{CompressionType, compression};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<RecordHeader>,
}

fn bytes(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.8,
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..max),
            // Compressible text, so codecs take their match paths too.
            "[a-c ]{0,200}".prop_map(String::into_bytes),
        ],
    )
}

fn record() -> impl Strategy<Value = Rec> {
    let header = ("[a-z\u{e9}]{0,8}", bytes(16)).prop_map(|(key, value)| RecordHeader { key, value });
    (
        prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000],
        bytes(48),
        bytes(600),
        prop::collection::vec(header, 0..3),
    )
        .prop_map(|(timestamp, key, value, headers)| Rec { timestamp, key, value, headers })
}

fn codec() -> impl Strategy<Value = CompressionType> {
    prop::sample::select(CompressionType::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn batches_round_trip(
        records in prop::collection::vec(record(), 1..40),
        codec in codec(),
        base_offset in 0i64..i64::MAX / 2,
        producer_id in -1i64..1 << 40,
        producer_epoch in -1i16..i16::MAX,
        base_sequence in -1i32..i32::MAX,
        log_append_time: bool,
        transactional: bool,
        control: bool,
    ) {
        let timestamp_type = if log_append_time { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
        let mut builder = BatchBuilder::new(codec)
            .producer(ProducerIdentity { producer_id, producer_epoch, base_sequence })
            .flags(timestamp_type, transactional, control);
        for r in &records {
            builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        }
        let bytes = builder.build(base_offset).unwrap();
        let batch = RecordBatch::parse(&bytes, 0, usize::MAX).unwrap();
        let h = batch.header();
        prop_assert_eq!(batch.size_in_bytes(), bytes.len());
        prop_assert_eq!(h.base_offset, base_offset);
        prop_assert_eq!(h.last_offset(), base_offset + records.len() as i64 - 1);
        prop_assert_eq!(h.records_count as usize, records.len());
        prop_assert_eq!(h.attributes.compression, codec);
        prop_assert_eq!(h.attributes.timestamp_type, timestamp_type);
        prop_assert_eq!((h.attributes.is_transactional, h.attributes.is_control), (transactional, control));
        prop_assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (producer_id, producer_epoch, base_sequence));
        prop_assert_eq!(h.base_timestamp, records[0].timestamp);
        prop_assert_eq!(h.max_timestamp, records.iter().map(|r| r.timestamp).max().unwrap());
        let decoded = batch.records().unwrap();
        let mut n = 0;
        for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
            let got = got.unwrap();
            prop_assert_eq!(h.base_timestamp.wrapping_add(got.timestamp_delta), want.timestamp);
            prop_assert_eq!(got.offset_delta as usize, i);
            prop_assert_eq!(got.key, want.key.as_deref());
            prop_assert_eq!(got.value, want.value.as_deref());
            let headers: Vec<_> = got.headers().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
            let want_headers: Vec<_> =
                want.headers.iter().map(|h| (h.key.as_bytes().to_vec(), h.value.clone())).collect();
            prop_assert_eq!(headers, want_headers);
            n += 1;
        }
        prop_assert_eq!(n, records.len());
        prop_assert!(decoded.iter().all(|r| r.is_ok()));
    }

    #[test]
    fn codecs_round_trip(
        input in prop_oneof![prop::collection::vec(any::<u8>(), 0..200_000), "[a-d]{0,70000}".prop_map(String::into_bytes)],
        codec in codec(),
    ) {
        let mut compressed = b"prefix".to_vec();
        compression::compress(codec, None, &input, &mut compressed).unwrap();
        let mut out = b"kept".to_vec();
        compression::decompress(codec, &compressed[6..], &mut out, usize::MAX).unwrap();
        prop_assert_eq!(&out[..4], b"kept");
        prop_assert!(out[4..] == input[..]);
        if !input.is_empty() {
            let mut short = Vec::new();
            prop_assert!(compression::decompress(codec, &compressed[6..], &mut short, input.len() - 1).is_err());
        }
    }

    #[test]
    fn damaged_segments_never_panic(
        records in prop::collection::vec(record(), 1..10),
        codec in codec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut segment = Vec::new();
        for base in [0, 100] {
            let mut builder = BatchBuilder::new(codec);
            for r in &records {
                builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
            }
            segment.extend(builder.build(base).unwrap());
        }
        let pristine = segment.clone();
        for (at, xor) in &flips {
            let i = at.index(segment.len());
            segment[i] ^= xor;
        }
        let len = cut.index(segment.len() + 1);
        let damaged = &segment[..len];
        let mut iter = BatchIter::new(damaged, 0);
        let mut end = 0;
        for batch in iter.by_ref() {
            let Ok(batch) = batch else { break };
            // A batch that passes validation must hold what the writer produced from attributes on
            // (damage passing the CRC-32C would need a 1 in 2^32 collision); baseOffset and the
            // leader epoch are outside the CRC, so flips there pass, as they do in Kafka.
            let at = batch.position() as usize;
            prop_assert_eq!(&batch.as_bytes()[21..], &pristine[at + 21..at + batch.size_in_bytes()]);
            if let Ok(records) = batch.records() {
                for r in records.iter() {
                    let _ = r;
                }
            }
            end = at + batch.size_in_bytes();
        }
        prop_assert_eq!(iter.valid_end() as usize, end);
    }
}
