//! One partition's replication state, as its leader (and the controller) keep it: who leads in which
//! epoch, the ISR, every replica's log end offset, the high watermark, and the acks=all appends
//! waiting for it. Pure bookkeeping under the partition's mutex; callbacks it decides to run are
//! handed back as [`Ready`] and run by the caller after the lock is released.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::log::{AppendCallback, AppendOutcome};

/// A delivery decided under the lock, to be run outside it.
pub(crate) struct Ready {
    done: AppendCallback,
    outcome: Result<AppendOutcome>,
    buffer: Vec<u8>,
}

impl Ready {
    /// A write's outcome with its callback and buffer.
    pub(crate) fn new(done: AppendCallback, outcome: Result<AppendOutcome>, buffer: Vec<u8>) -> Ready {
        Ready { done, outcome, buffer }
    }

    pub(crate) fn run(self) {
        (self.done)(self.outcome, self.buffer);
    }
}

/// An acks=all append the leader has written, waiting for the high watermark to pass it.
struct Pending {
    end: i64,
    outcome: AppendOutcome,
    buffer: Vec<u8>,
    done: AppendCallback,
}

/// Replication state of one partition. Replicas are numbered by broker id, 0..replication.factor.
pub(crate) struct PartitionState {
    pub name: String,
    pub leader: Option<usize>,
    pub epoch: i32,
    /// (epoch, start offset) of every leader epoch, ascending: Kafka's leader-epoch cache.
    epochs: Vec<(i32, i64)>,
    pub isr: Vec<bool>,
    /// Log end offsets: the leader's from its completed writes, followers' from their fetch offsets.
    pub leo: Vec<i64>,
    last_caught_up: Vec<Instant>,
    /// Per follower: its previous fetch's time and the leader's end offset then.
    last_fetch: Vec<Option<(Instant, i64)>>,
    pub hw: i64,
    pending: VecDeque<Pending>,
    /// Followers that must check for divergence (truncate) before their next fetch.
    pub needs_truncation: Vec<bool>,
    min_isr: u32,
}

impl PartitionState {
    /// A partition whose replicas all hold `end` offsets, led by replica 0 in epoch 0.
    pub(crate) fn new(name: String, replicas: usize, min_isr: u32, ends: &[i64], now: Instant) -> Self {
        let hw = ends.iter().copied().min().unwrap_or(0);
        PartitionState {
            name,
            leader: Some(0),
            epoch: 0,
            epochs: vec![(0, 0)],
            isr: vec![true; replicas],
            leo: ends.to_vec(),
            last_caught_up: vec![now; replicas],
            last_fetch: vec![None; replicas],
            hw,
            pending: VecDeque::new(),
            needs_truncation: vec![true; replicas],
            min_isr,
        }
    }

    pub(crate) fn isr_size(&self) -> u32 {
        self.isr.iter().filter(|&&m| m).count() as u32
    }

    /// The ISR's broker ids.
    pub(crate) fn isr_ids(&self) -> Vec<u32> {
        (0..self.isr.len()).filter(|&b| self.isr[b]).map(|b| b as u32).collect()
    }

    /// Who takes an append now, in which epoch; refused without a leader, and for acks=all when the
    /// ISR is smaller than min.insync.replicas (the batch is not appended).
    pub(crate) fn admit(&self, acks_all: bool) -> Result<(usize, i32)> {
        let Some(leader) = self.leader else {
            return Err(Error::NotLeader { partition: self.name.clone(), reason: "the partition is offline".into() });
        };
        if acks_all && self.isr_size() < self.min_isr {
            return Err(Error::NotEnoughReplicas {
                partition: self.name.clone(),
                isr: self.isr_size(),
                min_insync_replicas: self.min_isr,
                after_append: false,
            });
        }
        Ok((leader, self.epoch))
    }

