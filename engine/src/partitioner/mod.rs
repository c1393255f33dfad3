//! Which partition a record goes to: an explicit partition, else Kafka's murmur2 of the key, else
//! the sticky partition of KIP-794 (or round-robin when chosen).

mod murmur2;
mod sticky;

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

pub use murmur2::{murmur2, partition_for_key, to_positive};
use sticky::Sticky;

use crate::error::{Error, Result};

/// The partitioner for records without an explicit partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionerKind {
    /// Kafka's default: murmur2 for keyed records, sticky (KIP-794) for keyless ones.
    #[default]
    Default,
    /// Kafka's RoundRobinPartitioner: every record to the next partition, keys ignored.
    RoundRobin,
}

impl FromStr for PartitionerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "default" => Ok(PartitionerKind::Default),
            "round_robin" => Ok(PartitionerKind::RoundRobin),
            other => Err(Error::config("partitioner", format!("`{other}` is not one of default, round_robin"))),
        }
    }
}

/// A topic's partitioner, shared by every producer thread.
#[derive(Debug)]
pub(crate) struct Partitioner {
    kind: PartitionerKind,
    partitions: u32,
    ignore_keys: bool,
    sticky: Sticky,
    next: AtomicU32,
}

impl Partitioner {
    /// A partitioner over `partitions` partitions; `batch_size` drives sticky switching;
    /// `ignore_keys` is `partitioner.ignore.keys`.
    pub(crate) fn new(kind: PartitionerKind, partitions: u32, batch_size: usize, ignore_keys: bool) -> Self {
        let partitions = partitions.max(1);
        Partitioner {
            kind,
            partitions,
            ignore_keys,
            sticky: Sticky::new(partitions, batch_size),
            next: AtomicU32::new(0),
        }
    }

    /// The partition for a record: `explicit` wins, then the key unless keys are ignored, else the
    /// sticky (or round-robin) partition.
    #[inline]
    pub(crate) fn partition(&self, key: Option<&[u8]>, explicit: Option<u32>) -> u32 {
        if let Some(p) = explicit {
            return p;
        }
        match self.kind {
            PartitionerKind::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % self.partitions,
            PartitionerKind::Default => match key {
                Some(k) if !self.ignore_keys => partition_for_key(k, self.partitions),
                _ => self.sticky.current(),
            },
        }
    }

    /// Feedback after appending a record whose partition stickiness chose: its size, and whether the
    /// append created a new batch or filled one.
    #[inline]
    pub(crate) fn on_append(&self, partition: u32, appended_bytes: usize, batch_event: bool) {
        if self.kind == PartitionerKind::Default {
            self.sticky.on_append(partition, appended_bytes, batch_event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_then_key_then_sticky() {
        let p = Partitioner::new(PartitionerKind::Default, 12, 16384, false);
        assert_eq!(p.partition(Some(b"foobar"), Some(3)), 3);
        // toPositive(-790332482) = 1357151166; % 12 = 6.
        assert_eq!(p.partition(Some(b"foobar"), None), 1357151166 % 12);
        let sticky = p.partition(None, None);
        assert_eq!(p.partition(None, None), sticky);
        let ignoring = Partitioner::new(PartitionerKind::Default, 12, 16384, true);
        assert_eq!(ignoring.partition(Some(b"foobar"), None), ignoring.partition(None, None));
    }

    #[test]
    fn round_robin_cycles() {
        let p = Partitioner::new(PartitionerKind::RoundRobin, 3, 16384, false);
        let got: Vec<u32> = (0..6).map(|_| p.partition(Some(b"k"), None)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
    }
}
