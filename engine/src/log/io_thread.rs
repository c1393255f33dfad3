//! The log's I/O thread: rounds of appends, written together, synced together.
//!
//! A round takes every request queued since the last one (up to a limit), places each batch in its
//! partition (offsets, positions, rolls), writes them all through the backend — consecutive batches of
//! one file coalesced into one vectored write, every write of the round in flight at once on io_uring —
//! then makes them readable in order. When flush.messages made a flush due, one fdatasync per file
//! covers every batch of the round (group commit), and those batches are acknowledged after it.
//! flush.ms and retention run between rounds.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::partition::{PartitionLog, Placed, Placement};
use super::{AppendCallback, AppendOutcome};
use crate::error::{Error, Result};
use crate::io::{Backend, WriteOp};

/// Most requests one round takes, so acknowledgements keep flowing under sustained load.
const MAX_ROUND: usize = 1024;
/// Most buffers in one vectored write (the kernel's UIO_MAXIOV).
const MAX_IOVECS: usize = 1024;

pub(crate) enum Request {
    Append { partition: u32, batch: Vec<u8>, done: AppendCallback, enqueued: Instant },
    Flush(crossbeam_channel::Sender<Result<()>>),
    Close,
}

pub(crate) struct IoThread {
    pub partitions: Arc<[Mutex<PartitionLog>]>,
    pub backend: Box<dyn Backend>,
    pub requests: Receiver<Request>,
    pub flush_messages: Option<u64>,
    pub flush_ms: Option<u64>,
    pub retention_check: Duration,
}