    /// The leader `broker` finished writing a batch it took in `epoch`. acks=1 completes now; acks=all
    /// waits for the high watermark.
    pub(crate) fn leader_written(
        &mut self,
        broker: usize,
        epoch: i32,
        acks_all: bool,
        written: Ready,
        ready: &mut Vec<Ready>,
    ) {
        let Ready { done, outcome, buffer } = written;
        if self.leader != Some(broker) || self.epoch != epoch {
            let reason = format!("replica {broker} lost leadership (epoch {epoch}) before the batch was acknowledged");
            ready.push(Ready { done, outcome: Err(Error::NotLeader { partition: self.name.clone(), reason }), buffer });
            return;
        }
        let o = match outcome {
            Ok(o) => o,
            Err(e) => {
                ready.push(Ready { done, outcome: Err(e), buffer });
                return;
            }
        };
        self.leo[broker] = self.leo[broker].max(o.last_offset + 1);
        if acks_all && !o.duplicate {
            self.pending.push_back(Pending { end: o.last_offset + 1, outcome: o, buffer, done });
        } else {
            ready.push(Ready { done, outcome: Ok(o), buffer });
        }
        self.advance_hw(ready);
    }

    /// A follower fetched from `fetch_offset` at `now` (Kafka's updateFollowerFetchState): its end
    /// offset is known, its caught-up time moves, it may rejoin the ISR, the high watermark may move.
    pub(crate) fn on_fetch(&mut self, follower: usize, fetch_offset: i64, now: Instant, ready: &mut Vec<Ready>) {
        let Some(leader) = self.leader else { return };
        let leader_leo = self.leo[leader];
        self.leo[follower] = fetch_offset;
        if fetch_offset >= leader_leo {
            self.last_caught_up[follower] = now;
        } else if let Some((then, leo_then)) = self.last_fetch[follower]
            && fetch_offset >= leo_then
        {
            // Caught up with where the leader was at the previous fetch.
            self.last_caught_up[follower] = self.last_caught_up[follower].max(then);
        }
        self.last_fetch[follower] = Some((now, leader_leo));
        let epoch_start = self.epochs.last().map_or(0, |e| e.1);
        if !self.isr[follower] && fetch_offset >= self.hw && fetch_offset >= epoch_start {
            self.isr[follower] = true;
            log::info!("{}: replica {follower} rejoined the ISR at offset {fetch_offset}", self.name);
        }
        self.advance_hw(ready);
    }

    /// Followers not caught up for `lag` leave the ISR (Kafka's maybeShrinkIsr).
    pub(crate) fn shrink_isr(&mut self, now: Instant, lag: Duration, ready: &mut Vec<Ready>) {
        let Some(leader) = self.leader else { return };
        let mut shrunk = false;
        for b in 0..self.isr.len() {
            if b != leader && self.isr[b] && now.saturating_duration_since(self.last_caught_up[b]) > lag {
                self.isr[b] = false;
                shrunk = true;
                log::info!("{}: replica {b} left the ISR (not caught up for {lag:?})", self.name);
            }
        }
        if shrunk {
            self.advance_hw(ready);
        }
    }

    /// HW = the smallest end offset in the ISR; waiting acks=all appends at or below it complete
    /// (NotEnoughReplicasAfterAppend when the ISR is below min.insync.replicas by then).
    fn advance_hw(&mut self, ready: &mut Vec<Ready>) {
        let Some(isr_min) = (0..self.isr.len()).filter(|&b| self.isr[b]).map(|b| self.leo[b]).min() else { return };
        if isr_min > self.hw {
            self.hw = isr_min;
        }
        while self.pending.front().is_some_and(|p| p.end <= self.hw) {
            let Some(p) = self.pending.pop_front() else { break };
            let outcome = if self.isr_size() < self.min_isr {
                Err(Error::NotEnoughReplicas {
                    partition: self.name.clone(),
                    isr: self.isr_size(),
                    min_insync_replicas: self.min_isr,
                    after_append: true,
                })
            } else {
                Ok(p.outcome)
            };
            ready.push(Ready { done: p.done, outcome, buffer: p.buffer });
        }
    }

    /// Fails every waiting append (leadership moved, or the log closes).
    pub(crate) fn fail_pending(&mut self, error: &Error, ready: &mut Vec<Ready>) {
        for p in self.pending.drain(..) {
            ready.push(Ready { done: p.done, outcome: Err(error.clone()), buffer: p.buffer });
        }
    }

