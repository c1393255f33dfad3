//! Topic-level log settings, by Kafka's names.

use crate::io::IoBackendKind;

/// A topic's log settings. Defaults are Kafka's.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB): roll when the next batch would pass it.
    pub segment_bytes: u64,
    /// `segment.ms` (7 days): roll a non-empty segment this old.
    pub segment_ms: u64,
    /// `segment.index.bytes` (10 MiB): size index files are preallocated to; a full index rolls.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes` (4096): bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages` (off): fsync once this many records are unflushed; their acks wait for it.
    pub flush_messages: Option<u64>,
    /// `flush.ms` (off): fsync in the background when the last flush is this old.
    pub flush_ms: Option<u64>,
    /// `retention.ms` (7 days; `None` = -1, keep forever).
    pub retention_ms: Option<i64>,
    /// `retention.bytes` (`None` = -1, no size limit).
    pub retention_bytes: Option<i64>,
    /// `log.retention.check.interval.ms` (5 minutes).
    pub log_retention_check_interval_ms: u64,
    /// `preallocate` (false): allocate segment.bytes of disk for each new segment and set its length
    /// (fallocate), as Kafka does; trimmed to the data on roll and close, and by recovery after a
    /// crash. Lets O_DIRECT writes run in parallel on ext4 (no extending writes).
    pub preallocate: bool,
    /// Write segments with O_DIRECT (kbench's own, not Kafka's): batches are copied into aligned
    /// buffers and written in whole blocks, bypassing the page cache. Best with `preallocate`.
    pub direct_io: bool,
    /// The io backend.
    pub io: IoBackendKind,
    /// `replication.factor` (1): copies of each partition, each a replica with its own directory
    /// (`broker-<id>/`), I/O thread and, for followers, fetcher thread.
    pub replication_factor: u32,
    /// `min.insync.replicas` (1): an acks=all append needs an ISR at least this large
    /// (NotEnoughReplicas otherwise).
    pub min_insync_replicas: u32,
    /// `replica.lag.time.max.ms` (30000): a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `unclean.leader.election.enable` (false): when no in-sync replica is alive to lead, an
    /// out-of-sync one may (records it lacks are lost); otherwise the partition waits.
    pub unclean_leader_election_enable: bool,
    /// Bugs the simulation test plants to show it catches them (tests only).
    #[cfg(test)]
    pub(crate) planted: Planted,
}

/// A bug planted in the log (tests only): `log::sim_tests` shows that its seeds catch each one.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Planted {
    /// fdatasyncs report success without running (planted in the test's backend,
    /// `io::through::Through::skip_syncs`).
    pub skip_fsync: bool,
    /// Recovery keeps batches whose CRC does not match.
    pub skip_recovery_crc: bool,
    /// A batch whose append makes a flush due is acknowledged (and readable) before its fsync.
    pub ack_before_sync: bool,
}

impl LogConfig {
    /// Whether recovery checks each batch's CRC: always, unless a test planted the bug.
    pub(crate) fn recovery_checks_crc(&self) -> bool {
        #[cfg(test)]
        if self.planted.skip_recovery_crc {
            return false;
        }
        true
    }

    /// Whether a batch whose flush is due is acknowledged before its fsync: never, unless a test
    /// planted the bug.
    pub(crate) fn planted_ack_before_sync(&self) -> bool {
        #[cfg(test)]
        if self.planted.ack_before_sync {
            return true;
        }
        false
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_messages: None,
            flush_ms: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            log_retention_check_interval_ms: 300_000,
            preallocate: false,
            direct_io: false,
            io: IoBackendKind::IoUring,
            replication_factor: 1,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            unclean_leader_election_enable: false,
            #[cfg(test)]
            planted: Planted::default(),
        }
    }
}
