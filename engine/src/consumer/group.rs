//! The group coordinator, in process: membership, generations, eager rebalances with Kafka's
//! JoinGroup barrier, session timeouts, and the group's durable committed offsets.
//!
//! A member joining or leaving (or missing `session.timeout.ms`) starts a rebalance (Kafka's
//! PreparingRebalance): the assignment is withdrawn. Every member notices on its next `poll`, revokes
//! its partitions (committing first under auto commit, still in its generation) and rejoins; once
//! every member has rejoined, the generation moves on, the assignor runs and each member receives
//! its partitions. Until then members wait — the rebalance pause Kafka users know. A member that
//! stops polling holds up the rebalance until its session times out and it is removed. Commits from
//! an older generation are refused (CommitFailed), so a revoked partition's offset is never
//! overwritten by its previous owner.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::assignor::AssignmentStrategy;
use super::offsets::OffsetStore;
use crate::error::{Error, Result};

/// Every consumer group of a topic, with their committed offsets under one directory (Kafka's
/// `__consumer_offsets`). Shared (`Arc`) by the group's consumers.
#[derive(Debug)]
pub struct Coordinator {
    dir: PathBuf,
    partitions: u32,
    groups: Mutex<HashMap<String, Arc<Group>>>,
}

impl Coordinator {
    /// A coordinator for a topic of `partitions` partitions, keeping committed offsets under `dir`
    /// (they survive a restart: open the same directory again).
    pub fn open(dir: &Path, partitions: u32) -> Result<Arc<Coordinator>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create offsets directory", dir, e))?;
        Ok(Arc::new(Coordinator { dir: dir.to_path_buf(), partitions, groups: Mutex::new(HashMap::new()) }))
    }

    pub(crate) fn group(&self, id: &str) -> Result<Arc<Group>> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(Error::config("group.id", format!("`{id}` is not a valid group id")));
        }
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = groups.get(id) {
            return Ok(Arc::clone(g));
        }
        let offsets = OffsetStore::open(&self.dir, id)?;
        let g = Arc::new(Group {
            id: id.to_string(),
            partitions: self.partitions,
            state: Mutex::new(GroupState {
                strategy: AssignmentStrategy::default(),
                generation: 0,
                members: BTreeMap::new(),
                // An empty group is a stable group with nothing to assign.
                assignment: Some(BTreeMap::new()),
                next_member: 0,
                rebalances: 0,
                offsets,
            }),
            changed: Condvar::new(),
        });
        groups.insert(id.to_string(), Arc::clone(&g));
        Ok(g)
    }

    /// The committed offset of `partition` for `group`, if any.
    pub fn committed(&self, group: &str, partition: u32) -> Result<Option<i64>> {
        let g = self.group(group)?;
        Ok(g.lock().offsets.get(partition))
    }

    /// Rebalances the group has gone through (0 for an unknown group).
    pub fn rebalances(&self, group: &str) -> u64 {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.get(group).map_or(0, |g| g.lock().rebalances)
    }
}

#[derive(Debug)]
struct MemberState {
    /// Rejoined in the current rebalance.
    joined: bool,
    last_seen: Instant,
    /// Its `session.timeout.ms`.
    session_timeout: Duration,
}

#[derive(Debug)]
struct GroupState {
    /// The assignor, as the latest member to join asked for (members of a group agree on it).
    strategy: AssignmentStrategy,
    /// Moves on when a rebalance completes.
    generation: u64,
    members: BTreeMap<String, MemberState>,
    /// The current generation's assignment; `None` while rebalancing.
    assignment: Option<BTreeMap<String, Vec<u32>>>,
    next_member: u64,
    rebalances: u64,
    offsets: OffsetStore,
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    partitions: u32,
    state: Mutex<GroupState>,
    changed: Condvar,
}