    /// Replica `failed` went down. When it led, a new leader is elected: the first live ISR member;
    /// failing that, with `unclean`, the first live replica (its missing records are lost); failing
    /// that, nobody (the partition waits). `ends` are the replicas' real log end offsets.
    /// Returns the new leader and epoch when there is one.
    pub(crate) fn replica_failed(
        &mut self,
        failed: usize,
        alive: &[bool],
        ends: &[i64],
        unclean: bool,
        now: Instant,
        ready: &mut Vec<Ready>,
    ) -> Option<(usize, i32)> {
        if self.leader != Some(failed) {
            return None;
        }
        let lost = Error::NotLeader {
            partition: self.name.clone(),
            reason: format!("leader replica {failed} failed before the batch was acknowledged"),
        };
        self.fail_pending(&lost, ready);
        let live = |b: usize| b != failed && alive[b];
        let clean = (0..self.isr.len()).find(|&b| live(b) && self.isr[b]);
        let chosen = clean.or_else(|| if unclean { (0..self.isr.len()).find(|&b| live(b)) } else { None });
        let Some(next) = chosen else {
            // Kafka keeps the last ISR member in the ISR, so that it can lead again when it returns.
            self.leader = None;
            log::warn!("{}: leader {failed} failed and no eligible replica is alive; offline", self.name);
            return None;
        };
        if clean.is_some() {
            self.isr[failed] = false;
        } else {
            self.isr.iter_mut().for_each(|m| *m = false);
            self.isr[next] = true;
            log::warn!("{}: unclean election of replica {next} (end offset {})", self.name, ends[next]);
        }
        Some(self.elect(next, ends[next], now))
    }

    /// Replica `broker` restarted with its log ending at `end` (a power loss may have cut it below
    /// what it fetched): while another replica leads, it leaves the ISR (the high watermark may move
    /// on without it) and rejoins by catching up, as a broker back from an unclean shutdown does in
    /// Kafka. The last ISR member of a partition without a leader stays, to lead again.
    pub(crate) fn replica_restarted(&mut self, broker: usize, end: i64, ready: &mut Vec<Ready>) {
        self.leo[broker] = end;
        self.last_fetch[broker] = None;
        if self.leader.is_some_and(|l| l != broker) && self.isr[broker] {
            self.isr[broker] = false;
            log::info!("{}: replica {broker} restarted at offset {end}; out of the ISR until caught up", self.name);
            self.advance_hw(ready);
        }
    }

    /// Replica `broker` came back. An offline partition takes it as leader when it is in the ISR (or,
    /// with `unclean`, anyway); otherwise it returns as a follower that must check for divergence.
    pub(crate) fn replica_started(
        &mut self,
        broker: usize,
        end: i64,
        unclean: bool,
        now: Instant,
    ) -> Option<(usize, i32)> {
        self.needs_truncation[broker] = true;
        if self.leader.is_none() && (self.isr[broker] || unclean) {
            self.isr.iter_mut().for_each(|m| *m = false);
            self.isr[broker] = true;
            return Some(self.elect(broker, end, now));
        }
        None
    }

    fn elect(&mut self, leader: usize, end: i64, now: Instant) -> (usize, i32) {
        self.leader = Some(leader);
        // The new leader's history ends at `end` (a power loss may have cut it below where later
        // epochs began): no epoch starts past it, so followers cut back to it (Kafka's leader
        // answers OffsetsForLeaderEpoch from its own epoch cache, truncated to its log end).
        for e in &mut self.epochs {
            e.1 = e.1.min(end);
        }
        self.epoch += 1;
        self.epochs.push((self.epoch, end));
        self.leo[leader] = end;
        // An unclean leader may end below the old high watermark: what lies above is gone.
        self.hw = self.hw.min(end);
        for b in 0..self.isr.len() {
            self.last_caught_up[b] = now;
            self.last_fetch[b] = None;
            self.needs_truncation[b] = b != leader;
        }
        log::info!("{}: replica {leader} leads epoch {} from offset {end}", self.name, self.epoch);
        (leader, self.epoch)
    }

