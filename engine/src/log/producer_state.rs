//! Idempotent producers' state per partition (Kafka's ProducerStateManager, without snapshots): the
//! last five batches of each producerId, to acknowledge exact duplicates and refuse sequence gaps.

use std::collections::{HashMap, VecDeque};

use crate::record::{BatchHeader, NO_PRODUCER_ID};

/// Kafka keeps the metadata of this many recent batches per producer.
const RETAINED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct BatchEntry {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchEntry>,
}

/// What the log should do with an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// An exact duplicate of a retained batch: acknowledge with these offsets, do not append.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// A gap or a reused sequence: refuse.
    OutOfOrder { expected: i32 },
}

/// Per-partition producer state.
#[derive(Debug, Default)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerState {
    /// Checks a batch before it is appended.
    pub(crate) fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if h.producer_id == NO_PRODUCER_ID {
            return SequenceCheck::Append;
        }
        let Some(p) = self.producers.get(&h.producer_id) else {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        };
        if h.producer_epoch != p.epoch {
            // A new epoch starts its sequences again at 0.
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        }
        if let Some(b) = p.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence()) {
            return SequenceCheck::Duplicate { base_offset: b.base_offset, last_offset: b.last_offset };
        }
        let expected = p.batches.back().map_or(0, |b| next_sequence(b.last_seq));
        if h.base_sequence == expected { SequenceCheck::Append } else { SequenceCheck::OutOfOrder { expected } }
    }

    /// Records an appended batch (also used when rebuilding from the log on open).
    pub(crate) fn update(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        let p = self
            .producers
            .entry(h.producer_id)
            .or_insert(ProducerEntry { epoch: h.producer_epoch, batches: VecDeque::new() });
        if p.epoch != h.producer_epoch {
            p.epoch = h.producer_epoch;
            p.batches.clear();
        }
        p.batches.push_back(BatchEntry {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        while p.batches.len() > RETAINED_BATCHES {
            p.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attributes, MAGIC_V2};

    fn header(pid: i64, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: MAGIC_V2,
            crc: 0,
            attributes: Attributes::default(),
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn duplicates_gaps_and_retention_of_five() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(&header(7, 1, 1, 0)), SequenceCheck::OutOfOrder { expected: 0 });
        for i in 0..7 {
            let h = header(7, i * 10, 10, i64::from(i) * 10);
            assert_eq!(s.check(&h), SequenceCheck::Append);
            s.update(&h);
        }
        // The last five batches are recognised; older ones are not.
        assert_eq!(s.check(&header(7, 60, 10, 999)), SequenceCheck::Duplicate { base_offset: 60, last_offset: 69 });
        assert_eq!(s.check(&header(7, 20, 10, 999)), SequenceCheck::Duplicate { base_offset: 20, last_offset: 29 });
        assert_eq!(s.check(&header(7, 10, 10, 999)), SequenceCheck::OutOfOrder { expected: 70 });
        assert_eq!(s.check(&header(7, 80, 1, 999)), SequenceCheck::OutOfOrder { expected: 70 });
        assert_eq!(s.check(&header(NO_PRODUCER_ID, -1, 1, 0)), SequenceCheck::Append);
    }
}
