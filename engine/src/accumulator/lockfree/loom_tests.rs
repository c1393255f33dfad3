//! Model tests of the lock-free batch protocol: every interleaving (up to loom's preemption bound) of
//! claim / write / publish / seal / cut / install / hand-over / walk / take / handle release. Run by
//! `scripts/loom.sh`.
//!
//! Records here are small (no key, a 20-byte value: 27 bytes encoded, claimed with `fetch_add`) and
//! batches hold two of them, so the models exercise a full batch, a sealed-by-the-drainer batch, a
//! claim that does not fit (the cut) and a racing install in a few steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::thread;

use super::LockFreeAccumulator;
use super::batch::{Batch, BatchRef, Claim, Extent, Walk};
use crate::accumulator::pool::{Pool, Pooled};
use crate::accumulator::{AccumulatorConfig, DrainedBatch, RecordAccumulator};
use crate::record::{RECORD_BATCH_OVERHEAD, RecordParts, decode_record};

const TS: i64 = 1_000;
const VALUE: usize = 20;
/// Encoded size of a record with no key and a VALUE-byte value at delta 0 / offsetDelta < 64.
const RECORD: usize = 27;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Bounded preemptions keep the state space in seconds while still covering every race of two
    // appenders with the drainer (loom's documentation finds almost all bugs with a bound of 2-3).
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// The values in a taken buffer (header space skipped), in offsetDelta order, checking offsetDelta.
fn values(buffer: &[u8]) -> Vec<u8> {
    let mut at = RECORD_BATCH_OVERHEAD;
    let mut out = Vec::new();
    while at < buffer.len() {
        let (record, used) = decode_record(&buffer[at..]).expect("every published record decodes");
        assert_eq!(record.offset_delta as usize, out.len(), "offsetDelta follows position");
        let value = record.value.expect("value");
        assert!(value.len() == VALUE && value.iter().all(|&b| b == value[0]), "torn record {value:?}");
        out.push(value[0]);
        at += used;
    }
    out
}

/// The drainer's side of one sealed batch: waits for its extent and for every record in it.
fn wait_complete(batch: &Batch) -> Extent {
    let extent = loop {
        match batch.extent() {
            Some(e) => break e,
            None => thread::yield_now(),
        }
    };
    let mut walk = Walk::default();
    while !batch.walk(&mut walk, extent) {
        thread::yield_now();
    }
    extent
}

/// Two appenders race the drainer's seal on a batch with `room` bytes for records. Every append that
/// reported success is in the taken buffer at the offsetDelta it was told and nothing else is; once
/// the handles are dropped, the test's `Arc` is the only owner left.
fn appenders_race_the_seal(room: usize) {
    model(move || {
        let pool = Pool::new(4);
        let batch = Batch::create(&pool, 0, 0, TS, vec![0; RECORD_BATCH_OVERHEAD + room], None);
        let appenders: Vec<_> = (1..=2u8)
            .map(|v| {
                let batch = batch.clone();
                thread::spawn(move || {
                    let value = [v; VALUE];
                    match batch.try_append(TS, &RecordParts::new(None, Some(&value), &[])) {
                        Claim::Done { offset_delta, full, .. } => {
                            if full {
                                batch.seal();
                            }
                            // SAFETY: once, for this valid claim.
                            Some((offset_delta, v, unsafe { BatchRef::claimed(&batch) }))
                        }
                        Claim::NoRoom => {
                            batch.seal();
                            None
                        }
                        Claim::Sealed => None,
                    }
                })
            })
            .collect();
        // The drainer: linger expired, so it seals, then waits for the records claimed before. When
        // an appender sealed first, the drainer reads the batch only after the hand-over (the join).
        // When the drainer sealed it, it takes the buffer while the appenders may still run.
        let (extent, buffer, appended) = if batch.seal() {
            let extent = wait_complete(&batch);
            let buffer = batch.take_buffer(extent).0;
            (extent, buffer, appenders.into_iter().filter_map(|t| t.join().unwrap()).collect::<Vec<_>>())
        } else {
            let appended = appenders.into_iter().filter_map(|t| t.join().unwrap()).collect::<Vec<_>>();
            let extent = wait_complete(&batch);
            (extent, batch.take_buffer(extent).0, appended)
        };
        let got = values(&buffer);
        assert_eq!(got.len(), extent.count as usize);
        assert_eq!(
            appended.len(),
            got.len(),
            "appended {:?}, drained {got:?}",
            appended.iter().map(|a| a.1).collect::<Vec<_>>()
        );
        for (offset_delta, v, handle) in appended {
            assert_eq!(got[offset_delta as usize], v);
            assert!(std::ptr::eq(&batch.result, handle.result()));
        }
        // Every handle is dropped and the unclaimed references were given back at the take.
        assert_eq!(Pooled::strong_count(&batch), 1, "the handles' reference to the batch is released once");
        drop(batch);
        assert_eq!(pool.free_blocks(), 1, "the last reference gives the block back");
    });
}

