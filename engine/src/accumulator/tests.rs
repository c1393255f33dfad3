//! Kafka's readiness rules, back-pressure and close, checked on both accumulators alike. The drainer
//! is driven with explicit instants, so linger is tested without sleeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AccumulatorConfig, AccumulatorKind, DrainedBatch, RecordAccumulator, new_accumulator};
use crate::error::Error;
use crate::record::RECORD_BATCH_OVERHEAD;

const KINDS: [AccumulatorKind; 2] = [AccumulatorKind::LockFree, AccumulatorKind::Mutex];
const VALUE: [u8; 100] = [7; 100];
/// Encoded size of a record with no key and VALUE at small deltas.
const RECORD: usize = 109;

#[test]
fn the_record_size_these_tests_assume() {
    assert_eq!(crate::record::record_size(0, 0, None, Some(&VALUE), &[]), RECORD);
}

fn accumulator(kind: AccumulatorKind, config: AccumulatorConfig) -> Arc<dyn RecordAccumulator> {
    new_accumulator(AccumulatorConfig { kind, ..config }).expect("valid config")
}

fn config(batch_records: usize, linger: Duration) -> AccumulatorConfig {
    AccumulatorConfig {
        partitions: 4,
        batch_size: RECORD_BATCH_OVERHEAD + batch_records * RECORD,
        linger,
        ..AccumulatorConfig::default()
    }
}

fn drain(acc: &dyn RecordAccumulator, now: Instant) -> (Vec<DrainedBatch>, Option<Instant>) {
    let mut out = Vec::new();
    let next = acc.drain(now, &mut out);
    (out, next)
}

fn append(acc: &dyn RecordAccumulator, partition: u32) -> super::Appended {
    acc.append(partition, 1_000, None, Some(&VALUE), &[]).expect("append")
}

#[test]
fn a_full_batch_is_ready_before_linger_and_the_next_one_waits() {
    for kind in KINDS {
        let acc = accumulator(kind, config(3, Duration::from_secs(3600)));
        let appended: Vec<_> = (0..4).map(|_| append(acc.as_ref(), 0)).collect();
        assert_eq!(appended.iter().map(|a| a.relative_offset).collect::<Vec<_>>(), [0, 1, 2, 0], "{kind:?}");
        assert!(appended[2].batch_is_full && appended[3].new_batch_created, "{kind:?}");
        let (batches, next) = drain(acc.as_ref(), Instant::now());
        assert_eq!(batches.len(), 1, "{kind:?}: only the full batch");
        assert_eq!(batches[0].record_count, 3);
        assert_eq!(batches[0].buffer.len(), RECORD_BATCH_OVERHEAD + 3 * RECORD);
        assert!(next.is_some_and(|n| n > Instant::now() + Duration::from_secs(3000)), "{kind:?}: due by linger");
        assert!(acc.has_undrained());
    }
}

#[test]
fn a_lingering_batch_is_ready_only_once_linger_ms_passed() {
    for kind in KINDS {
        let linger = Duration::from_millis(200);
        let before = Instant::now();
        let acc = accumulator(kind, config(10, linger));
        append(acc.as_ref(), 1);
        let (batches, next) = drain(acc.as_ref(), Instant::now());
        assert!(batches.is_empty(), "{kind:?}: drained before linger.ms");
        let due = next.expect("a lingering batch reports when it is due");
        assert!(due >= before + linger && due <= Instant::now() + linger, "{kind:?}");
        let (batches, _) = drain(acc.as_ref(), due);
        assert_eq!((batches.len(), batches[0].partition, batches[0].record_count), (1, 1, 1), "{kind:?}");
        assert!(!acc.has_undrained());
    }
}

#[test]
fn flush_makes_every_non_empty_batch_ready_until_it_ends() {
    for kind in KINDS {
        let acc = accumulator(kind, config(10, Duration::from_secs(3600)));
        append(acc.as_ref(), 0);
        append(acc.as_ref(), 3);
        acc.begin_flush();
        let (batches, _) = drain(acc.as_ref(), Instant::now());
        assert_eq!(batches.len(), 2, "{kind:?}");
        acc.end_flush();
        append(acc.as_ref(), 0);
        assert!(drain(acc.as_ref(), Instant::now()).0.is_empty(), "{kind:?}: linger applies again");
    }
}

#[test]
fn close_makes_batches_ready_and_refuses_new_records() {
    for kind in KINDS {
        let acc = accumulator(kind, config(10, Duration::from_secs(3600)));
        append(acc.as_ref(), 2);
        acc.close();
        let err = acc.append(2, 1_000, None, Some(&VALUE), &[]).unwrap_err();
        assert!(matches!(err, Error::Closed { .. }), "{kind:?}: {err}");
        let (batches, _) = drain(acc.as_ref(), Instant::now());
        assert_eq!(batches.len(), 1, "{kind:?}: what was accepted is still drained");
        assert!(!acc.has_undrained());
    }
}

