//! Producer identity and per-partition sequences, assigned at drain as Kafka's TransactionManager does.

use crate::record::{NO_SEQUENCE, ProducerIdentity};

/// The idempotence state of one producer: its id and epoch, and the next sequence of each partition.
#[derive(Debug)]
pub(crate) struct Sequences {
    producer_id: i64,
    producer_epoch: i16,
    next: Vec<i32>,
}

impl Sequences {
    /// A fresh identity. A broker hands out producer ids from a counter; with no broker, a random
    /// positive id keeps producers of different runs on the same log directory apart.
    pub(crate) fn new(partitions: u32) -> Self {
        Sequences {
            producer_id: rand::random::<i64>() & i64::MAX,
            producer_epoch: 0,
            next: vec![0; partitions as usize],
        }
    }

    /// The identity for the next batch of `records` records to `partition`, advancing its sequence
    /// (wrapping past i32::MAX to 0, as DefaultRecordBatch.incrementSequence does).
    pub(crate) fn assign(&mut self, partition: u32, records: u32) -> ProducerIdentity {
        let slot = &mut self.next[partition as usize];
        let base_sequence = *slot;
        *slot = increment_sequence(base_sequence, records as i32);
        ProducerIdentity { producer_id: self.producer_id, producer_epoch: self.producer_epoch, base_sequence }
    }
}

fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence == NO_SEQUENCE {
        return NO_SEQUENCE;
    }
    if sequence > i32::MAX - increment { increment - (i32::MAX - sequence) - 1 } else { sequence + increment }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_advance_per_partition_and_wrap() {
        let mut s = Sequences::new(2);
        assert_eq!(s.assign(0, 10).base_sequence, 0);
        assert_eq!(s.assign(0, 5).base_sequence, 10);
        assert_eq!(s.assign(1, 3).base_sequence, 0);
        assert_eq!(s.assign(0, 1).base_sequence, 15);
        assert!(s.assign(1, 1).producer_id >= 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
    }
}