#[test]
fn drainer_takes_only_complete_batches_with_every_claimed_record() {
    // Room for both records.
    appenders_race_the_seal(2 * RECORD);
}

#[test]
fn a_claim_that_does_not_fit_cuts_the_batch_where_it_starts() {
    // Room for one record and a half: the second claim is void and cuts the batch, racing the seal.
    appenders_race_the_seal(RECORD + RECORD / 2);
}

fn config(batch_size: usize) -> AccumulatorConfig {
    AccumulatorConfig {
        partitions: 1,
        batch_size,
        linger: Duration::ZERO,
        buffer_memory: 1 << 20,
        ..AccumulatorConfig::default()
    }
}

/// Drains until nothing is left (after close every batch is ready).
fn drain_all(acc: &LockFreeAccumulator, out: &mut Vec<DrainedBatch>) {
    acc.close();
    while acc.has_undrained() {
        acc.drain(Instant::now(), out);
        thread::yield_now();
    }
}

#[test]
fn racing_appends_and_installs_drain_exactly_once_in_order() {
    model(|| {
        // Room for two records per batch: the third append of the model always opens a new batch,
        // and two appenders may race to install it.
        let acc = Arc::new(LockFreeAccumulator::new(config(RECORD_BATCH_OVERHEAD + 2 * RECORD)));
        let appenders: Vec<_> = [[1u8, 2], [3, 4]]
            .into_iter()
            .map(|values| {
                let acc = Arc::clone(&acc);
                thread::spawn(move || {
                    values
                        .iter()
                        .map(|&v| {
                            let a = acc.append(0, TS, None, Some(&[v; VALUE]), &[]).expect("append");
                            (v, a.result, a.relative_offset)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut drained = Vec::new();
        acc.drain(Instant::now(), &mut drained);
        let appended: Vec<_> = appenders.into_iter().flat_map(|t| t.join().unwrap()).collect();
        drain_all(&acc, &mut drained);

        // Exactly once: the drained records are the appended ones.
        let per_batch: Vec<Vec<u8>> = drained.iter().map(|b| values(&b.buffer)).collect();
        let mut all: Vec<u8> = per_batch.concat();
        // Per-producer order within the partition: 1 before 2, 3 before 4.
        let pos = |v: u8| all.iter().position(|&x| x == v).expect("every appended record is drained");
        assert!(pos(1) < pos(2) && pos(3) < pos(4), "order {all:?}");
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4]);
        // Each send's handle is its batch's completion, at the offsetDelta it holds there.
        for (v, result, relative_offset) in appended {
            let (b, values) = drained.iter().zip(&per_batch).find(|(_, vals)| vals.contains(&v)).expect("drained");
            assert!(std::ptr::eq(&*b.result, &*result), "record {v} holds another batch's future");
            assert_eq!(values[relative_offset as usize], v);
            assert_eq!(b.record_count as usize, values.len());
        }
    });
}
