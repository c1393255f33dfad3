//! # kbench-engine
//!
//! An embedded reproduction of Kafka's producer path and partition log, built to be measured.
//!
//! Layers, in the direction data flows: [`record`] (RecordBatch v2, byte for byte) and [`compression`]
//! (Kafka's codecs and framings) are the format everything else speaks.

pub mod compression;
mod error;
pub mod record;
#[allow(dead_code, unused_imports)] // used by the lock-free accumulator
mod sync;

pub use compression::CompressionType;
pub use error::{Corruption, Error, Result};
