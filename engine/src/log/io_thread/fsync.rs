//! Group commit: the fdatasyncs of partitions that want one (a due flush.messages, flush.ms, a
//! flush), at most one in flight per partition, and the acknowledgement of the batches each covers
//! once it succeeded — after the high watermark passed them, Kafka's order. A failed fsync takes the
//! directory offline ([`commit`](super::commit)'s `go_offline`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::commit::outcome;
use super::state::State;
use super::{IoThread, nanos_since};
use crate::error::{Error, Result};
use crate::log::partition::SyncTarget;
use crate::log::pipeline::Entry;

/// Most descriptors opened for fsyncs in flight at once (directories, segments rolled since their
/// write): a flush of many partitions opens them in waves, within the descriptor budget
/// (`descriptors.rs` counts these as headroom).
pub(crate) const SYNC_OPENS_IN_FLIGHT: usize = 64;

/// Marks an fsync's token (the rest is its key in `State::syncs`); a write's token is its key in
/// `State::writes`. Both slabs reuse keys of reaped operations: no token is live twice at once.
pub(super) const SYNC_TOKEN: u64 = 1 << 62;

/// A batch written and waiting for the fsync that will acknowledge it.
pub(super) struct Waiter {
    pub(super) entry: Entry,
    pub(super) written: Instant,
}

/// One fsync of a partition's files, possibly several fds.
pub(super) struct SyncGroup {
    partition: u32,
    pending: usize,
    error: Option<Error>,
    waiters: Vec<Waiter>,
    /// The files being synced, for the error's path.
    targets: Vec<SyncTarget>,
    /// Their descriptors, kept open until every fsync of the group completed.
    _files: Vec<Arc<crate::io::storage::OpenFile>>,
    /// How many of those were opened for this fsync (counted in `State::sync_opens`).
    opened: usize,
}

impl IoThread {
    /// Starts an fdatasync for every partition that wants one and has none in flight.
    pub(super) fn start_syncs(&mut self, st: &mut State) {
        if self.health.is_offline() {
            // Nothing is synced any more: no fsync is wanted (flush and close must not wait for one).
            for pio in &mut st.io {
                pio.sync_wanted = false;
                pio.sync_listed = false;
            }
            st.sync_list.clear();
            return;
        }
        let listed = std::mem::take(&mut st.sync_list);
        for (at, &p32) in listed.iter().enumerate() {
            let p = p32 as usize;
            let pio = &mut st.io[p];
            pio.sync_listed = false;
            // One in flight: listed again by `sync_done` if still wanted.
            if !pio.sync_wanted || pio.sync_in_flight.is_some() {
                continue;
            }
            let to_open = self.lock(p32).unsynced_to_open();
            if to_open > 0 && st.sync_opens > 0 && st.sync_opens + to_open > SYNC_OPENS_IN_FLIGHT {
                // Waits (still wanted, still listed) for fsyncs in flight to give their descriptors back.
                st.want_sync(p32);
                continue;
            }
            pio.sync_wanted = false;
            let files = self.lock(p as u32).take_unsynced();
            let waiters = std::mem::take(&mut st.io[p].waiters);
            if files.is_empty() {
                if let Some(end) = waiters.last().map(|w| w.entry.placed.header.last_offset() + 1) {
                    self.lock(p as u32).expose(end);
                }
                let now = Instant::now();
                for w in waiters {
                    let o = outcome(&w.entry, w.written, nanos_since(w.written, now));
                    (w.entry.done)(Ok(o), w.entry.batch);
                }
                continue;
            }
            let opened = files.iter().filter(|t| t.file.is_none()).count();
            let fds = match files.iter().map(SyncTarget::open).collect::<Result<Vec<_>>>() {
                Ok(fds) => fds,
                Err(e) => {
                    // As a failed fsync: the directory goes offline and the waiters fail.
                    let e = self.go_offline(st, e);
                    for w in waiters {
                        (w.entry.done)(Err(e.clone()), w.entry.batch);
                    }
                    st.sync_errors.push(e);
                    // Offline now: nothing more is synced; the partitions not reached are unlisted.
                    for &q in &listed[at + 1..] {
                        st.io[q as usize].sync_listed = false;
                    }
                    return;
                }
            };
            let group = st.next_group;
            st.next_group += 1;
            for (i, f) in fds.iter().enumerate() {
                let token = SYNC_TOKEN | st.syncs.insert((group, i)) as u64;
                self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.backend.sync(token, f);
            }
            st.io[p].sync_in_flight = Some(group);
            st.sync_opens += opened;
            st.groups.insert(
                group,
                SyncGroup {
                    partition: p as u32,
                    pending: files.len(),
                    error: None,
                    waiters,
                    targets: files,
                    _files: fds,
                    opened,
                },
            );
        }
    }

    /// One fsync of `group` completed; when it was the last, the group's waiters are exposed and
    /// acknowledged (or, if one of its fsyncs failed, the directory goes offline and they fail).
    pub(super) fn sync_done(&mut self, st: &mut State, group: u64, index: usize, result: std::io::Result<()>) {
        let Some(g) = st.groups.get_mut(&group) else { return };
        g.pending -= 1;
        if let Err(e) = result
            && g.error.is_none()
        {
            g.error = Some(Error::io("fdatasync", &g.targets[index].path, e));
        }
        if g.pending > 0 {
            return;
        }
        let Some(g) = st.groups.remove(&group) else { return };
        st.sync_opens -= g.opened;
        let pio = &mut st.io[g.partition as usize];
        pio.sync_in_flight = None;
        // Batches written while this fsync ran are acknowledged in order after the next one.
        if pio.sync_wanted || !pio.waiters.is_empty() {
            st.want_sync(g.partition);
        }
        if let Some(e) = g.error {
            // Linux reports a failed writeback once and may drop the pages: fail-stop.
            let e = self.go_offline(st, e);
            st.sync_errors.push(e);
        }
        // Offline (by this fsync or by another failure meanwhile): nothing more is acknowledged.
        let result = self.health.check();
        if result.is_ok()
            && let Some(end) = g.waiters.last().map(|w| w.entry.placed.header.last_offset() + 1)
        {
            // Kafka's order: the flush first, then the high watermark, then the acknowledgement.
            self.lock(g.partition).expose(end);
        }
        let now = Instant::now();
        for w in g.waiters {
            let result = match &result {
                Ok(()) => Ok(outcome(&w.entry, w.written, nanos_since(w.written, now))),
                Err(e) => Err(e.clone()),
            };
            (w.entry.done)(result, w.entry.batch);
        }
    }
}
