//! The sender loop and the state it shares with `flush` and `close`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::acks::{Acks, SenderConfig};
use super::close_batch::{ClosedBatch, close_batch};
use super::idempotence::Sequences;
use super::stats::BatchObserver;
use crate::accumulator::{BatchMetadata, DrainedBatch, RecordAccumulator};
use crate::compression::CompressionType;
use crate::error::{Error, Result};
use crate::log::{AppendCallback, AppendOutcome, RequiredAcks, TopicLog};
use crate::record::ProducerIdentity;

/// How long the sender naps while records are claimed but not yet committed during flush or close:
/// appenders do not signal their commit (that would cost every append), so the sender polls.
const COMMIT_POLL: Duration = Duration::from_micros(200);

/// Compression threads are named this followed by their index (`kbench-compr-0`); the name fits
/// Linux's 15-byte thread names, so `top -H` and /proc show it whole.
pub const COMPRESSION_THREAD_PREFIX: &str = "kbench-compr-";

/// What `flush` and `close` watch: batches handed to the log and not yet completed, and sender rounds;
/// and the produce requests in flight, which max.in.flight.requests.per.connection bounds.
#[derive(Debug, Default)]
pub(crate) struct SenderShared {
    in_flight: AtomicUsize,
    requests: AtomicUsize,
    rounds: AtomicU64,
    closing: AtomicBool,
    stopped: AtomicBool,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

impl SenderShared {
    /// Tells the sender to drain everything and stop.
    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Blocks until a full sender round has run since the call, nothing is left in the accumulator and
    /// no batch is in flight (or the sender stopped).
    pub(crate) fn wait_until_quiet(&self, acc: &dyn RecordAccumulator) {
        let target = self.rounds.load(Ordering::Acquire) + 2;
        self.waiters.fetch_add(1, Ordering::AcqRel);
        acc.wake();
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let quiet = self.rounds.load(Ordering::Acquire) >= target
                && self.in_flight.load(Ordering::Acquire) == 0
                && !acc.has_undrained();
            if quiet || self.stopped.load(Ordering::Acquire) {
                break;
            }
            // The timeout covers the sender's rounds, which notify only when a waiter is registered:
            // the registration and the sender's check can cross.
            guard = self.changed.wait_timeout(guard, Duration::from_millis(5)).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    fn notify_if_waiting(&self) {
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.changed.notify_all();
        }
    }

    fn batch_done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify_if_waiting();
        }
    }

    /// The last batch of a request completed: one more request may go. Wakes the sender when it may
    /// be waiting for that (it waits only at the limit).
    fn request_done(&self, max_in_flight: usize, acc: &dyn RecordAccumulator) {
        if self.requests.fetch_sub(1, Ordering::AcqRel) == max_in_flight {
            acc.wake();
        }
    }
}

/// One drain's batches in the log, as Kafka's produce request to the one broker: done when the last
/// of them completed. Its batches' completions reach the sender's state through it (one reference
/// count per batch, not one per shared object).
struct Request {
    shared: Arc<SenderShared>,
    acc: Arc<dyn RecordAccumulator>,
    observer: Option<Arc<dyn BatchObserver>>,
    max_in_flight: usize,
}

impl Drop for Request {
    fn drop(&mut self) {
        self.shared.request_done(self.max_in_flight, self.acc.as_ref());
    }
}

/// The sender thread's state.
#[derive(Debug)]
pub(crate) struct Sender {
    acc: Arc<dyn RecordAccumulator>,
    log: Arc<TopicLog>,
    observer: Option<Arc<dyn BatchObserver>>,
    shared: Arc<SenderShared>,
    acks: Acks,
    codec: CompressionType,
    level: Option<i32>,
    sequences: Option<Sequences>,
    /// The engine's compression threads (`compression.threads`), when batches are compressed.
    pool: Option<rayon::ThreadPool>,
    max_in_flight: usize,
}

