//! The log's I/O thread: the only thread that writes a topic's partitions.
//!
//! Its loop runs these jobs in turn, each in its own module:
//! 1. [`intake`]: take every queued request (up to [`MAX_ROUND`](intake::MAX_ROUND)) and place each
//!    append in its partition (offsets, file position, rolls) — in O_DIRECT mode also copy it into
//!    the segment's stage; flush and truncation requests run here ([`close`]);
//! 2. [`inflight`]: submit writes for everything placed (see [`pipeline`](super::pipeline)): on
//!    io_uring they all go to the kernel in one `io_uring_enter` and stay in flight while the thread
//!    goes on; then reap completions, sleeping in the ring (woken by a completion, by an append
//!    through the eventfd [`Waker`], or by the next timer) when nothing else is to be done;
//! 3. [`commit`]: batches whose writes (and every write before them) completed become readable, in
//!    offset order, and are acknowledged — unless flush.messages made an fsync due: then they wait
//!    for the next fdatasync of their partition's files ([`fsync`], group commit: one fsync, started
//!    after their writes completed, covers every batch written before it; at most one is in flight
//!    per partition, and batches written meanwhile wait for the next);
//! 4. [`timers`]: run flush.ms and retention when due;
//! 5. when the channel closes or a `Close` arrives, [`close`]: write and sync what was placed, refuse
//!    what is still queued, trim and close the segments.
//!
//! When nothing is in flight the thread sleeps on the channel (in [`intake`]) instead of the ring.
//! [`state`] holds what the jobs share: per partition the write pipeline and the group-commit state.
//!
//! Visibility follows Kafka's UnifiedLog.append: a batch whose append makes a flush due becomes
//! readable (the high watermark passes it) only when the fsync covering it succeeded, and is
//! acknowledged then; batches behind it wait with it.
//!
//! Fail-stop ([`offline`](super::offline), [`commit`]'s `go_offline`): the first failed write, fsync
//! or file operation takes the whole log directory offline. Every batch not yet acknowledged fails
//! with [`Error::KafkaStorage`](crate::error::Error::KafkaStorage) naming the file, writes still in
//! flight are reaped and their batches failed too, and every later request fails at once; nothing
//! more is written.

mod close;
mod commit;
#[cfg(test)]
mod fake;
mod fsync;
mod inflight;
mod intake;
mod state;
#[cfg(test)]
mod tests;
mod timers;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

pub(crate) use fsync::SYNC_OPENS_IN_FLIGHT;
pub(crate) use intake::Request;

use super::offline::LogDirHealth;
use super::partition::PartitionLog;
use crate::io::{Backend, Waker};
use state::State;
use timers::Timers;

pub(crate) struct IoThread {
    pub partitions: Arc<[Mutex<PartitionLog>]>,
    pub backend: Box<dyn Backend>,
    pub requests: Receiver<Request>,
    pub waker: Arc<Waker>,
    pub flush_messages: Option<u64>,
    pub flush_ms: Option<u64>,
    pub retention_check: Duration,
    pub direct: bool,
    pub stats: Arc<super::Counters>,
    /// Bumped when a round made data readable.
    pub notify: Arc<super::notify::DataNotify>,
    /// The log directory's health: the first storage error takes it offline.
    pub health: Arc<LogDirHealth>,
    /// A bug the simulation test plants (`LogConfig::planted`; false outside tests): a batch whose
    /// flush is due is acknowledged, and readable, before its fsync.
    pub ack_before_sync: bool,
}

/// Wall-clock milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn nanos_since(t: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(t).as_nanos() as u64
}

impl IoThread {
    fn lock(&self, p: u32) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.partitions[p as usize].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn run(mut self) {
        let mut st = State::new(self.partitions.len());
        let mut timers = Timers::new(self.flush_ms, self.retention_check);
        let mut round = Vec::with_capacity(256);
        loop {
            // 1. Requests, placed in their partitions (flush and truncation run here).
            if !self.intake(&st, timers.tick, &mut round) {
                break;
            }
            if self.handle_round(&mut st, &mut round) {
                // Close: everything queued before it is written; requests after it are refused below.
                let _ = self.flush_all(&mut st);
                break;
            }
            // 2. Submit, then reap (3. commit runs on what the completions unblocked).
            self.submit_all(&mut st);
            self.wait_and_reap(&mut st, timers.tick);
            // 4. Timers.
            self.run_timers(&mut st, &mut timers);
        }
        // 5. Close.
        self.close();
    }
}