#[test]
fn waiting_for_memory_makes_batches_ready_and_a_drained_batch_frees_the_waiter() {
    for kind in KINDS {
        let batch_size = RECORD_BATCH_OVERHEAD + 10 * RECORD;
        let acc = accumulator(
            kind,
            AccumulatorConfig {
                buffer_memory: 2 * batch_size,
                max_block: Duration::from_secs(30),
                ..config(10, Duration::from_secs(3600))
            },
        );
        append(acc.as_ref(), 0);
        append(acc.as_ref(), 1);
        assert_eq!(acc.available_memory(), 0);
        let blocked = {
            let acc = Arc::clone(&acc);
            std::thread::spawn(move || acc.append(2, 1_000, None, Some(&VALUE), &[]).map(|a| a.relative_offset))
        };
        while acc.memory_waiters() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Lingering for an hour, yet ready: an append is waiting for their memory.
        let (batches, _) = drain(acc.as_ref(), Instant::now());
        assert_eq!(batches.len(), 2, "{kind:?}");
        assert!(!blocked.is_finished(), "{kind:?}: memory is only back once a batch is deallocated");
        for b in batches {
            acc.deallocate(b.buffer);
        }
        assert_eq!(blocked.join().unwrap().expect("append after memory came back"), 0, "{kind:?}");
    }
}

#[test]
fn exhausted_memory_fails_with_buffer_exhausted_after_max_block_ms() {
    for kind in KINDS {
        let batch_size = RECORD_BATCH_OVERHEAD + 10 * RECORD;
        let max_block = Duration::from_millis(50);
        let acc = accumulator(
            kind,
            AccumulatorConfig { buffer_memory: batch_size, max_block, ..config(10, Duration::from_secs(3600)) },
        );
        append(acc.as_ref(), 0);
        let started = Instant::now();
        let err = acc.append(1, 1_000, None, Some(&VALUE), &[]).unwrap_err();
        assert!(started.elapsed() >= max_block, "{kind:?}: gave up early");
        assert!(matches!(err, Error::BufferExhausted { max_block_ms: 50, .. }), "{kind:?}: {err}");
        assert_eq!(acc.memory_waiters(), 0);
    }
}

#[test]
fn an_oversized_record_gets_a_batch_of_its_own_and_over_max_request_size_is_refused() {
    for kind in KINDS {
        let acc = accumulator(kind, config(2, Duration::from_secs(3600)));
        append(acc.as_ref(), 0);
        let big = vec![1u8; 1000];
        let a = acc.append(0, 1_000, None, Some(&big), &[]).expect("a record over batch.size is accepted");
        assert_eq!(a.relative_offset, 0, "{kind:?}: it starts a new batch");
        assert!(a.new_batch_created);
        append(acc.as_ref(), 0);
        acc.close();
        let (batches, _) = drain(acc.as_ref(), Instant::now());
        let counts: Vec<u32> = batches.iter().map(|b| b.record_count).collect();
        assert_eq!(counts, [1, 1, 1], "{kind:?}: small, oversized alone, small");
        let huge = vec![0u8; AccumulatorConfig::default().max_request_size];
        let err = accumulator(kind, config(2, Duration::ZERO)).append(0, 0, None, Some(&huge), &[]).unwrap_err();
        assert!(matches!(err, Error::RecordTooLarge { limit_name: "max.request.size", .. }), "{kind:?}: {err}");
    }
}

#[test]
fn records_of_every_length_varint_width_decode_across_offset_delta_widths() {
    // Values around 55 bytes put the body length next to 64, where the length varint's width moves
    // with the offsetDelta's (the lock-free claim takes its compare-and-swap path there); the others
    // take the fetch_add path. 9000 records cross the offsetDelta widths at 64 and 8192.
    for kind in KINDS {
        for value_len in [0usize, 10, 52, 53, 54, 55, 56, 57, 58, 100, 9000] {
            let records: usize = if value_len == 9000 { 100 } else { 9000 };
            let acc = accumulator(
                kind,
                AccumulatorConfig {
                    partitions: 1,
                    batch_size: 1 << 20,
                    buffer_memory: 64 << 20,
                    linger: Duration::from_secs(3600),
                    ..AccumulatorConfig::default()
                },
            );
            let mut appended = Vec::new();
            for i in 0..records {
                let value = vec![(i % 251) as u8; value_len];
                let a =
                    acc.append(0, 1_000 + (i / 100) as i64, Some(&i.to_le_bytes()), Some(&value), &[]).expect("append");
                appended.push(a.relative_offset);
            }
            acc.close();
            let (batches, _) = drain(acc.as_ref(), Instant::now());
            let mut seen = 0usize;
            for b in &batches {
                let mut at = RECORD_BATCH_OVERHEAD;
                for delta in 0..b.record_count {
                    let (r, used) = crate::record::decode_record(&b.buffer[at..]).expect("decodes");
                    assert_eq!(r.offset_delta as u32, delta, "{kind:?} {value_len}");
                    assert_eq!(r.key, Some(&seen.to_le_bytes()[..]), "{kind:?} {value_len}: order");
                    assert_eq!(r.value.map(<[u8]>::len), Some(value_len));
                    assert_eq!(appended[seen], delta);
                    at += used;
                    seen += 1;
                }
                assert_eq!(at, b.buffer.len(), "{kind:?} {value_len}: nothing after the last record");
            }
            assert_eq!(seen, records, "{kind:?} {value_len}");
        }
    }
}

