//! Many threads, many keys, one shared producer: every acknowledged record is in the log exactly
//! once, and records of one key keep the order they were sent in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::AccumulatorKind;
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kbench_engine::record::BatchIter;
use kbench_engine::{CompressionType, Error};

const THREADS: u32 = 16;
const PER_THREAD: u32 = 4_000;
const KEYS: u32 = 200;
const PARTITIONS: u32 = 8;

fn log_config(io: IoBackendKind) -> LogConfig {
    LogConfig { io, segment_bytes: 256 * 1024, ..LogConfig::default() }
}

/// Reads every record of every partition: (partition, offset, key, value).
fn read_all(log: &TopicLog) -> Vec<(u32, i64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for p in 0..log.partitions() {
        let mut offset = log.log_start_offset(p);
        while offset < log.log_end_offset(p) {
            let fetch = log.read(p, offset, 1 << 20).expect("read");
            assert!(!fetch.bytes.is_empty(), "no data at offset {offset} below the log end");
            for batch in BatchIter::new(&fetch.bytes, 0) {
                let batch = batch.expect("a served batch is valid");
                let base = batch.header().base_offset;
                let records = batch.records().expect("records decode");
                for r in records.iter() {
                    let r = r.expect("record decodes");
                    let off = base + i64::from(r.offset_delta);
                    if off >= offset {
                        out.push((p, off, r.key.unwrap_or_default().to_vec(), r.value.unwrap_or_default().to_vec()));
                    }
                }
                offset = batch.header().last_offset() + 1;
            }
        }
    }
    out
}

fn stress(kind: AccumulatorKind, compression: CompressionType) {
    stress_with(kind, compression, Duration::from_millis(1), 5);
}

fn stress_with(kind: AccumulatorKind, compression: CompressionType, linger: Duration, max_in_flight: u32) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(dir.path(), "stress", PARTITIONS, log_config(IoBackendKind::Pwrite)).unwrap());
    let config = ProducerConfig {
        acks: Acks::All,
        batch_size: 4096,
        linger,
        compression,
        accumulator: kind,
        max_in_flight,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(config, Arc::clone(&log), None).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let producer = producer.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut futures = Vec::new();
                for i in 0..PER_THREAD {
                    let key = format!("key-{}", (t * 7919 + i) % KEYS);
                    let value = format!("{t}:{i}");
                    let future =
                        producer.send(&ProducerRecord::new(Some(key.as_bytes()), value.as_bytes())).expect("send");
                    futures.push((key, value, future));
                }
                for (key, value, f) in futures {
                    let meta = f.get().expect("delivery");
                    acked.push((meta.partition, meta.offset, key, value));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    producer.close().unwrap();
    assert_eq!(acked.len(), (THREADS * PER_THREAD) as usize);

    let stored = read_all(&log);
    type KeyValue<'a> = (&'a [u8], &'a [u8]);
    let by_position: HashMap<(u32, i64), KeyValue<'_>> =
        stored.iter().map(|(p, o, k, v)| ((*p, *o), (k.as_slice(), v.as_slice()))).collect();
    assert_eq!(by_position.len(), stored.len(), "an offset is served twice");
    assert_eq!(stored.len(), acked.len(), "the log holds a different number of records than were acknowledged");
    for (p, o, k, v) in &acked {
        let (sk, sv) = by_position.get(&(*p, *o)).unwrap_or_else(|| panic!("acked record {p}/{o} missing"));
        assert_eq!((*sk, *sv), (k.as_bytes(), v.as_bytes()), "record at {p}/{o} differs from what was acked");
    }
    // Per key: offsets grow in the order each thread sent.
    let mut last: HashMap<(String, u32), (u32, i64)> = HashMap::new();
    let mut sorted = stored.clone();
    sorted.sort_by_key(|(p, o, _, _)| (*p, *o));
    for (p, o, k, v) in sorted {
        let v = String::from_utf8(v).unwrap();
        let (t, i) = v.split_once(':').unwrap();
        let (t, i): (u32, u32) = (t.parse().unwrap(), i.parse().unwrap());
        let k = String::from_utf8(k).unwrap();
        if let Some((prev_i, prev_o)) = last.insert((k.clone(), t), (i, o)) {
            assert!(prev_i < i, "key {k} from thread {t}: record {i} at {p}/{o} after record {prev_i} at {prev_o}");
        }
    }
    for p in 0..PARTITIONS {
        let count = stored.iter().filter(|r| r.0 == p).count() as i64;
        assert_eq!(
            log.log_end_offset(p) - log.log_start_offset(p),
            count,
            "offsets of partition {p} are not contiguous"
        );
    }
    log.close().unwrap();
}

#[test]
fn lockfree_sixteen_threads_exactly_once_in_key_order() {
    stress(AccumulatorKind::LockFree, CompressionType::None);
}

#[test]
fn lockfree_with_lz4_exactly_once_in_key_order() {
    stress(AccumulatorKind::LockFree, CompressionType::Lz4);
}

/// The sender at max.in.flight.requests.per.connection=1 with linger.ms 0: it waits for each drain's
/// completion before the next, and nothing is lost, duplicated or reordered meanwhile.
#[test]
fn one_request_in_flight_exactly_once_in_key_order() {
    stress_with(AccumulatorKind::LockFree, CompressionType::None, Duration::ZERO, 1);
    stress_with(AccumulatorKind::Mutex, CompressionType::None, Duration::ZERO, 1);
}

#[test]
fn mutex_sixteen_threads_exactly_once_in_key_order() {
    stress(AccumulatorKind::Mutex, CompressionType::Zstd);
}

#[test]
fn close_drains_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(dir.path(), "close", 2, log_config(IoBackendKind::Discard)).unwrap());
    let config = ProducerConfig { linger: Duration::from_secs(60), ..ProducerConfig::default() };
    let producer = Producer::new(config, Arc::clone(&log), None).unwrap();
    let futures: Vec<_> =
        (0..100).map(|i: u32| producer.send(&ProducerRecord::new(None, &i.to_be_bytes())).unwrap()).collect();
    // linger.ms = 60 s: only close can have made these batches ready.
    producer.close().unwrap();
    for f in futures {
        assert!(f.is_done(), "close returned before an accepted record completed");
        f.get().expect("accepted before close, so delivered");
    }
    let err = producer.send(&ProducerRecord::new(None, b"late")).unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

