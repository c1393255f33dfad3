//! Kafka's `acks`, and what the sender needs to know of the producer's settings.

use std::str::FromStr;

use crate::compression::CompressionType;
use crate::error::{Error, Result};

/// Kafka's `acks`: how much of the write a delivery waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acks {
    /// `acks=0`: the delivery completes when the batch is handed to the log; the offset is unknown (-1).
    Zero,
    /// `acks=1`: the delivery completes when the leader's log has the batch (written, and fsynced when
    /// flush.messages made a flush due).
    One,
    /// `acks=all` (`-1`): every in-sync replica has the batch (the high watermark passed it), and the
    /// ISR had at least min.insync.replicas members. Without replication the leader is the whole
    /// ISR, so this equals `acks=1`, as in Kafka with one replica.
    All,
}

impl FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "0" => Ok(Acks::Zero),
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            other => Err(Error::config("acks", format!("`{other}` is not one of 0, 1, all, -1"))),
        }
    }
}

impl std::fmt::Display for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        })
    }
}

/// The producer settings the sender acts on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderConfig {
    /// When deliveries complete.
    pub acks: Acks,
    /// `compression.type`.
    pub compression: CompressionType,
    /// `compression.<codec>.level`.
    pub compression_level: Option<i32>,
    /// `enable.idempotence`: stamp producerId, epoch and sequences.
    pub enable_idempotence: bool,
    /// `compression.threads` (kbench's own): the engine's compression pool; 0 compresses on the
    /// sender thread.
    pub compression_threads: usize,
    /// `max.in.flight.requests.per.connection`: drains (one produce request each) handed to the log
    /// and not yet completed, at most.
    pub max_in_flight: u32,
}
