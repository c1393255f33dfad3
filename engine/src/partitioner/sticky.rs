//! KIP-794 sticky partitioning for keyless records (Kafka's BuiltInPartitioner, uniform mode).
//!
//! All threads share one sticky partition and a count of the bytes produced to it since it was
//! chosen, packed in one atomic word so the pair changes together. Kafka's rule: after an append, if
//! the bytes produced reach `batch.size` and the append created or filled a batch, or they reach
//! 2 x `batch.size` regardless, move to another partition picked at random. Sending reads the word
//! only; the byte count is one CAS per keyless append, the same shared update Kafka makes.

use std::sync::atomic::{AtomicU64, Ordering};

/// The shared sticky partition.
#[derive(Debug)]
pub(crate) struct Sticky {
    partitions: u32,
    batch_size: u64,
    /// partition << 32 | bytes produced to it (saturating).
    state: AtomicU64,
}

impl Sticky {
    pub(crate) fn new(partitions: u32, batch_size: usize) -> Self {
        let first = random_below(partitions);
        Sticky { partitions, batch_size: batch_size as u64, state: AtomicU64::new(u64::from(first) << 32) }
    }

    /// The partition keyless records go to now.
    #[inline]
    pub(crate) fn current(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) >> 32) as u32
    }

    /// Kafka's updatePartitionInfo: counts `bytes` against `partition` if it is still the sticky one,
    /// and switches when the thresholds say so.
    pub(crate) fn on_append(&self, partition: u32, bytes: usize, batch_event: bool) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if (s >> 32) as u32 != partition {
                return; // another thread switched already
            }
            let produced = (s & u64::from(u32::MAX)) + bytes as u64;
            let switch = (produced >= self.batch_size && batch_event) || produced >= 2 * self.batch_size;
            let next = if switch {
                u64::from(self.next_partition(partition)) << 32
            } else {
                (s & !u64::from(u32::MAX)) | produced.min(u64::from(u32::MAX))
            };
            match self.state.compare_exchange_weak(s, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    fn next_partition(&self, current: u32) -> u32 {
        if self.partitions <= 1 {
            return 0;
        }
        // Uniform over the others, as Kafka's uniform sticky mode picks a random partition other
        // than the current one.
        let r = random_below(self.partitions - 1);
        if r >= current { r + 1 } else { r }
    }
}

fn random_below(n: u32) -> u32 {
    if n <= 1 { 0 } else { (rand::random::<u64>() % u64::from(n)) as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_until_batch_size_with_a_batch_event() {
        let s = Sticky::new(8, 1000);
        let p = s.current();
        s.on_append(p, 600, true);
        assert_eq!(s.current(), p, "600 < batch.size");
        s.on_append(p, 600, false);
        assert_eq!(s.current(), p, "1200 >= batch.size but no batch was created or filled");
        s.on_append(p, 100, true);
        assert_ne!(s.current(), p, "1300 >= batch.size with a batch event");
    }

    #[test]
    fn switches_unconditionally_at_twice_batch_size() {
        let s = Sticky::new(4, 1000);
        let p = s.current();
        s.on_append(p, 1999, false);
        assert_eq!(s.current(), p);
        s.on_append(p, 1, false);
        assert_ne!(s.current(), p);
    }

    #[test]
    fn stale_feedback_is_ignored() {
        let s = Sticky::new(4, 10);
        let p = s.current();
        s.on_append(p, 100, true);
        let q = s.current();
        s.on_append(p, 100, true);
        assert_eq!(s.current(), q, "feedback for the old partition must not move the new one");
    }

    #[test]
    fn spreads_over_all_partitions_over_time() {
        let s = Sticky::new(6, 100);
        let mut seen = [0u32; 6];
        for _ in 0..600 {
            let p = s.current();
            seen[p as usize] += 1;
            s.on_append(p, 100, true);
        }
        assert!(seen.iter().all(|&c| c > 40), "uneven spread: {seen:?}");
    }
}
