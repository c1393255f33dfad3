//! Intake and placement: the requests the I/O thread takes off its channel each round, and the
//! placement of each append in its partition (offsets, file position, rolls; the O_DIRECT stage).

use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::state::State;
use super::{IoThread, now_ms};
use crate::error::{Error, Result};
use crate::log::partition::Placement;
use crate::log::{AppendCallback, AppendOutcome};

/// Most requests one round takes, so acknowledgements keep flowing under sustained load.
pub(super) const MAX_ROUND: usize = 4096;

pub(crate) enum Request {
    /// `follower`: the batch comes from the leader; its offsets and stamps are kept.
    Append {
        partition: u32,
        batch: Vec<u8>,
        done: AppendCallback,
        enqueued: Instant,
        follower: bool,
    },
    /// Appends of one sender drain (leader appends), placed in order: one message and at most one
    /// wake-up of the thread for all of them.
    Appends {
        appends: Vec<(u32, Vec<u8>, AppendCallback)>,
        enqueued: Instant,
    },
    /// Cut a partition back to an offset (see `LocalLog::truncate`).
    Truncate {
        partition: u32,
        offset: i64,
        reply: crossbeam_channel::Sender<Result<()>>,
    },
    Flush(crossbeam_channel::Sender<Result<()>>),
    Close,
}

/// An append as it arrived.
pub(super) struct Incoming {
    pub(super) batch: Vec<u8>,
    pub(super) done: AppendCallback,
    pub(super) enqueued: Instant,
    pub(super) follower: bool,
}

/// Answers a request the thread will not run (it is stopping) with [`Error::Closed`].
pub(super) fn refuse(r: Request) {
    match r {
        Request::Append { batch, done, .. } => done(Err(Error::Closed { what: "log".into() }), batch),
        Request::Appends { appends, .. } => {
            for (_, batch, done) in appends {
                done(Err(Error::Closed { what: "log".into() }), batch);
            }
        }
        Request::Flush(reply) | Request::Truncate { reply, .. } => {
            let _ = reply.send(Err(Error::Closed { what: "log".into() }));
        }
        Request::Close => {}
    }
}

impl IoThread {
    /// Takes this round's requests into `round`. Blocks on the channel (up to `tick`) only when
    /// nothing is in flight and nothing placed is waiting to be submitted (an O_DIRECT stage
    /// unblocked by the last reap must go out now, not after the next request or tick). False when
    /// the channel is closed and nothing is left to do: the thread stops.
    pub(super) fn intake(&self, st: &State, tick: Duration, round: &mut Vec<Request>) -> bool {
        let idle = self.backend.in_flight() == 0 && !st.dirty.iter().any(|&p| st.io[p as usize].pipe.has_submittable());
        if idle && round.is_empty() {
            match self.requests.recv_timeout(tick) {
                Ok(r) => round.push(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        while round.len() < MAX_ROUND {
            match self.requests.try_recv() {
                Ok(r) => round.push(r),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if round.is_empty() && self.backend.in_flight() == 0 {
                        return false;
                    }
                    break;
                }
            }
        }
        true
    }

    /// Runs the round's requests in order: appends are placed, flushes and truncations run. True
    /// when a `Close` was among them (requests queued after it are refused, never dropped).
    pub(super) fn handle_round(&mut self, st: &mut State, round: &mut Vec<Request>) -> bool {
        let now = now_ms();
        let mut close = false;
        for r in round.drain(..) {
            if close {
                refuse(r); // queued after Close: refused, never dropped unanswered
                continue;
            }
            match r {
                Request::Append { partition, batch, done, enqueued, follower } => {
                    self.place(st, partition, Incoming { batch, done, enqueued, follower }, now)
                }
                Request::Appends { appends, enqueued } => {
                    for (partition, batch, done) in appends {
                        self.place(st, partition, Incoming { batch, done, enqueued, follower: false }, now)
                    }
                }
                Request::Truncate { partition, offset, reply } => {
                    let outcome = self.truncate(st, partition, offset);
                    let _ = reply.send(outcome);
                }
                Request::Flush(reply) => {
                    let outcome = self.flush_all(st);
                    let _ = reply.send(outcome);
                }
                Request::Close => close = true,
            }
        }
        close
    }

    /// Places one append (or holds it while its partition recovers from a failed write).
    pub(super) fn place(&self, st: &mut State, partition: u32, incoming: Incoming, now: i64) {
        let Incoming { mut batch, done, enqueued, follower } = incoming;
        if partition as usize >= st.io.len() {
            let partitions = self.partitions.len() as u32;
            done(Err(Error::UnknownPartition { partition, partitions }), batch);
            return;
        }
        if let Err(e) = self.health.check() {
            done(Err(e), batch);
            return;
        }
        let pio = &mut st.io[partition as usize];
        if pio.pipe.failure.is_some() {
            pio.held.push(Incoming { batch, done, enqueued, follower });
            return;
        }
        let placement = if follower {
            self.lock(partition).place_as_follower(&mut batch, now)
        } else {
            self.lock(partition).place(&mut batch, now)
        };
        match placement {
            Ok(Placement::Write(placed)) => {
                if let Err(e) = pio.pipe.push((batch, done, enqueued, placed), self.direct) {
                    // Only O_DIRECT staging can fail here (rereading a block): the directory goes
                    // offline, and the batch fails with the rest once nothing is in flight (the
                    // partition is listed in `failing` so that the next reap finishes it).
                    self.go_offline(st, e);
                    st.failing.push(partition);
                }
                st.mark_dirty(partition);
            }
            Ok(Placement::Duplicate { base_offset, last_offset }) => done(
                Ok(AppendOutcome {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    duplicate: true,
                    write_ns: 0,
                    sync_ns: 0,
                }),
                batch,
            ),
            // A file operation failed (a roll creating the next segment, say): fail-stop.
            Err(e @ Error::Io { .. }) => {
                let e = self.go_offline(st, e);
                done(Err(e), batch)
            }
            Err(e) => done(Err(e), batch),
        }
    }
}