#[test]
fn flush_ignores_linger() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(dir.path(), "flush", 1, log_config(IoBackendKind::Pwrite)).unwrap());
    let config = ProducerConfig { linger: Duration::from_secs(60), ..ProducerConfig::default() };
    let producer = Producer::new(config, Arc::clone(&log), None).unwrap();
    let f = producer.send(&ProducerRecord::new(Some(b"k"), b"v")).unwrap();
    assert!(f.get_timeout(Duration::from_millis(200)).is_none(), "completed before linger.ms or flush");
    producer.flush().unwrap();
    assert!(f.is_done(), "flush returned before the record completed");
    assert_eq!(f.get().unwrap().offset, 0);
    producer.close().unwrap();
}

#[test]
fn acks_zero_completes_at_send_with_unknown_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(dir.path(), "acks0", 1, log_config(IoBackendKind::Pwrite)).unwrap());
    let config = ProducerConfig { acks: Acks::Zero, enable_idempotence: false, ..ProducerConfig::default() };
    let producer = Producer::new(config, Arc::clone(&log), None).unwrap();
    let f = producer.send(&ProducerRecord::new(None, b"v")).unwrap();
    assert!(f.is_done());
    assert_eq!(f.get().unwrap().offset, -1);
    producer.close().unwrap();
    assert_eq!(log.log_end_offset(0), 1, "the record still reaches the log");
}

#[test]
fn unknown_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(TopicLog::open(dir.path(), "p", 3, log_config(IoBackendKind::Discard)).unwrap());
    let producer = Producer::new(ProducerConfig::default(), log, None).unwrap();
    let record = ProducerRecord { partition: Some(3), ..ProducerRecord::new(None, b"v") };
    assert!(matches!(producer.send(&record), Err(Error::UnknownPartition { partition: 3, partitions: 3 })));
    producer.close().unwrap();
}

/// linger.ms=0 with threads racing to open batches on one partition: every delivery completes
/// (a batch opened by one thread and first filled by another must still reach the sender).
#[test]
fn linger_zero_racing_installs_all_complete() {
    for kind in [AccumulatorKind::LockFree, AccumulatorKind::Mutex] {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TopicLog::open(dir.path(), "race", 1, log_config(IoBackendKind::Discard)).unwrap());
        let config =
            ProducerConfig { linger: Duration::ZERO, batch_size: 512, accumulator: kind, ..ProducerConfig::default() };
        let producer = Producer::new(config, Arc::clone(&log), None).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let producer = producer.clone();
                std::thread::spawn(move || {
                    for i in 0..3_000u32 {
                        let value = [t as u8; 100];
                        let f = producer.send(&ProducerRecord::new(None, &value)).unwrap();
                        if i % 97 == 0 {
                            f.get_timeout(Duration::from_secs(10)).expect("a delivery never completed").unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        producer.close().unwrap();
        assert_eq!(log.log_end_offset(0), 12_000, "{kind:?}");
    }
}