/// What a member learns when its join completes.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub generation: u64,
    pub partitions: Vec<u32>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_rebalance(&self, st: &mut GroupState) {
        if st.assignment.is_some() {
            st.rebalances += 1;
            for m in st.members.values_mut() {
                m.joined = false;
            }
        }
        st.assignment = None;
        self.changed.notify_all();
    }

    /// Removes members whose session expired (they stopped polling), starting a rebalance.
    fn expire(&self, st: &mut GroupState, now: Instant) {
        let before = st.members.len();
        st.members.retain(|_, m| now.duration_since(m.last_seen) < m.session_timeout);
        if st.members.len() != before {
            self.start_rebalance(st);
        }
    }

    /// Adds a member with its assignor and session timeout (rebalancing the group); returns its id.
    pub(crate) fn add_member(
        &self,
        client_id: &str,
        strategy: AssignmentStrategy,
        session_timeout: Duration,
    ) -> String {
        let mut st = self.lock();
        st.next_member += 1;
        st.strategy = strategy;
        let id = format!("{client_id}-{:06}", st.next_member);
        st.members.insert(id.clone(), MemberState { joined: false, last_seen: Instant::now(), session_timeout });
        self.start_rebalance(&mut st);
        id
    }

    /// Removes a member (LeaveGroup), rebalancing the group.
    pub(crate) fn remove_member(&self, member: &str) {
        let mut st = self.lock();
        if st.members.remove(member).is_some() {
            self.start_rebalance(&mut st);
        }
    }

    /// Heartbeat: the member is alive. Returns whether it must rejoin (a rebalance is under way or
    /// completed since `generation`); fails when the member was removed (session expired).
    pub(crate) fn heartbeat(&self, member: &str, generation: u64) -> Result<bool> {
        let mut st = self.lock();
        let now = Instant::now();
        match st.members.get_mut(member) {
            Some(m) => m.last_seen = now,
            None => return Err(self.fenced(member)),
        }
        self.expire(&mut st, now);
        Ok(st.assignment.is_none() || st.generation != generation)
    }

    fn fenced(&self, member: &str) -> Error {
        Error::CommitFailed {
            group: self.id.clone(),
            reason: format!("member {member} is no longer in the group (its session expired); it must rejoin"),
        }
    }

    /// JoinGroup + SyncGroup: marks the member as rejoined for the current generation and waits up to
    /// `deadline` for every member to do so; then returns its partitions. `None` when the deadline
    /// passed first (poll again). Fails when the member was removed.
    pub(crate) fn rejoin(&self, member: &str, deadline: Instant) -> Result<Option<Joined>> {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            match st.members.get_mut(member) {
                Some(m) => {
                    m.last_seen = now;
                    m.joined = true;
                }
                None => return Err(self.fenced(member)),
            }
            self.expire(&mut st, now);
            if st.assignment.is_none() && st.members.values().all(|m| m.joined) {
                // Every member is in: the rebalance completes with a new generation.
                st.generation += 1;
                let ids: Vec<String> = st.members.keys().cloned().collect();
                st.assignment = Some(st.strategy.assign(&ids, self.partitions));
                self.changed.notify_all();
            }
            if let Some(a) = &st.assignment {
                let partitions = a.get(member).cloned().unwrap_or_default();
                return Ok(Some(Joined { generation: st.generation, partitions }));
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Ok(None);
            }
            // Wake at least every session timeout / 3 to expire silent members.
            let shortest = st.members.values().map(|m| m.session_timeout).min().unwrap_or(left);
            let wait = left.min(shortest / 3).max(Duration::from_millis(1));
            st = self.changed.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Commits `offsets` for a member of `generation` (Kafka's OffsetCommit): refused with
    /// [`Error::CommitFailed`] when the group has rebalanced since, as Kafka's
    /// CommitFailedException, so a revoked partition's offset is never overwritten by its old owner.
    pub(crate) fn commit(&self, member: &str, generation: u64, offsets: &BTreeMap<u32, i64>, sync: bool) -> Result<()> {
        let mut st = self.lock();
        if !st.members.contains_key(member) {
            return Err(self.fenced(member));
        }
        if st.generation != generation {
            return Err(Error::CommitFailed {
                group: self.id.clone(),
                reason: format!("the group rebalanced (generation {} -> {})", generation, st.generation),
            });
        }
        st.offsets.commit(offsets, sync)
    }

    /// Commits without a generation check (a consumer with manually assigned partitions).
    pub(crate) fn commit_unchecked(&self, offsets: &BTreeMap<u32, i64>, sync: bool) -> Result<()> {
        self.lock().offsets.commit(offsets, sync)
    }

    /// The committed offset of `partition`.
    pub(crate) fn committed(&self, partition: u32) -> Option<i64> {
        self.lock().offsets.get(partition)
    }
}