impl Sender {
    pub(crate) fn new(
        config: SenderConfig,
        acc: Arc<dyn RecordAccumulator>,
        log: Arc<TopicLog>,
        observer: Option<Arc<dyn BatchObserver>>,
        shared: Arc<SenderShared>,
    ) -> Result<Self> {
        let sequences = config.enable_idempotence.then(|| Sequences::new(log.partitions()));
        let pool = if config.compression != CompressionType::None && config.compression_threads > 0 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(config.compression_threads)
                .thread_name(|i| format!("{COMPRESSION_THREAD_PREFIX}{i}"))
                .build()
                .map_err(|e| {
                    Error::io("spawn compression threads", COMPRESSION_THREAD_PREFIX, std::io::Error::other(e))
                })?;
            Some(pool)
        } else {
            None
        };
        Ok(Sender {
            acc,
            log,
            observer,
            shared,
            acks: config.acks,
            codec: config.compression,
            level: config.compression_level,
            sequences,
            pool,
            max_in_flight: config.max_in_flight.max(1) as usize,
        })
    }

    /// ready -> drain -> close -> append, until closed and empty.
    ///
    /// As Kafka's Sender drains a broker only while it has fewer than
    /// max.in.flight.requests.per.connection requests outstanding, this one drains only while fewer
    /// drains are in the log unfinished: while the log is behind, records go on filling the open
    /// batches, so batches grow with the load even at linger.ms 0 instead of the log's queue.
    pub(crate) fn run(mut self) {
        // The sender's timed waits are tens of microseconds (a batch whose appenders are still
        // writing): Linux's default 50 us timer slack would double them.
        // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
        }
        let mut drained = Vec::new();
        loop {
            let now = Instant::now();
            // At the limit, `request_done` wakes the sender when a request completes.
            let at_limit = self.shared.requests.load(Ordering::Acquire) >= self.max_in_flight;
            let next_ready = if at_limit { None } else { self.acc.drain(now, &mut drained) };
            let idle = drained.is_empty();
            if !idle {
                self.send(&mut drained, now);
            }
            self.shared.rounds.fetch_add(1, Ordering::AcqRel);
            self.shared.notify_if_waiting();
            if idle {
                let closing = self.shared.closing.load(Ordering::Acquire);
                if closing && !self.acc.has_undrained() {
                    break;
                }
                let deadline = if at_limit {
                    None
                } else if closing || self.shared.waiters.load(Ordering::Acquire) > 0 {
                    Some(now + COMMIT_POLL)
                } else {
                    next_ready
                };
                self.acc.wait_for_work(deadline);
            }
        }
        // Close returns only when every accepted record has its outcome.
        self.shared.waiters.fetch_add(1, Ordering::AcqRel);
        let mut guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.shared.in_flight.load(Ordering::Acquire) > 0 {
            guard =
                self.shared.changed.wait_timeout(guard, Duration::from_millis(5)).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(guard);
        self.shared.waiters.fetch_sub(1, Ordering::AcqRel);
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.notify_if_waiting();
    }

    fn send(&mut self, drained: &mut Vec<DrainedBatch>, drained_at: Instant) {
        // Sequences are assigned in drain order, which is each partition's append order.
        let with_ids: Vec<(DrainedBatch, ProducerIdentity)> = drained
            .drain(..)
            .map(|b| {
                let id = match &mut self.sequences {
                    Some(s) => s.assign(b.partition, b.record_count),
                    None => ProducerIdentity::NONE,
                };
                (b, id)
            })
            .collect();
        let (codec, level) = (self.codec, self.level);
        let closed: Vec<ClosedBatch> = match &self.pool {
            // One batch gains nothing from a hop to the pool; more are compressed side by side.
            Some(pool) if with_ids.len() > 1 => pool.install(|| {
                with_ids.into_par_iter().map(|(b, id)| close_batch(b, id, codec, level, drained_at)).collect()
            }),
            _ => with_ids.into_iter().map(|(b, id)| close_batch(b, id, codec, level, drained_at)).collect(),
        };
        // Every batch's completion holds the request; the last one to finish ends it.
        self.shared.requests.fetch_add(1, Ordering::AcqRel);
        let request = Arc::new(Request {
            shared: Arc::clone(&self.shared),
            acc: Arc::clone(&self.acc),
            observer: self.observer.clone(),
            max_in_flight: self.max_in_flight,
        });
        // One hand-off to the log for the whole drain (each partition's batches in drain order).
        let mut handed_over = Vec::new();
        let appends: Vec<_> =
            closed.into_iter().filter_map(|batch| self.prepare(batch, &request, &mut handed_over)).collect();
        let required = if self.acks == Acks::All { RequiredAcks::AllInSync } else { RequiredAcks::Leader };
        if !appends.is_empty() {
            self.log.append_many_with(appends, required);
        }
        for result in handed_over {
            // acks=0: the delivery completes once the batch is handed over, with an unknown offset.
            result.complete(Ok(BatchMetadata { base_offset: -1, log_append_time_ms: -1 }));
        }
    }

    /// The log append of one closed batch, with its completion callback; `None` (the batch failed
    /// already) when it could not be built. acks=0 results go to `handed_over`, to complete once the
    /// drain is handed to the log.
    fn prepare(
        &self,
        batch: ClosedBatch,
        request: &Arc<Request>,
        handed_over: &mut Vec<crate::accumulator::ResultHandle>,
    ) -> Option<(u32, Vec<u8>, AppendCallback)> {
        let ClosedBatch { partition, bytes, original, result, mut stats } = batch;
        if self.codec != CompressionType::None && stats.uncompressed_bytes > 0 {
            self.acc.record_compression_ratio(stats.compressed_bytes as f32 / stats.uncompressed_bytes as f32);
        }
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                stats.failed = true;
                result.complete(Err(e));
                if let Some(buffer) = original {
                    self.acc.deallocate(buffer);
                }
                if let Some(o) = &self.observer {
                    o.on_batch(&stats);
                }
                return None;
            }
        };
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        // acks=0: the delivery completes once the batch is handed over, not in the callback.
        let on_ack = if self.acks == Acks::Zero {
            handed_over.push(result);
            None
        } else {
            Some(result)
        };
        let request = Arc::clone(request);
        Some((
            partition,
            bytes,
            Box::new(move |outcome: Result<AppendOutcome>, buffer: Vec<u8>| {
                match &outcome {
                    Ok(o) => {
                        stats.write_ns = o.write_ns;
                        stats.sync_ns = o.sync_ns;
                    }
                    Err(_) => stats.failed = true,
                }
                match on_ack {
                    Some(on_ack) => on_ack.complete(outcome.map(|o| BatchMetadata {
                        base_offset: o.base_offset,
                        log_append_time_ms: o.log_append_time_ms,
                    })),
                    None => {
                        if let Err(e) = outcome {
                            // acks=0 promised nothing; Kafka's producer never learns of such a failure.
                            ::log::warn!("acks=0 batch for partition {partition} failed in the log: {e}");
                        }
                    }
                }
                request.acc.deallocate(original.unwrap_or(buffer));
                if let Some(o) = &request.observer {
                    o.on_batch(&stats);
                }
                request.shared.batch_done();
                drop(request);
            }),
        ))
    }
}
