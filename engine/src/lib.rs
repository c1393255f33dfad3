//! # kbench-engine
//!
//! An embedded reproduction of Kafka's producer path and partition log, built to be measured.
//!
//! Layers, in the direction data flows: [`record`] (RecordBatch v2, byte for byte) and [`compression`]
//! (Kafka's codecs and framings) are the format everything else speaks; [`partitioner`] picks a
//! partition; the accumulator gathers records into batches without locks; [`producer`] is the
//! thread-safe front door; the sender drains, compresses and hands batches to [`log`], which writes
//! segments through an [`io`] backend. [`consumer`] reads the log back, alone or in groups.
//!
//! The accumulator and the sender are internals: a user configures them through
//! [`ProducerConfig`](producer::ProducerConfig) and observes batches through
//! [`BatchObserver`](producer::BatchObserver).

#![warn(missing_docs, unreachable_pub)]

mod accumulator;
pub mod compression;
pub mod consumer;
mod error;
pub mod io;
pub mod log;
pub mod partitioner;
pub mod producer;
pub mod record;
mod sender;
mod sync;

pub use compression::CompressionType;
pub use error::{Corruption, Error, Result};
