//! Commit and fail-stop: what a partition's write frontier passed is committed to its log and
//! acknowledged, or queued (still invisible) for the fsync a due flush wants; the first storage
//! error takes the log directory offline and fails everything not yet acknowledged.

use std::time::Instant;

use super::fsync::Waiter;
use super::state::State;
use super::{IoThread, nanos_since};
use crate::error::Error;
use crate::log::AppendOutcome;
use crate::log::pipeline::Entry;

impl IoThread {
    /// Takes the log directory offline because of `cause` (see the module docs): no partition
    /// submits or syncs again, and every batch waiting for an fsync or held fails now; batches whose
    /// writes are in flight fail once those are reaped. Never called with a partition lock held
    /// (callbacks run here). Returns the error everything fails with.
    pub(super) fn go_offline(&self, st: &mut State, cause: Error) -> Error {
        let error = self.health.fail(cause);
        let mut failed = Vec::new();
        let mut unfinished = Vec::new();
        for (p, pio) in st.io.iter_mut().enumerate() {
            pio.pipe.failure.get_or_insert_with(|| error.clone());
            pio.sync_wanted = false;
            failed.extend(pio.waiters.drain(..).map(|w| (w.entry.done, w.entry.batch)));
            failed.extend(pio.held.drain(..).map(|h| (h.done, h.batch)));
            if !pio.pipe.is_idle() {
                // Batches placed and not yet in a write (this round's, when a roll failed) are never
                // submitted now, so no completion would finish them: the next reap does.
                unfinished.push(p as u32);
            }
        }
        st.failing.extend(unfinished);
        st.failing.sort_unstable();
        st.failing.dedup();
        for (done, batch) in failed {
            done(Err(error.clone()), batch);
        }
        error
    }

    /// Commits what the partition's frontier passed: acknowledges it, or (a flush due, or batches
    /// before it waiting) queues it, still invisible, for an fsync. Once the directory is offline,
    /// fails whatever was not acknowledged, when nothing of the partition is in flight any more.
    /// Callbacks run after the partition lock is released (a callback takes replication's lock,
    /// which a fetcher holds while it takes this one).
    pub(super) fn advance(&mut self, st: &mut State, p: u32, written: Instant) {
        let mut entries = std::mem::take(&mut st.ready);
        st.io[p as usize].pipe.advance(&mut entries);
        let mut ready = entries.drain(..);
        let trims = st.io[p as usize].pipe.due_trims();
        let mut acks = std::mem::take(&mut st.acks);
        let mut storage_error = None;
        if !self.health.is_offline() {
            let mut log = self.lock(p);
            for base in trims {
                if let Err(e) = log.trim_padding(base) {
                    log::warn!("{}: {e}", log.name);
                }
            }
            for entry in ready.by_ref() {
                let records = entry.placed.header.records_count.max(0) as u64;
                let due = self.flush_messages.is_some_and(|n| log.unflushed_records + records >= n);
                let pio = &mut st.io[p as usize];
                let early = self.ack_before_sync;
                let wait = (due || !pio.waiters.is_empty()) && !early;
                if let Err(e) = log.commit(&entry.placed, !wait) {
                    storage_error = Some(e);
                    break;
                }
                if wait {
                    pio.waiters.push(Waiter { entry, written });
                    if due {
                        st.want_sync(p);
                    }
                } else {
                    if due && early {
                        st.want_sync(p);
                    }
                    acks.push(entry);
                }
            }
        }
        for entry in acks.drain(..) {
            let outcome = outcome(&entry, written, 0);
            (entry.done)(Ok(outcome), entry.batch);
        }
        st.acks = acks;
        if let Some(e) = storage_error {
            self.go_offline(st, e);
        }
        // Offline: what the frontier passed and was not committed fails (the batch whose commit
        // failed first among them).
        let mut failed: Vec<Entry> = ready.collect();
        st.ready = entries;
        if let Some((_, rest)) = st.io[p as usize].pipe.take_failed() {
            failed.extend(rest);
        }
        if !failed.is_empty() {
            let error = self.health.check().err().unwrap_or_else(|| Error::Closed { what: "log".into() });
            for e in failed {
                (e.done)(Err(error.clone()), e.batch);
            }
        }
    }
}

/// The acknowledgement of `entry`, written at `written`, after an fsync of `sync_ns` (0: none).
pub(super) fn outcome(entry: &Entry, written: Instant, sync_ns: u64) -> AppendOutcome {
    AppendOutcome {
        base_offset: entry.placed.header.base_offset,
        last_offset: entry.placed.header.last_offset(),
        log_append_time_ms: entry.placed.log_append_time_ms,
        duplicate: false,
        write_ns: nanos_since(entry.enqueued, written),
        sync_ns,
    }
}
