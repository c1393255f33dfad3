//! [`Consumer`]: reads a topic back as Kafka's KafkaConsumer does — one per thread (`Send`, not
//! `Sync`), `poll` returning up to `max.poll.records`, `seek` / `position`, commits sync and async,
//! auto commit every `auto.commit.interval.ms`, `auto.offset.reset`, and consumer groups through an
//! in-process [`Coordinator`] (range and round-robin assignors, eager rebalances, session timeouts,
//! committed offsets that survive a restart).
//!
//! Records come from the log only up to its high watermark (what was written and acknowledged), in
//! offset order per partition; control batches are skipped.

mod assignor;
mod config;
mod group;
mod offsets;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use assignor::AssignmentStrategy;
pub use config::{AutoOffsetReset, ConsumerConfig};
pub use group::Coordinator;
use group::Group;

use crate::error::{Error, Result};
use crate::log::TopicLog;
use crate::record::{BatchIter, TimestampType};

/// One record as `poll` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: i64,
    /// CreateTime, or the log's append time under LogAppendTime (ms).
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value, `None` for null.
    pub value: Option<Vec<u8>>,
    /// Headers: key and value (`None` for null).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

struct Membership {
    group: Arc<Group>,
    member: String,
    /// The generation of the current assignment; `None` until the first join completes.
    generation: Option<u64>,
}

/// A consumer of one topic. Not `Sync`: one per thread, as KafkaConsumer.
pub struct Consumer {
    config: ConsumerConfig,
    log: Arc<TopicLog>,
    membership: Option<Membership>,
    /// A group for commits of a consumer with manually assigned partitions.
    manual_group: Option<Arc<Group>>,
    assigned: Vec<u32>,
    /// Next offset to return, per assigned partition (absent until reset from committed offsets).
    positions: BTreeMap<u32, i64>,
    /// Partition to read first on the next fetch (fairness across partitions).
    next_partition: usize,
    last_auto_commit: Instant,
    rebalances: u64,
    closed: bool,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("member", &self.membership.as_ref().map(|m| m.member.as_str()))
            .field("assigned", &self.assigned)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer of `log`. With `group.id` set it joins that group of `coordinator` (partitions
    /// come from the group's assignor at the first `poll`); without, use [`assign`](Self::assign).
    pub fn new(config: ConsumerConfig, log: Arc<TopicLog>, coordinator: &Coordinator) -> Result<Consumer> {
        config.validate()?;
        let group = match &config.group_id {
            Some(id) => Some(coordinator.group(id)?),
            None => None,
        };
        let membership = group.as_ref().map(|g| Membership {
            member: g.add_member(&config.client_id, config.partition_assignment_strategy, config.session_timeout),
            group: Arc::clone(g),
            generation: None,
        });
        Ok(Consumer {
            config,
            log,
            membership,
            manual_group: group,
            assigned: Vec::new(),
            positions: BTreeMap::new(),
            next_partition: 0,
            last_auto_commit: Instant::now(),
            rebalances: 0,
            closed: false,
            _not_sync: std::marker::PhantomData,
        })
    }

    /// Takes `partitions` directly, leaving the group (KafkaConsumer.assign: no rebalancing).
    pub fn assign(&mut self, partitions: &[u32]) -> Result<()> {
        for &p in partitions {
            if p >= self.log.partitions() {
                return Err(Error::UnknownPartition { partition: p, partitions: self.log.partitions() });
            }
        }
        if let Some(m) = self.membership.take() {
            m.group.remove_member(&m.member);
        }
        self.assigned = partitions.to_vec();
        self.positions.retain(|p, _| partitions.contains(p));
        Ok(())
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> &[u32] {
        &self.assigned
    }

    /// This consumer's member id in its group.
    pub fn member_id(&self) -> Option<&str> {
        self.membership.as_ref().map(|m| m.member.as_str())
    }

    /// Rebalances this consumer took part in.
    pub fn rebalances(&self) -> u64 {
        self.rebalances
    }

    /// Records after the current positions, up to `max.poll.records`; waits up to `timeout` for some
    /// to be written. Takes part in the group's rebalances, and auto-commits what the previous polls
    /// returned once `auto.commit.interval.ms` has passed.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if self.closed {
            return Err(Error::Closed { what: "consumer".into() });
        }
        let deadline = Instant::now() + timeout;
        self.maybe_auto_commit()?;
        if !self.ensure_assignment(deadline)? {
            return Ok(Vec::new());
        }
        loop {
            let seen = self.log.data_seq();
            let records = self.fetch()?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
            self.log.wait_for_data(seen, deadline);
            // A rebalance may have started while waiting.
            if !self.ensure_assignment(deadline)? {
                return Ok(Vec::new());
            }
        }
    }

