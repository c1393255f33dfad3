//! Helpers shared by the `log_*` tests: batches built with the record layer, synchronous appends,
//! and a full read of a partition that checks every batch it is served.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::mpsc;

use kbench_engine::CompressionType;
use kbench_engine::log::{AppendOutcome, TopicLog};
use kbench_engine::record::{BatchBuilder, BatchIter, ProducerIdentity};

/// A batch of `records` records, values `"{tag}-{i}"` padded to `value_len`, all at `timestamp`.
pub fn batch(tag: &str, records: usize, value_len: usize, timestamp: i64, producer: ProducerIdentity) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None).producer(producer);
    for i in 0..records {
        let mut value = format!("{tag}-{i}").into_bytes();
        value.resize(value_len.max(value.len()), b'.');
        b.append(timestamp, Some(i.to_string().as_bytes()), Some(&value), &[]);
    }
    b.build(0).expect("build batch")
}

/// A plain (non-idempotent) batch.
pub fn plain(tag: &str, records: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    batch(tag, records, value_len, timestamp, ProducerIdentity::NONE)
}

/// Appends and waits for the callback.
pub fn append(log: &TopicLog, partition: u32, bytes: Vec<u8>) -> kbench_engine::Result<AppendOutcome> {
    let (tx, rx) = mpsc::channel();
    log.append(
        partition,
        bytes,
        Box::new(move |r, _buf| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().expect("the callback runs exactly once")
}

/// Every record of `partition` from the log start to the end as (offset, value), asserting that
/// offsets are contiguous and every served batch is whole and valid (CRC checked).
pub fn read_all(log: &TopicLog, partition: u32) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset(partition);
    let end = log.log_end_offset(partition);
    while offset < end {
        let fetch = log.read(partition, offset, 64 * 1024).expect("read");
        assert!(!fetch.bytes.is_empty(), "partition {partition}: nothing served at {offset} below the end {end}");
        let mut iter = BatchIter::new(&fetch.bytes, 0);
        for b in iter.by_ref() {
            let b = b.expect("a served batch is valid");
            assert_eq!(b.header().base_offset, offset, "offsets are contiguous");
            for r in b.records().expect("records").iter() {
                let r = r.expect("record");
                let value = String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned();
                out.push((b.header().base_offset + i64::from(r.offset_delta), value));
            }
            offset = b.header().last_offset() + 1;
        }
        assert!(iter.partial_tail().is_none(), "a read ends in a partial batch");
    }
    out
}

/// Names of the files in a partition directory, sorted.
pub fn files(log: &TopicLog, partition: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(log.dir(partition))
        .expect("partition dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
