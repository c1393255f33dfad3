//! What the I/O thread's jobs share: per partition its write pipeline and group-commit state, the
//! writes and fsyncs in flight, and the lists that keep a round's work proportional to the
//! partitions it touched.

use std::collections::HashMap;

use slab::Slab;

use super::fsync::{SyncGroup, Waiter};
use super::intake::Incoming;
use crate::io::Completion;
use crate::log::pipeline::{Entry, Pipe, WriteOp};

/// Per partition: the write pipeline and the group-commit state.
#[derive(Default)]
pub(super) struct PartitionIo {
    pub(super) pipe: Pipe,
    /// Appends that arrived while the partition finishes a failure (placed once it is finished).
    pub(super) held: Vec<Incoming>,
    /// Batches written and waiting for the fsync that will acknowledge them.
    pub(super) waiters: Vec<Waiter>,
    pub(super) sync_in_flight: Option<u64>,
    pub(super) sync_wanted: bool,
    /// In `State::sync_list`.
    pub(super) sync_listed: bool,
    /// In `State::dirty` (placed batches or a completion since its last submit).
    pub(super) dirty: bool,
    /// In this reap's list of partitions to advance.
    pub(super) touched: bool,
}

/// The running state of the loop.
pub(super) struct State {
    pub(super) io: Vec<PartitionIo>,
    /// Writes in flight, by token (their key): indices into a slab, not a hash map, per batch.
    pub(super) writes: Slab<WriteOp>,
    /// fsyncs in flight, by token without [`SYNC_TOKEN`](super::fsync::SYNC_TOKEN): one file of a
    /// sync group (group, index into its targets).
    pub(super) syncs: Slab<(u64, usize)>,
    pub(super) groups: HashMap<u64, SyncGroup>,
    /// The next sync group's id.
    pub(super) next_group: u64,
    pub(super) completions: Vec<Completion>,
    /// Errors of fsyncs since a flush() began.
    pub(super) sync_errors: Vec<crate::error::Error>,
    /// Partitions that may have something to submit: a round's work is O(partitions it touched),
    /// not O(partitions).
    pub(super) dirty: Vec<u32>,
    /// Partitions whose placement failed (O_DIRECT staging), to finish through the failure path.
    pub(super) failing: Vec<u32>,
    /// Descriptors opened for the fsyncs in flight (bounded by
    /// [`SYNC_OPENS_IN_FLIGHT`](super::SYNC_OPENS_IN_FLIGHT)).
    pub(super) sync_opens: usize,
    /// Partitions that may want an fsync started: every partition with `sync_wanted` and no fsync
    /// in flight is listed (one in flight is listed again when it completes), so starting fsyncs is
    /// O(partitions wanting one), not O(partitions), per reap.
    pub(super) sync_list: Vec<u32>,
    /// Buffers reused by every reap (no allocation per round or per partition): the partitions a
    /// reap touched, the entries a partition's frontier passed, those acknowledged at once.
    pub(super) touched: Vec<u32>,
    pub(super) ready: Vec<Entry>,
    pub(super) acks: Vec<Entry>,
}

impl State {
    pub(super) fn new(partitions: usize) -> Self {
        State {
            io: (0..partitions).map(|_| PartitionIo::default()).collect(),
            writes: Slab::new(),
            syncs: Slab::new(),
            groups: HashMap::new(),
            next_group: 1,
            completions: Vec::new(),
            sync_errors: Vec::new(),
            dirty: Vec::new(),
            failing: Vec::new(),
            sync_opens: 0,
            sync_list: Vec::new(),
            touched: Vec::new(),
            ready: Vec::new(),
            acks: Vec::new(),
        }
    }

    pub(super) fn mark_dirty(&mut self, p: u32) {
        let pio = &mut self.io[p as usize];
        if !pio.dirty {
            pio.dirty = true;
            self.dirty.push(p);
        }
    }

    /// The partition wants an fsync (started by the next `start_syncs`, once none is in flight).
    pub(super) fn want_sync(&mut self, p: u32) {
        let pio = &mut self.io[p as usize];
        pio.sync_wanted = true;
        if !pio.sync_listed {
            pio.sync_listed = true;
            self.sync_list.push(p);
        }
    }
}
