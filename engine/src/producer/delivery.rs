//! The handle `send` returns (Kafka's FutureRecordMetadata).
//!
//! A handle shares its batch's [`ProduceResult`](crate::accumulator::ProduceResult): one completion per batch wakes every record's
//! handle, as in Kafka, so a send allocates nothing for its future.

use std::time::Duration;

use super::record::RecordMetadata;
use crate::accumulator::{BatchMetadata, ResultHandle};
use crate::error::Result;

/// The pending outcome of one `send`.
#[derive(Debug)]
pub struct DeliveryFuture {
    state: State,
}

#[derive(Debug)]
enum State {
    /// acks=0: complete at send.
    Ready(RecordMetadata),
    Pending {
        result: ResultHandle,
        partition: u32,
        relative_offset: u32,
        timestamp: i64,
    },
}

impl DeliveryFuture {
    pub(crate) fn ready(metadata: RecordMetadata) -> Self {
        DeliveryFuture { state: State::Ready(metadata) }
    }

    pub(crate) fn pending(result: ResultHandle, partition: u32, relative_offset: u32, timestamp: i64) -> Self {
        DeliveryFuture { state: State::Pending { result, partition, relative_offset, timestamp } }
    }

    /// Whether the outcome is known (`get` would not block).
    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Ready(_) => true,
            State::Pending { result, .. } => result.is_done(),
        }
    }

    /// When the record's batch completed (the delivery instant), once done; `None` before, and for
    /// acks=0 futures, which complete at send.
    pub fn completed_at(&self) -> Option<std::time::Instant> {
        match &self.state {
            State::Ready(_) => None,
            State::Pending { result, .. } => result.completed_at(),
        }
    }

    /// Once the outcome is known: whether the record was delivered, and when its batch completed
    /// (`None` for acks=0 futures, complete at send). One look at the batch's result, without making
    /// the record's metadata: for loops that only count and time deliveries; [`get`](Self::get) gives
    /// the metadata or the error.
    #[inline]
    pub fn peek(&self) -> Option<(bool, Option<std::time::Instant>)> {
        match &self.state {
            State::Ready(_) => Some((true, None)),
            State::Pending { result, .. } => result.peek().map(|(ok, at)| (ok, Some(at))),
        }
    }

    /// Blocks until the record is delivered as `acks` promises, or failed (Kafka's `send().get()`).
    pub fn get(self) -> Result<RecordMetadata> {
        match self.state {
            State::Ready(m) => Ok(m),
            State::Pending { result, partition, relative_offset, timestamp } => {
                result.wait().map(|b| record_metadata(&b, partition, relative_offset, timestamp))
            }
        }
    }

    /// Like [`get`](Self::get) but gives up after `timeout`, returning `None`.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<RecordMetadata>> {
        match &self.state {
            State::Ready(m) => Some(Ok(*m)),
            State::Pending { result, partition, relative_offset, timestamp } => result
                .wait_timeout(timeout)
                .map(|r| r.map(|b| record_metadata(&b, *partition, *relative_offset, *timestamp))),
        }
    }
}

/// A record's metadata from its batch's: offset = baseOffset + offsetDelta; the timestamp is the
/// log's append time when the topic uses LogAppendTime, else the record's CreateTime.
pub(crate) fn record_metadata(
    batch: &BatchMetadata,
    partition: u32,
    relative_offset: u32,
    timestamp: i64,
) -> RecordMetadata {
    let offset = if batch.base_offset < 0 { -1 } else { batch.base_offset + i64::from(relative_offset) };
    let timestamp = if batch.log_append_time_ms >= 0 { batch.log_append_time_ms } else { timestamp };
    RecordMetadata { partition, offset, timestamp }
}
