//! Delivery accounting: every record a producer thread sends carries an id header (thread, sequence,
//! scheduled send time); the ledger marks the ids whose delivery was acknowledged and counts how often
//! consumers processed each. At the end: acknowledged records never processed (lost), processed more
//! than once (duplicated), and processed before an earlier record of the same producer thread in the
//! same partition (out of order: Kafka orders records per partition, and one thread's sends to a
//! partition land in the order sent; records without a key spread over partitions, so an order
//! per key would count every sticky partition switch).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The id header's key.
pub(crate) const ID_HEADER: &str = "kbench-id";

/// A record's identity, as carried in its id header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordId {
    pub thread: u32,
    pub seq: u64,
    /// Scheduled send, nanoseconds after the case's epoch.
    pub scheduled_ns: u64,
}

impl RecordId {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(20);
        v.extend_from_slice(&self.thread.to_le_bytes());
        v.extend_from_slice(&self.seq.to_le_bytes());
        v.extend_from_slice(&self.scheduled_ns.to_le_bytes());
        v
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<RecordId> {
        if bytes.len() != 20 {
            return None;
        }
        Some(RecordId {
            thread: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            seq: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
            scheduled_ns: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
        })
    }
}

#[derive(Default)]
struct ThreadBook {
    acked: Vec<bool>,
    processed: Vec<u8>,
}

/// What the ledger found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Accounting {
    pub acknowledged: u64,
    pub processed_unique: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

/// Shared by the producer threads (acknowledgements) and the consumers (processing).
pub(crate) struct Ledger {
    books: Vec<Mutex<ThreadBook>>,
    /// Last sequence processed per (producer thread, partition).
    order: Vec<Mutex<HashMap<(u32, u32), u64>>>,
    acknowledged: AtomicU64,
    processed_unique: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
}

const ORDER_SHARDS: usize = 16;

fn grow<T: Clone + Default>(v: &mut Vec<T>, index: usize) {
    if v.len() <= index {
        v.resize((index + 1).next_power_of_two(), T::default());
    }
}

impl Ledger {
    pub(crate) fn new(producer_threads: u32) -> Ledger {
        Ledger {
            books: (0..producer_threads).map(|_| Mutex::default()).collect(),
            order: (0..ORDER_SHARDS).map(|_| Mutex::default()).collect(),
            acknowledged: AtomicU64::new(0),
            processed_unique: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
        }
    }

