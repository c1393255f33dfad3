//! The sender thread: Kafka's Sender, with the broker's append in place of the network.
//!
//! One loop per producer: ask the accumulator for ready batches ([`drain`]), stamp idempotence fields
//! in drain order, close the batches (header, compression, CRC — in parallel across batches when there
//! are several), hand them to the [`TopicLog`](crate::log::TopicLog) and complete each batch's
//! deliveries from the log's callback, as `acks` says.
//!
//! `max.in.flight.requests.per.connection`: one drain's batches are one produce request to the log,
//! and the sender drains only while fewer requests than the setting are unfinished (a request
//! finishes with its last batch's completion), as Kafka's Sender stops draining a broker at the
//! limit; meanwhile records keep filling the open batches, which is how batches grow under load with
//! linger.ms 0. Ordering does not rest on it: the log appends one partition's batches in the order
//! the sender hands them over and a failed batch is never retried, so records of one partition are
//! written in send order whatever the setting (Kafka needs max.in.flight <= 5 with idempotence, or 1
//! without, for the same guarantee across retries).
//!
//! [`drain`]: crate::accumulator::RecordAccumulator::drain

mod acks;
mod close_batch;
mod idempotence;
mod loop_;
mod stats;

pub use acks::Acks;
pub(crate) use acks::SenderConfig;
pub use loop_::COMPRESSION_THREAD_PREFIX;
pub(crate) use loop_::{Sender, SenderShared};
pub use stats::{BatchObserver, BatchStats};
