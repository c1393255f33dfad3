//! [`Producer`]: append on the caller's thread, everything else on the sender thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::clock;
use super::config::ProducerConfig;
use super::delivery::{DeliveryFuture, record_metadata};
use super::record::{ProducerRecord, RecordMetadata};
use crate::accumulator::{Appended, RecordAccumulator, new_accumulator};
use crate::error::{Error, Result};
use crate::log::TopicLog;
use crate::partitioner::{Partitioner, PartitionerKind};
use crate::sender::{Acks, BatchObserver, Sender, SenderShared};

/// A producer for one topic's [`TopicLog`]: `Send + Sync + Clone`, every clone the same producer.
///
/// Records sent from one thread to one partition keep their order. `close` (or dropping the last
/// clone) drains everything accepted, then refuses further sends with [`Error::Closed`].
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    acks: Acks,
    partitions: u32,
    ignore_keys: bool,
    sticky: bool,
    accumulator: Arc<dyn RecordAccumulator>,
    partitioner: Partitioner,
    shared: Arc<SenderShared>,
    sender: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Producer {
    /// Starts a producer (and its sender thread) writing to `log`. `observer`, when given, sees every
    /// batch's stage timings on the I/O thread (the harness records them; keep it cheap).
    pub fn new(config: ProducerConfig, log: Arc<TopicLog>, observer: Option<Arc<dyn BatchObserver>>) -> Result<Self> {
        config.validate()?;
        let partitions = log.partitions();
        let accumulator = new_accumulator(config.accumulator_config(partitions))?;
        let partitioner =
            Partitioner::new(config.partitioner, partitions, config.batch_size, config.partitioner_ignore_keys);
        let shared = Arc::new(SenderShared::default());
        let sender = Sender::new(config.sender_config(), Arc::clone(&accumulator), log, observer, Arc::clone(&shared))?;
        let handle = std::thread::Builder::new()
            .name("kbench-sender".into())
            .spawn(move || sender.run())
            .map_err(|e| Error::io("spawn sender thread", "kbench-sender", e))?;
        Ok(Producer {
            inner: Arc::new(Inner {
                acks: config.acks,
                partitions,
                ignore_keys: config.partitioner_ignore_keys,
                sticky: config.partitioner == PartitionerKind::Default,
                accumulator,
                partitioner,
                shared,
                sender: Mutex::new(Some(handle)),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Number of partitions of the topic.
    pub fn partitions(&self) -> u32 {
        self.inner.partitions
    }

    /// Sends one record asynchronously. Blocks only while buffer.memory is exhausted (up to
    /// max.block.ms). The returned future completes as `acks` promises.
    pub fn send(&self, record: &ProducerRecord<'_>) -> Result<DeliveryFuture> {
        let (partition, timestamp, appended) = self.inner.append(record)?;
        Ok(match self.inner.acks {
            Acks::Zero => DeliveryFuture::ready(RecordMetadata { partition, offset: -1, timestamp }),
            _ => DeliveryFuture::pending(appended.result, partition, appended.relative_offset, timestamp),
        })
    }

    /// Sends one record and calls `callback` once with its outcome, on the engine's I/O thread (keep
    /// it short), or at once with acks=0.
    pub fn send_with_callback<F>(&self, record: &ProducerRecord<'_>, callback: F) -> Result<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        let (partition, timestamp, appended) = self.inner.append(record)?;
        if self.inner.acks == Acks::Zero {
            callback(Ok(RecordMetadata { partition, offset: -1, timestamp }));
        } else {
            appended.result.on_complete(
                appended.relative_offset,
                Box::new(move |outcome, relative_offset| {
                    callback(outcome.map(|b| record_metadata(&b, partition, relative_offset, timestamp)))
                }),
            );
        }
        Ok(())
    }

    /// Makes every record sent before the call ready at once (ignoring linger.ms) and blocks until all
    /// of them completed, as KafkaProducer.flush does.
    pub fn flush(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { what: "producer".into() });
        }
        let acc = &self.inner.accumulator;
        acc.begin_flush();
        self.inner.shared.wait_until_quiet(acc.as_ref());
        acc.end_flush();
        Ok(())
    }

    /// Drains everything accepted so far, waits for its completion, stops the sender thread, and makes
    /// every later `send` fail with [`Error::Closed`]. Idempotent; any clone may call it.
    pub fn close(&self) -> Result<()> {
        self.inner.close();
        Ok(())
    }
}

impl Inner {
    /// Partition, CreateTime and the accumulator's answer for one record.
    #[inline]
    fn append(&self, record: &ProducerRecord<'_>) -> Result<(u32, i64, Appended)> {
        let partition = match record.partition {
            Some(p) if p >= self.partitions => {
                return Err(Error::UnknownPartition { partition: p, partitions: self.partitions });
            }
            explicit => self.partitioner.partition(record.key, explicit),
        };
        let timestamp = record.timestamp.unwrap_or_else(clock::now_ms);
        // The accumulator refuses appends once closed, so a send racing close either lands in a batch
        // that close drains, or fails here; it never vanishes.
        let appended = self.accumulator.append(partition, timestamp, record.key, record.value, record.headers)?;
        let chosen_by_stickiness = record.partition.is_none() && (record.key.is_none() || self.ignore_keys);
        if self.sticky && chosen_by_stickiness {
            self.partitioner.on_append(
                partition,
                appended.appended_bytes,
                appended.new_batch_created || appended.batch_is_full,
            );
        }
        Ok((partition, timestamp, appended))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.accumulator.close();
        self.shared.begin_close();
        self.accumulator.wake();
        let handle = self.sender.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(handle) = handle {
            // The sender thread never panics by design (its errors go to the deliveries); should it,
            // the panic message was already printed and there is nothing better to do in close.
            let _ = handle.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::io::IoBackendKind;
    use crate::log::LogConfig;

    fn producer(dir: &std::path::Path, config: ProducerConfig) -> Producer {
        let log = TopicLog::open(dir, "t", 1, LogConfig { io: IoBackendKind::Discard, ..LogConfig::default() })
            .expect("open a discard log");
        Producer::new(config, Arc::new(log), None).expect("start the producer")
    }

    #[test]
    fn a_send_over_max_request_size_fails_at_once_with_record_too_large() {
        let dir = tempfile::tempdir().unwrap();
        // Long enough that any wait for memory would show: the refusal must come before it.
        let config = ProducerConfig { max_block: Duration::from_secs(600), ..ProducerConfig::default() };
        let p = producer(dir.path(), config);
        // 2 GiB of zeroes from the allocator's zeroed pages: nothing is touched unless the engine
        // copies or scans the value, which a refused record must not cost.
        let value = vec![0u8; 2 << 30];
        let started = Instant::now();
        let err = p.send(&ProducerRecord::new(None, &value)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(60), "refused after {:?}", started.elapsed());
        assert!(
            matches!(err, Error::RecordTooLarge { limit_name: "max.request.size", limit: 1_048_576, size }
                if size as u64 == serialized_size_upper_bound_of(value.len())),
            "{err}"
        );
        let err = p.send_with_callback(&ProducerRecord::new(None, &value), |_| {}).unwrap_err();
        assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
        // The producer is still usable for records that fit.
        let small = [1u8; 100];
        p.send(&ProducerRecord::new(None, &small)).unwrap().get().unwrap();
        p.close().unwrap();
    }

    fn serialized_size_upper_bound_of(value: usize) -> u64 {
        super::super::serialized_size_upper_bound(None, Some(value), &[])
    }

    #[test]
    fn a_record_over_buffer_memory_fails_at_once_naming_buffer_memory() {
        let dir = tempfile::tempdir().unwrap();
        let config = ProducerConfig {
            batch_size: 1024,
            buffer_memory: 64 * 1024,
            max_block: Duration::from_secs(600),
            ..ProducerConfig::default()
        };
        let p = producer(dir.path(), config);
        let value = vec![0u8; 100 * 1024];
        let err = p.send(&ProducerRecord::new(None, &value)).unwrap_err();
        assert!(matches!(err, Error::RecordTooLarge { limit_name: "buffer.memory", limit: 65_536, .. }), "{err}");
    }

    #[test]
    fn batch_size_above_buffer_memory_is_refused_at_construction() {
        let config = ProducerConfig { batch_size: 64 << 20, buffer_memory: 1 << 20, ..ProducerConfig::default() };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("batch.size") && err.to_string().contains("buffer.memory"), "{err}");
    }
}
