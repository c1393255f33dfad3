//! The requests that first drain everything in flight: flush (write and fdatasync everything
//! placed), truncation (a replica cut back to an offset), and the thread's close.

use std::time::Duration;

use super::intake::refuse;
use super::state::State;
use super::{IoThread, now_ms};
use crate::error::{Error, Result};
use crate::log::pipeline::Pipe;

impl IoThread {
    /// Cuts `partition` back to `offset` once everything placed is written and synced, and forgets
    /// the pipeline's staged tail (O_DIRECT), which may hold bytes past the cut.
    pub(super) fn truncate(&mut self, st: &mut State, partition: u32, offset: i64) -> Result<()> {
        if partition as usize >= st.io.len() {
            return Err(Error::UnknownPartition { partition, partitions: st.io.len() as u32 });
        }
        self.health.check()?;
        self.flush_all(st)?;
        let truncated = self.lock(partition).truncate_to(offset, now_ms());
        if let Err(e) = truncated {
            return Err(if matches!(e, Error::Io { .. }) { self.go_offline(st, e) } else { e });
        }
        st.io[partition as usize].pipe = Pipe::default();
        Ok(())
    }

    /// Writes everything placed and fdatasyncs every partition with unsynced data (flush and close).
    pub(super) fn flush_all(&mut self, st: &mut State) -> Result<()> {
        st.sync_errors.clear();
        let mut first_error = None;
        loop {
            self.submit_all(st);
            let busy = st.io.iter().any(|pio| !pio.pipe.is_idle() || !pio.held.is_empty());
            if !busy {
                break;
            }
            if self.backend.in_flight() == 0 {
                // Nothing in flight yet work left: a failed partition rolled back and placed its held
                // appends; go round again to submit them.
                self.reap(st, None);
                continue;
            }
            self.reap(st, Some(Duration::from_millis(100)));
        }
        for p in 0..st.io.len() {
            if self.lock(p as u32).has_unsynced() || !st.io[p].waiters.is_empty() {
                st.want_sync(p as u32);
            }
        }
        loop {
            self.start_syncs(st);
            // Nothing in flight means no fsync in flight, so every partition still wanting one is
            // listed (`start_syncs` just dropped those that no longer want one).
            if self.backend.in_flight() == 0 && st.sync_list.is_empty() {
                break;
            }
            self.reap(st, Some(Duration::from_millis(100)));
        }
        if let Some(e) = st.sync_errors.drain(..).next() {
            first_error = Some(e);
        }
        if first_error.is_none()
            && let Err(e) = self.health.check()
        {
            first_error = Some(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The thread stops: whatever is still queued is refused rather than dropped silently, and the
    /// segments are trimmed (preallocation, O_DIRECT padding) and closed — unless the directory is
    /// offline, when it is left as it is (recovery runs over it when the log reopens).
    pub(super) fn close(&self) {
        while let Ok(r) = self.requests.try_recv() {
            refuse(r);
        }
        if self.health.is_offline() {
            return;
        }
        for p in 0..self.partitions.len() {
            let mut log = self.lock(p as u32);
            let (base, _) = log.active_segment();
            if let Err(e) = log.trim_padding(base) {
                log::warn!("closing {}: {e}", log.name);
            }
            if let Err(e) = log.close() {
                log::warn!("closing {}: {e}", log.name);
            }
        }
    }
}
