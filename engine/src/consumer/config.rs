//! Consumer settings, by Kafka's names and defaults.

use std::str::FromStr;
use std::time::Duration;

use super::assignor::AssignmentStrategy;
use crate::error::{Error, Result};

/// `auto.offset.reset`: where a partition with no committed offset (or an out-of-range position)
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Kafka's default).
    #[default]
    Latest,
    /// Fail with [`Error::NoOffset`].
    None,
}

impl FromStr for AutoOffsetReset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            other => Err(Error::config("auto.offset.reset", format!("`{other}` is not one of earliest, latest, none"))),
        }
    }
}

/// A consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `group.id`: `None` for a consumer that only uses manually assigned partitions.
    pub group_id: Option<String>,
    /// `client.id`, the prefix of the member id.
    pub client_id: String,
    /// `max.poll.records` (500).
    pub max_poll_records: usize,
    /// `max.partition.fetch.bytes` (1 MiB): bytes read per partition per fetch (at least one batch).
    pub max_partition_fetch_bytes: usize,
    /// `enable.auto.commit` (true).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5 s).
    pub auto_commit_interval: Duration,
    /// `auto.offset.reset` (latest).
    pub auto_offset_reset: AutoOffsetReset,
    /// `partition.assignment.strategy` (range).
    pub partition_assignment_strategy: AssignmentStrategy,
    /// `session.timeout.ms` (45 s): a member silent this long is removed from the group.
    pub session_timeout: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            client_id: "consumer".into(),
            max_poll_records: 500,
            max_partition_fetch_bytes: 1 << 20,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            auto_offset_reset: AutoOffsetReset::Latest,
            partition_assignment_strategy: AssignmentStrategy::Range,
            session_timeout: Duration::from_secs(45),
        }
    }
}

impl ConsumerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_poll_records == 0 {
            return Err(Error::config("max.poll.records", "must be at least 1"));
        }
        if self.max_partition_fetch_bytes == 0 {
            return Err(Error::config("max.partition.fetch.bytes", "must be at least 1"));
        }
        if self.session_timeout.is_zero() {
            return Err(Error::config("session.timeout.ms", "must be at least 1"));
        }
        Ok(())
    }
}
