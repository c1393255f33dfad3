//! The writes in flight: submitting what was placed, and reaping completions — a write's outcome
//! goes to its partition's pipeline (whose frontier then passes what completed, see
//! [`commit`](super::commit)), an fsync's to its sync group ([`fsync`](super::fsync)).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::IoThread;
use super::fsync::SYNC_TOKEN;
use super::state::State;
use crate::error::Error;

impl IoThread {
    pub(super) fn submit_all(&mut self, st: &mut State) {
        // Only partitions placed into or unblocked by a completion since their last submit can have
        // something to send (see `Pipe::has_submittable`).
        for p in std::mem::take(&mut st.dirty) {
            let pio = &mut st.io[p as usize];
            pio.dirty = false;
            let (writes, bytes) = pio.pipe.submit(p, self.backend.as_mut(), &mut st.writes);
            if writes > 0 {
                self.stats.writes.fetch_add(writes, Ordering::Relaxed);
                self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Reaps, waiting in the ring (up to `tick`) when something is in flight and no request is
    /// queued: a completion, an append (through the [`Waker`](crate::io::Waker)) or the timeout ends
    /// the wait.
    pub(super) fn wait_and_reap(&mut self, st: &mut State, tick: Duration) {
        let prepared = self.backend.in_flight() > 0 && self.requests.is_empty();
        let wait = if prepared {
            self.waker.prepare_sleep();
            if self.requests.is_empty() { Some(tick) } else { None }
        } else {
            None
        };
        self.reap(st, wait);
        // Also when a request came between the flag and the check (no sleep then): a flag left set
        // would make the next append pay for a wake-up nobody waits for.
        if prepared {
            self.waker.cancel_sleep();
        }
    }

    /// Reaps completions (waiting up to `wait` for one) and moves everything they unblock on.
    pub(super) fn reap(&mut self, st: &mut State, wait: Option<Duration>) {
        let waker = Arc::clone(&self.waker);
        self.backend.reap(wait.map(|d| (&*waker, d)), &mut st.completions);
        let mut completions = std::mem::take(&mut st.completions);
        let mut touched = std::mem::take(&mut st.touched);
        for c in completions.drain(..) {
            if c.token & SYNC_TOKEN != 0 {
                match st.syncs.try_remove((c.token & !SYNC_TOKEN) as usize) {
                    Some((group, index)) => self.sync_done(st, group, index, c.result),
                    None => log::error!("completion for unknown fsync {}", c.token),
                }
                continue;
            }
            match st.writes.try_remove(c.token as usize) {
                Some(op) => {
                    let result = c.result.map_err(|e| Error::io("write", &*op.path, e));
                    let partition = op.partition;
                    if let Err(e) = &result {
                        self.go_offline(st, e.clone());
                    }
                    let pio = &mut st.io[partition as usize];
                    pio.pipe.complete(c.token, result);
                    if !pio.touched {
                        pio.touched = true;
                        touched.push(partition);
                    }
                    // The kernel is done with the op's buffers: drop them, or reuse an O_DIRECT one.
                    if let Some(buf) = op.into_buffer() {
                        st.io[partition as usize].pipe.recycle(buf);
                    }
                }
                None => log::error!("completion for unknown write {}", c.token),
            }
        }
        st.completions = completions;
        // A partition whose write failed was touched by that completion; one whose placement failed
        // is listed in `failing` until its failure is finished.
        let failing = std::mem::take(&mut st.failing);
        for p in failing {
            let pio = &mut st.io[p as usize];
            if pio.pipe.failure.is_some() && !pio.touched {
                pio.touched = true;
                touched.push(p);
            }
        }
        let written = Instant::now();
        let moved = !touched.is_empty();
        for p in touched.drain(..) {
            st.io[p as usize].touched = false;
            self.advance(st, p, written);
            // A completion may have unblocked an O_DIRECT stage; a finished failure placed the held
            // appends (marked by `place`); a failure still waiting for writes in flight stays listed.
            st.mark_dirty(p);
            if st.io[p as usize].pipe.failure.is_some() && !st.failing.contains(&p) {
                st.failing.push(p);
            }
        }
        st.touched = touched;
        if moved {
            self.notify.bump();
        }
        self.start_syncs(st);
    }
}