#[test]
fn has_undrained_holds_until_the_last_batch_is_taken_across_many_partitions() {
    // A count of batches stands in for a scan of every partition: this fails if it drifts either way
    // (full, lingered, flushed and closed batches, and batches drained in several rounds).
    for kind in KINDS {
        let partitions = 1000;
        let linger = Duration::from_secs(3600);
        let acc = accumulator(kind, AccumulatorConfig { partitions, ..config(2, linger) });
        assert!(!acc.has_undrained(), "{kind:?}: empty");
        // Three records in every partition: a full batch of two, and one lingering with one.
        for p in 0..partitions {
            for _ in 0..3 {
                append(acc.as_ref(), p);
            }
        }
        let (full, _) = drain(acc.as_ref(), Instant::now());
        assert_eq!(full.len(), partitions as usize, "{kind:?}: the full batches");
        assert!(acc.has_undrained(), "{kind:?}: the lingering batches are left");
        // One partition's batch lingers on while every other one is flushed.
        acc.begin_flush();
        let (flushed, _) = drain(acc.as_ref(), Instant::now());
        acc.end_flush();
        assert_eq!(flushed.len(), partitions as usize, "{kind:?}: every lingering batch");
        assert!(!acc.has_undrained(), "{kind:?}: everything is drained");
        append(acc.as_ref(), partitions - 1);
        assert!(acc.has_undrained(), "{kind:?}: one record in the last partition");
        assert!(drain(acc.as_ref(), Instant::now()).0.is_empty());
        assert!(acc.has_undrained(), "{kind:?}: still lingering");
        let (lingered, _) = drain(acc.as_ref(), Instant::now() + linger);
        assert_eq!((lingered.len(), lingered[0].partition), (1, partitions - 1), "{kind:?}");
        assert!(!acc.has_undrained(), "{kind:?}: drained by linger");
        append(acc.as_ref(), 7);
        acc.close();
        assert!(acc.has_undrained(), "{kind:?}: close does not drain");
        assert_eq!(drain(acc.as_ref(), Instant::now()).0.len(), 1, "{kind:?}");
        assert!(!acc.has_undrained(), "{kind:?}: closed and drained");
    }
}

#[test]
fn a_completed_batch_is_built_again_in_the_same_memory_and_buffer_memory_comes_back_whole() {
    // One-record batches, each drained, completed and let go before the next: the lock-free
    // accumulator's partition slot keeps a batch until the next one replaces it, so by the third
    // batch the first one's block is free; the mutex accumulator's completion is free at once.
    for kind in KINDS {
        let acc = accumulator(kind, config(1, Duration::ZERO));
        let total = acc.available_memory();
        let mut addresses = Vec::new();
        for i in 0..4 {
            let appended = append(acc.as_ref(), 0);
            assert!(appended.batch_is_full, "{kind:?}");
            addresses.push(&*appended.result as *const super::ProduceResult as usize);
            let (mut batches, _) = drain(acc.as_ref(), Instant::now());
            assert_eq!(batches.len(), 1, "{kind:?}");
            let b = batches.pop().expect("one batch");
            b.result.complete(Ok(super::BatchMetadata { base_offset: i, log_append_time_ms: -1 }));
            assert_eq!(appended.result.wait().expect("completed").base_offset, i, "{kind:?}");
            acc.deallocate(b.buffer);
            assert_eq!(acc.available_memory(), total, "{kind:?}: the buffer is back in buffer.memory");
        }
        assert_eq!(addresses[2], addresses[0], "{kind:?}: the first batch's memory is reused: {addresses:x?}");
        assert_eq!(addresses[3], addresses[1], "{kind:?}: {addresses:x?}");
    }
}