    /// Where a follower whose last batch is from `epoch` must cut its log: the start of the first
    /// later epoch (Kafka's OffsetsForLeaderEpoch), or `None` when its epoch is still current.
    pub(crate) fn truncation_point(&self, epoch: i32) -> Option<i64> {
        self.epochs.iter().find(|(e, _)| *e > epoch).map(|(_, start)| *start)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Log = Arc<Mutex<Vec<std::result::Result<i64, String>>>>;

    fn callback(log: &Log) -> AppendCallback {
        let log = Arc::clone(log);
        Box::new(move |r: Result<AppendOutcome>, _| {
            log.lock().unwrap().push(r.map(|o| o.base_offset).map_err(|e| e.to_string()));
        })
    }

    fn written(base: i64, last: i64) -> Result<AppendOutcome> {
        Ok(AppendOutcome {
            base_offset: base,
            last_offset: last,
            log_append_time_ms: -1,
            duplicate: false,
            write_ns: 0,
            sync_ns: 0,
        })
    }

    fn run(ready: &mut Vec<Ready>) {
        for r in ready.drain(..) {
            r.run();
        }
    }

    #[test]
    fn acks_all_waits_for_every_isr_member_and_acks_1_does_not() {
        let now = Instant::now();
        let mut s = PartitionState::new("t-0".into(), 3, 2, &[0, 0, 0], now);
        let log: Log = Default::default();
        let mut ready = Vec::new();
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(0, 9), Vec::new()), &mut ready);
        s.leader_written(0, 0, false, Ready::new(callback(&log), written(10, 19), Vec::new()), &mut ready);
        run(&mut ready);
        assert_eq!(*log.lock().unwrap(), vec![Ok(10)], "acks=1 completes at the leader's write");
        s.on_fetch(1, 20, now, &mut ready);
        assert!(ready.is_empty() && s.hw == 0, "replica 2 has nothing yet");
        s.on_fetch(2, 10, now, &mut ready);
        run(&mut ready);
        assert_eq!(s.hw, 10);
        assert_eq!(*log.lock().unwrap(), vec![Ok(10), Ok(0)]);
    }

    #[test]
    fn a_lagging_follower_leaves_the_isr_and_rejoins_when_caught_up() {
        let t0 = Instant::now();
        let lag = Duration::from_millis(100);
        let mut s = PartitionState::new("t-0".into(), 3, 2, &[0, 0, 0], t0);
        let log: Log = Default::default();
        let mut ready = Vec::new();
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(0, 4), Vec::new()), &mut ready);
        s.on_fetch(1, 5, t0, &mut ready);
        // Replica 2 never fetches: the append waits until it leaves the ISR.
        s.shrink_isr(t0 + lag / 2, lag, &mut ready);
        assert!(ready.is_empty() && s.isr_size() == 3);
        s.on_fetch(1, 5, t0 + lag * 3 / 2, &mut ready);
        s.shrink_isr(t0 + lag * 2, lag, &mut ready);
        run(&mut ready);
        assert_eq!(s.isr_ids(), vec![0, 1]);
        assert_eq!(*log.lock().unwrap(), vec![Ok(0)], "the ISR {{0,1}} has it: acknowledged");
        // Below min.insync.replicas: refused before the append.
        s.shrink_isr(t0 + lag * 4, lag, &mut ready);
        assert_eq!(s.isr_ids(), vec![0]);
        let refused = s.admit(true).unwrap_err();
        assert!(matches!(
            refused,
            Error::NotEnoughReplicas { isr: 1, min_insync_replicas: 2, after_append: false, .. }
        ));
        assert!(s.admit(false).is_ok(), "acks=1 does not care");
        // Catching up to the high watermark brings replicas back.
        s.on_fetch(2, 5, t0 + lag * 5, &mut ready);
        s.on_fetch(1, 5, t0 + lag * 5, &mut ready);
        assert_eq!(s.isr_ids(), vec![0, 1, 2]);
        assert!(s.admit(true).is_ok());
    }

    #[test]
    fn isr_shrinking_under_a_waiting_append_fails_it_after_append() {
        let t0 = Instant::now();
        let lag = Duration::from_millis(10);
        let mut s = PartitionState::new("t-0".into(), 2, 2, &[0, 0], t0);
        let log: Log = Default::default();
        let mut ready = Vec::new();
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(0, 0), Vec::new()), &mut ready);
        s.shrink_isr(t0 + lag * 2, lag, &mut ready);
        run(&mut ready);
        let got = log.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert!(got[0].as_ref().unwrap_err().contains("after the leader appended"), "{got:?}");
    }

    #[test]
    fn a_restarted_follower_leaves_the_isr_until_caught_up_and_the_last_member_leads_again() {
        let t0 = Instant::now();
        let mut s = PartitionState::new("t-0".into(), 3, 2, &[0, 0, 0], t0);
        let log: Log = Default::default();
        let mut ready = Vec::new();
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(0, 9), Vec::new()), &mut ready);
        s.on_fetch(1, 10, t0, &mut ready);
        // Replica 2 restarts having lost everything: the ISR {0, 1} acknowledges without it.
        s.replica_restarted(2, 0, &mut ready);
        run(&mut ready);
        assert_eq!((s.isr_ids(), s.hw), (vec![0, 1], 10));
        assert_eq!(*log.lock().unwrap(), vec![Ok(0)]);
        s.on_fetch(2, 10, t0, &mut ready);
        assert_eq!(s.isr_ids(), vec![0, 1, 2], "caught up: back in the ISR");
        // Every broker loses power: leadership moves 0 -> 1 -> 2, then the partition is offline with
        // the ISR's last member, which stays in it.
        let mut off = PartitionState::new("t-1".into(), 3, 1, &[10, 10, 10], t0);
        assert_eq!(off.replica_failed(0, &[false, true, true], &[10, 10, 10], false, t0, &mut ready), Some((1, 1)));
        assert_eq!(off.replica_failed(1, &[false, false, true], &[10, 10, 10], false, t0, &mut ready), Some((2, 2)));
        assert_eq!(off.replica_failed(2, &[false, false, false], &[10, 10, 10], false, t0, &mut ready), None);
        // They come back with what their disks kept: 7 offsets on broker 0, 4 on broker 2.
        off.replica_restarted(0, 7, &mut ready);
        off.replica_restarted(2, 4, &mut ready);
        assert_eq!(off.isr_ids(), vec![2]);
        assert_eq!(off.replica_started(0, 7, false, t0), None, "out of the ISR: may not lead");
        assert_eq!(off.replica_started(2, 4, false, t0), Some((2, 3)));
        assert_eq!(off.hw, 4, "the new leader's end bounds the high watermark");
        assert_eq!(off.truncation_point(0), Some(4), "broker 0 cuts its offsets 4..7: epoch 0 ends at 4 now");
    }

    #[test]
    fn clean_election_picks_an_isr_member_and_unclean_any_live_replica() {
        let t0 = Instant::now();
        let mut s = PartitionState::new("t-0".into(), 3, 1, &[0, 0, 0], t0);
        let log: Log = Default::default();
        let mut ready = Vec::new();
        s.isr[2] = false; // replica 2 is out of sync
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(0, 9), Vec::new()), &mut ready);
        s.on_fetch(1, 10, t0, &mut ready);
        run(&mut ready);
        assert_eq!(*log.lock().unwrap(), vec![Ok(0)]);
        // A pending append on the failed leader fails; replica 1 (in the ISR) takes over in epoch 1.
        s.leader_written(0, 0, true, Ready::new(callback(&log), written(10, 19), Vec::new()), &mut ready);
        let elected = s.replica_failed(0, &[false, true, true], &[20, 10, 3], false, t0, &mut ready);
        run(&mut ready);
        assert_eq!(elected, Some((1, 1)));
        assert!(log.lock().unwrap()[1].as_ref().unwrap_err().contains("failed before the batch was acknowledged"));
        assert_eq!(s.truncation_point(0), Some(10), "epoch 0 ends where epoch 1 starts");
        assert_eq!(s.truncation_point(1), None);
        // Replica 1 fails too: replica 2 is not in the ISR; without unclean election, offline.
        let mut offline = PartitionState::new("t-1".into(), 3, 1, &[0, 0, 0], t0);
        offline.isr = vec![true, false, false];
        assert_eq!(offline.replica_failed(0, &[false, true, true], &[5, 3, 0], false, t0, &mut ready), None);
        assert!(offline.admit(false).is_err());
        // It returns (still the ISR's last member) and leads again.
        assert_eq!(offline.replica_started(0, 5, false, t0), Some((0, 1)));
        // With unclean election, the out-of-sync replica leads and the high watermark drops to its end.
        let mut unclean = PartitionState::new("t-2".into(), 3, 1, &[0, 0, 0], t0);
        unclean.leo = vec![8, 3, 0];
        unclean.hw = 8;
        unclean.isr = vec![true, false, false];
        assert_eq!(unclean.replica_failed(0, &[false, true, true], &[8, 3, 0], true, t0, &mut ready), Some((1, 1)));
        assert_eq!((unclean.hw, unclean.isr_ids()), (3, vec![1]));
        assert_eq!(unclean.truncation_point(0), Some(3), "the old leader will cut offsets 3..8 when it returns");
    }
}