    fn book(&self, thread: u32) -> Option<std::sync::MutexGuard<'_, ThreadBook>> {
        self.books.get(thread as usize).map(|b| b.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The producer learned that record `seq` of `thread` was delivered.
    pub(crate) fn acknowledged(&self, thread: u32, seq: u64) {
        if let Some(mut b) = self.book(thread) {
            grow(&mut b.acked, seq as usize);
            if !b.acked[seq as usize] {
                b.acked[seq as usize] = true;
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A consumer finished processing the record `id`, read from `partition`.
    pub(crate) fn processed(&self, id: RecordId, partition: u32) {
        let Some(mut b) = self.book(id.thread) else { return };
        grow(&mut b.processed, id.seq as usize);
        let n = &mut b.processed[id.seq as usize];
        *n = n.saturating_add(1);
        let first = *n == 1;
        drop(b);
        if !first {
            self.duplicated.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.processed_unique.fetch_add(1, Ordering::Relaxed);
        let shard = (partition as usize ^ id.thread as usize) % ORDER_SHARDS;
        let mut order = self.order[shard].lock().unwrap_or_else(|p| p.into_inner());
        let last = order.entry((id.thread, partition)).or_insert(id.seq);
        if id.seq < *last {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        } else {
            *last = id.seq;
        }
    }

    /// Acknowledged records not processed yet.
    pub(crate) fn outstanding(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed).saturating_sub(self.processed_acknowledged())
    }

    fn processed_acknowledged(&self) -> u64 {
        self.books
            .iter()
            .map(|b| {
                let b = b.lock().unwrap_or_else(|p| p.into_inner());
                b.acked
                    .iter()
                    .zip(b.processed.iter().chain(std::iter::repeat(&0)))
                    .filter(|(a, p)| **a && **p > 0)
                    .count() as u64
            })
            .sum()
    }

    /// Acknowledged records whose `present[thread][seq]` is not set (the audit of a replicated log).
    pub(crate) fn acknowledged_missing(&self, present: &[Vec<bool>]) -> u64 {
        self.books
            .iter()
            .enumerate()
            .map(|(t, b)| missing_in(&b.lock().unwrap_or_else(|p| p.into_inner()).acked, present.get(t)))
            .sum()
    }

    /// Which records are acknowledged now, per producer thread (a fault keeps one from its start).
    pub(crate) fn acknowledged_snapshot(&self) -> Vec<Vec<bool>> {
        self.books.iter().map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).acked.clone()).collect()
    }
}

/// Of the records a snapshot marks acknowledged, how many `present` lacks.
pub(crate) fn snapshot_missing(snapshot: &[Vec<bool>], present: &[Vec<bool>]) -> u64 {
    snapshot.iter().enumerate().map(|(t, acked)| missing_in(acked, present.get(t))).sum()
}

/// Records `acked` marks that `present` does not.
fn missing_in(acked: &[bool], present: Option<&Vec<bool>>) -> u64 {
    let seen = present.map_or(&[][..], Vec::as_slice);
    acked.iter().enumerate().filter(|&(seq, &a)| a && !seen.get(seq).copied().unwrap_or(false)).count() as u64
}

impl Ledger {
    /// The final counts (call once the consumers stopped).
    pub(crate) fn accounting(&self) -> Accounting {
        let acknowledged = self.acknowledged.load(Ordering::Relaxed);
        Accounting {
            acknowledged,
            processed_unique: self.processed_unique.load(Ordering::Relaxed),
            lost: acknowledged.saturating_sub(self.processed_acknowledged()),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(thread: u32, seq: u64) -> RecordId {
        RecordId { thread, seq, scheduled_ns: 7 }
    }

    #[test]
    fn a_snapshot_counts_only_what_was_acknowledged_when_it_was_taken() {
        let l = Ledger::new(2);
        for seq in 0..4 {
            l.acknowledged(0, seq);
        }
        let snapshot = l.acknowledged_snapshot();
        l.acknowledged(0, 4);
        l.acknowledged(1, 0);
        let present = [vec![true, false, true], vec![]];
        assert_eq!(snapshot_missing(&snapshot, &present), 2, "thread 0's 1 and 3");
        assert_eq!(l.acknowledged_missing(&present), 4, "and 4, and thread 1's 0, acknowledged after it");
    }

    #[test]
    fn counts_loss_duplicates_and_reordering() {
        assert_eq!(RecordId::decode(&id(3, 9).encode()), Some(id(3, 9)));
        let l = Ledger::new(2);
        for seq in 0..5 {
            l.acknowledged(0, seq);
        }
        l.acknowledged(1, 0);
        // Thread 0: 0, 2, 1 (1 after 2 in the same partition: out of order), 2 again (duplicate);
        // 3, 4 lost.
        l.processed(id(0, 0), 4);
        l.processed(id(0, 2), 4);
        l.processed(id(0, 1), 4);
        l.processed(id(0, 2), 4);
        // Thread 1's records in another partition; an unacknowledged record processed is not "lost".
        l.processed(id(1, 0), 5);
        l.processed(id(1, 1), 5);
        assert_eq!(l.outstanding(), 2);
        // Thread 0's records 0 and 3 are in the log, thread 1's 0 too: 1, 2 and 4 of thread 0 are missing.
        assert_eq!(l.acknowledged_missing(&[vec![true, false, false, true], vec![true]]), 3);
        let a = l.accounting();
        assert_eq!(a, Accounting { acknowledged: 6, processed_unique: 5, lost: 2, duplicated: 1, out_of_order: 1 });
    }

    #[test]
    fn a_thread_s_records_in_different_partitions_have_no_order_to_break() {
        // Keyless records of one thread go wherever the sticky partitioner puts them: a later
        // record read first from another partition is not out of order.
        let l = Ledger::new(1);
        for seq in 0..4 {
            l.acknowledged(0, seq);
        }
        l.processed(id(0, 2), 1);
        l.processed(id(0, 3), 1);
        l.processed(id(0, 0), 0);
        l.processed(id(0, 1), 0);
        assert_eq!(l.accounting().out_of_order, 0);
        l.processed(id(0, 4), 0);
        l.processed(id(0, 3), 0); // 3 was processed already: a duplicate, not a reordering
        assert_eq!((l.accounting().out_of_order, l.accounting().duplicated), (0, 1));
    }
}