struct Pending {
    partition: u32,
    batch: Vec<u8>,
    done: AppendCallback,
    enqueued: Instant,
    placed: Option<Placed>,
    duplicate: Option<(i64, i64)>,
    error: Option<Error>,
    written: Option<Instant>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl IoThread {
    fn lock(&self, p: u32) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.partitions[p as usize].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn run(mut self) {
        let mut last_flush = Instant::now();
        let mut last_retention = Instant::now();
        let mut round: Vec<Request> = Vec::with_capacity(MAX_ROUND);
        loop {
            let tick = self
                .flush_ms
                .map_or(self.retention_check, |ms| Duration::from_millis(ms.max(1)).min(self.retention_check));
            match self.requests.recv_timeout(tick) {
                Ok(r) => round.push(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while round.len() < MAX_ROUND {
                match self.requests.try_recv() {
                    Ok(r) => round.push(r),
                    Err(_) => break,
                }
            }
            let mut close = false;
            let mut flushes = Vec::new();
            let mut appends = Vec::with_capacity(round.len());
            for r in round.drain(..) {
                match r {
                    Request::Append { partition, batch, done, enqueued } => {
                        appends.push((partition, batch, done, enqueued))
                    }
                    Request::Flush(reply) => flushes.push(reply),
                    Request::Close => close = true,
                }
            }
            if !appends.is_empty() {
                self.append_round(appends);
            }
            if let Some(ms) = self.flush_ms
                && last_flush.elapsed() >= Duration::from_millis(ms)
            {
                let _ = self.sync_partitions(|p| p.unflushed_records > 0);
                last_flush = Instant::now();
            }
            if !flushes.is_empty() || close {
                let outcome = self.sync_partitions(|p| p.unflushed_records > 0);
                for reply in flushes {
                    let _ = reply.send(outcome.clone().map(|_| ()));
                }
            }
            if last_retention.elapsed() >= self.retention_check {
                last_retention = Instant::now();
                for p in 0..self.partitions.len() {
                    let mut log = self.lock(p as u32);
                    if let Err(e) = log.apply_retention(now_ms()) {
                        log::warn!("retention on {}: {e}", log.name);
                    }
                }
            }
            if close {
                break;
            }
        }
        // Whatever was still queued is refused rather than dropped silently.
        while let Ok(r) = self.requests.try_recv() {
            if let Request::Append { batch, done, .. } = r {
                done(Err(Error::Closed { what: "log".into() }), batch);
            }
        }
        for p in 0..self.partitions.len() {
            let mut log = self.lock(p as u32);
            if let Err(e) = log.close() {
                log::warn!("closing {}: {e}", log.name);
            }
        }
    }

    fn append_round(&mut self, appends: Vec<(u32, Vec<u8>, AppendCallback, Instant)>) {
        let now = now_ms();
        let mut pending: Vec<Pending> = appends
            .into_iter()
            .map(|(partition, mut batch, done, enqueued)| {
                let mut p = Pending {
                    partition,
                    batch: Vec::new(),
                    done,
                    enqueued,
                    placed: None,
                    duplicate: None,
                    error: None,
                    written: None,
                };
                let placement = if (partition as usize) < self.partitions.len() {
                    self.lock(partition).place(&mut batch, now)
                } else {
                    Err(Error::UnknownPartition { partition, partitions: self.partitions.len() as u32 })
                };
                match placement {
                    Ok(Placement::Write(placed)) => p.placed = Some(placed),
                    Ok(Placement::Duplicate { base_offset, last_offset }) => {
                        p.duplicate = Some((base_offset, last_offset))
                    }
                    Err(e) => p.error = Some(e),
                }
                p.batch = batch;
                p
            })
            .collect();

        // Consecutive batches of one file become one vectored write; every write is in flight at once.
        let mut ops: Vec<WriteOp<'_>> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut end_of_last: Option<(*const File, u64)> = None;
        for (i, p) in pending.iter().enumerate() {
            let Some(placed) = &p.placed else { continue };
            let file: *const File = &*placed.file;
            let extend =
                end_of_last == Some((file, placed.position)) && ops.last().is_some_and(|op| op.bufs.len() < MAX_IOVECS);
            if extend {
                ops.last_mut().expect("checked").bufs.push(&p.batch);
                members.last_mut().expect("parallel to ops").push(i);
            } else {
                ops.push(WriteOp { file: &placed.file, offset: placed.position, bufs: vec![&p.batch], result: Ok(()) });
                members.push(vec![i]);
            }
            end_of_last = Some((file, placed.position + p.batch.len() as u64));
        }
        self.backend.write_all(&mut ops);
        let written_at = Instant::now();
        let failed: Vec<(Vec<usize>, std::io::Error)> =
            ops.into_iter().zip(members).filter_map(|(op, m)| op.result.err().map(|e| (m, e))).collect();
        let failed: Vec<(usize, Arc<std::io::Error>)> = failed
            .into_iter()
            .flat_map(|(m, e)| {
                let e = Arc::new(e);
                m.into_iter().map(move |i| (i, Arc::clone(&e)))
            })
            .collect();
        for (i, e) in failed {
            let path = pending[i].placed.as_ref().map(|pl| pl.path.clone()).unwrap_or_default();
            pending[i].error = Some(Error::Io { path, operation: "write", source: e });
        }

        // Make written batches readable in placement order. A failed write fails every later batch of
        // its partition in this round (they would follow a hole) and cuts the file back.
        let mut broken: Vec<u32> = Vec::new();
        for p in pending.iter_mut() {
            let Some(placed) = &p.placed else { continue };
            let mut log = self.lock(p.partition);
            if broken.contains(&p.partition) {
                p.error = Some(Error::Io {
                    path: placed.path.clone(),
                    operation: "write",
                    source: Arc::new(std::io::Error::other(
                        "an earlier batch of this partition failed in the same round",
                    )),
                });
            } else if p.error.is_some() {
                broken.push(p.partition);
                log.rollback(placed);
            } else if let Err(e) = log.commit(placed) {
                p.error = Some(e);
            } else {
                p.written = Some(written_at);
            }
        }

        // Group commit: when flush.messages is reached, one fdatasync per file covers the round.
        let mut sync_ns = 0;
        if let Some(n) = self.flush_messages {
            let started = Instant::now();
            match self.sync_partitions(|p| p.unflushed_records >= n) {
                Ok(true) => sync_ns = started.elapsed().as_nanos() as u64,
                Ok(false) => {}
                Err(e) => {
                    for p in pending.iter_mut().filter(|p| p.written.is_some()) {
                        p.error = Some(e.clone());
                    }
                }
            }
        }

        for p in pending {
            let outcome = if let Some(e) = p.error {
                Err(e)
            } else if let Some((base_offset, last_offset)) = p.duplicate {
                Ok(AppendOutcome {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    duplicate: true,
                    write_ns: 0,
                    sync_ns: 0,
                })
            } else {
                let placed = p.placed.as_ref().expect("neither failed nor duplicate, so placed");
                Ok(AppendOutcome {
                    base_offset: placed.header.base_offset,
                    last_offset: placed.header.last_offset(),
                    log_append_time_ms: -1,
                    duplicate: false,
                    write_ns: p.written.map_or(0, |w| w.saturating_duration_since(p.enqueued).as_nanos() as u64),
                    sync_ns,
                })
            };
            (p.done)(outcome, p.batch);
        }
    }

    /// fdatasyncs the files of every partition `due` selects; returns whether anything was synced.
    fn sync_partitions(&mut self, due: impl Fn(&PartitionLog) -> bool) -> Result<bool> {
        let mut chosen = Vec::new();
        let mut files: Vec<Arc<File>> = Vec::new();
        for p in 0..self.partitions.len() {
            let log = self.lock(p as u32);
            if due(&log) {
                chosen.push(p);
                files.extend(log.files_to_sync());
            }
        }
        if files.is_empty() {
            return Ok(false);
        }
        let refs: Vec<&File> = files.iter().map(|f| &**f).collect();
        let results = self.backend.sync_all(&refs);
        let mut first_error = None;
        for r in results {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            let dir = self.lock(chosen[0] as u32).dir().to_path_buf();
            return Err(Error::io("fdatasync", dir, e));
        }
        for p in chosen {
            self.lock(p as u32).unflushed_records = 0;
        }
        Ok(true)
    }
}
