//! The thread-safe front door: [`Producer`], shared by any number of threads like a KafkaProducer.
//!
//! `send` picks a partition ([`partitioner`](crate::partitioner)), stamps the CreateTime and appends
//! the record to the [`accumulator`](crate::accumulator); a background [`sender`](crate::sender)
//! thread drains ready batches, compresses them and appends them to the [`log`](crate::log).
//! Deliveries complete per batch as `acks` says.

mod clock;
mod config;
mod delivery;
mod kafka_producer;
mod record;

pub use crate::accumulator::AccumulatorKind;
pub use crate::sender::{Acks, BatchObserver, BatchStats, COMPRESSION_THREAD_PREFIX};
pub use config::{MAX_COMPRESSION_THREADS, ProducerConfig, default_compression_threads};
pub use delivery::DeliveryFuture;
pub use kafka_producer::Producer;
pub use record::{ProducerRecord, RecordMetadata, serialized_size_upper_bound};