    /// Joins or rejoins the group when a rebalance is under way; false when the deadline passed
    /// before this member's assignment arrived.
    fn ensure_assignment(&mut self, deadline: Instant) -> Result<bool> {
        let Some(m) = &self.membership else { return Ok(true) };
        let must_rejoin = match m.generation {
            None => true,
            Some(g) => m.group.heartbeat(&m.member, g)?,
        };
        if !must_rejoin {
            return Ok(true);
        }
        if m.generation.is_some() && !self.assigned.is_empty() {
            // Eager protocol: give everything back, committing first under auto commit.
            if self.config.enable_auto_commit {
                let offsets = self.current_offsets();
                let m = self.membership.as_ref().expect("checked");
                if let Err(e) = m.group.commit(&m.member, m.generation.unwrap_or(0), &offsets, true) {
                    log::warn!("{}: commit at revocation failed: {e}", m.member);
                }
            }
            self.assigned.clear();
            self.positions.clear();
        }
        let m = self.membership.as_mut().expect("checked");
        match m.group.rejoin(&m.member, deadline)? {
            Some(joined) => {
                m.generation = Some(joined.generation);
                self.assigned = joined.partitions;
                self.rebalances += 1;
                self.last_auto_commit = Instant::now();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The group that holds this consumer's commits.
    fn group(&self) -> Option<&Arc<Group>> {
        self.membership.as_ref().map(|m| &m.group).or(self.manual_group.as_ref())
    }

    /// Where `partition` starts: the committed offset, else `auto.offset.reset`; an out-of-range
    /// committed offset is reset too.
    fn reset_position(&self, partition: u32) -> Result<i64> {
        let (start, end) = (self.log.log_start_offset(partition), self.log.log_end_offset(partition));
        let committed = self.group().and_then(|g| g.committed(partition));
        if let Some(c) = committed
            && (start..=end).contains(&c)
        {
            return Ok(c);
        }
        match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => Ok(start),
            AutoOffsetReset::Latest => Ok(end),
            AutoOffsetReset::None => Err(Error::NoOffset {
                partition,
                reason: match committed {
                    Some(c) => format!("committed offset {c} is outside the log [{start}, {end}]"),
                    None => "nothing committed".into(),
                },
            }),
        }
    }

    fn fetch(&mut self) -> Result<Vec<ConsumerRecord>> {
        let mut out = Vec::new();
        let n = self.assigned.len();
        for i in 0..n {
            if out.len() >= self.config.max_poll_records {
                break;
            }
            let p = self.assigned[(self.next_partition + i) % n];
            let position = match self.positions.get(&p) {
                Some(&pos) => pos,
                None => {
                    let pos = self.reset_position(p)?;
                    self.positions.insert(p, pos);
                    pos
                }
            };
            let fetch = self.log.read(p, position, self.config.max_partition_fetch_bytes)?;
            let mut next = position;
            'batches: for batch in BatchIter::new(&fetch.bytes, 0) {
                let batch = batch?;
                let h = *batch.header();
                if h.attributes.is_control {
                    next = next.max(h.last_offset() + 1);
                    continue;
                }
                for record in batch.records()?.iter() {
                    let r = record?;
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    if offset < position {
                        continue;
                    }
                    if out.len() >= self.config.max_poll_records {
                        break 'batches;
                    }
                    let timestamp = match h.attributes.timestamp_type {
                        TimestampType::LogAppendTime => h.max_timestamp,
                        _ => h.base_timestamp.wrapping_add(r.timestamp_delta),
                    };
                    out.push(ConsumerRecord {
                        partition: p,
                        offset,
                        timestamp,
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        headers: r
                            .headers()
                            .map(|h| (String::from_utf8_lossy(h.key).into_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect(),
                    });
                    next = offset + 1;
                }
            }
            self.positions.insert(p, next);
        }
        if n > 0 {
            self.next_partition = (self.next_partition + 1) % n;
        }
        Ok(out)
    }

    /// Moves `partition`'s position (KafkaConsumer.seek).
    pub fn seek(&mut self, partition: u32, offset: i64) -> Result<()> {
        if !self.assigned.contains(&partition) {
            return Err(Error::config("seek", format!("partition {partition} is not assigned to this consumer")));
        }
        self.positions.insert(partition, offset);
        Ok(())
    }

    /// The offset of the next record `poll` returns from `partition` (resolving it from the
    /// committed offset or `auto.offset.reset` when not known yet).
    pub fn position(&mut self, partition: u32) -> Result<i64> {
        if !self.assigned.contains(&partition) {
            return Err(Error::config("position", format!("partition {partition} is not assigned to this consumer")));
        }
        if let Some(&p) = self.positions.get(&partition) {
            return Ok(p);
        }
        let p = self.reset_position(partition)?;
        self.positions.insert(partition, p);
        Ok(p)
    }

    /// The group's committed offset for `partition`.
    pub fn committed(&self, partition: u32) -> Option<i64> {
        self.group().and_then(|g| g.committed(partition))
    }

    /// Records between the position and the log end offset (0 before the position is known).
    pub fn lag(&self, partition: u32) -> i64 {
        self.positions.get(&partition).map_or(0, |&p| (self.log.log_end_offset(partition) - p).max(0))
    }

    fn current_offsets(&self) -> BTreeMap<u32, i64> {
        self.positions.iter().filter(|(p, _)| self.assigned.contains(p)).map(|(&p, &o)| (p, o)).collect()
    }

    fn commit(&mut self, offsets: &BTreeMap<u32, i64>, sync: bool) -> Result<()> {
        if let Some(m) = &self.membership {
            let generation = m.generation.ok_or_else(|| Error::CommitFailed {
                group: m.group.id.clone(),
                reason: "the consumer has not joined the group yet (poll first)".into(),
            })?;
            return m.group.commit(&m.member, generation, offsets, sync);
        }
        match &self.manual_group {
            Some(g) => g.commit_unchecked(offsets, sync),
            None => Err(Error::config("group.id", "committing offsets needs a group.id")),
        }
    }

    /// Commits the positions of every assigned partition and waits until they are durable
    /// (commitSync).
    pub fn commit_sync(&mut self) -> Result<()> {
        let offsets = self.current_offsets();
        self.commit(&offsets, true)
    }

    /// Commits `offsets` (the next offset to read, per partition) durably.
    pub fn commit_offsets_sync(&mut self, offsets: &BTreeMap<u32, i64>) -> Result<()> {
        self.commit(offsets, true)
    }

    /// Commits the positions without waiting for the fsync (commitAsync): a crash may lose it, and
    /// the records after the previous durable commit are then read again.
    pub fn commit_async(&mut self) -> Result<()> {
        let offsets = self.current_offsets();
        self.commit(&offsets, false)
    }

    fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit || self.last_auto_commit.elapsed() < self.config.auto_commit_interval {
            return Ok(());
        }
        self.last_auto_commit = Instant::now();
        if self.config.group_id.is_none() || self.positions.is_empty() {
            return Ok(());
        }
        match self.commit_async() {
            // A rebalance overtook the commit: the revocation path commits instead.
            Err(Error::CommitFailed { .. }) => Ok(()),
            other => other,
        }
    }

    /// Commits under auto commit, leaves the group, and refuses further polls. Idempotent.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut outcome = Ok(());
        if self.config.enable_auto_commit && self.config.group_id.is_some() && !self.positions.is_empty() {
            outcome = self.commit_sync();
        }
        if let Some(m) = self.membership.take() {
            m.group.remove_member(&m.member);
        }
        outcome
    }

    /// Simulates a crash: leaves without committing or a LeaveGroup, so the group notices only when
    /// the session times out (fault injection for workloads and tests).
    pub fn abandon(mut self) {
        self.closed = true;
        self.membership = None;
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            log::warn!("closing consumer: {e}");
        }
    }
}
