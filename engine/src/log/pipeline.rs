//! One partition's write pipeline on the I/O thread: batches placed but not yet readable, the
//! writes carrying them, and the frontier up to which every write has completed.
//!
//! Every placed byte of a partition gets a position in one running sequence (`seq`), across segment
//! rolls. Writes are submitted in `seq` order and may complete in any order; the frontier advances
//! over completed writes only, so batches become readable (and acknowledgeable) strictly in offset
//! order, and a failed write stops the frontier where the hole begins.
//!
//! Buffered mode writes the batches' own buffers: consecutive batches of one file become one
//! vectored write (up to [`MAX_IOVECS`] buffers or [`MAX_WRITE_BYTES`]). O_DIRECT mode copies them
//! into a block-aligned stage per segment and writes whole blocks in chunks of [`DIRECT_CHUNK`],
//! the partial last block padded with zeros; the next write rewrites that block, so it waits until
//! the padded write completed (two in-flight writes never overlap). Padding is cut off the file
//! when the segment rolls or the log closes.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use super::AppendCallback;
use super::partition::Placed;
use crate::error::{Error, Result};
use crate::io::storage::{Access, OpenFile};
use crate::io::{ALIGN, AlignedBuf, Backend};

/// Most buffers in one vectored write (the kernel's UIO_MAXIOV).
pub(crate) const MAX_IOVECS: usize = 1024;
/// Largest coalesced buffered write.
pub(crate) const MAX_WRITE_BYTES: usize = 4 << 20;
/// Size of one O_DIRECT write (several may be in flight per partition).
pub(crate) const DIRECT_CHUNK: usize = 1 << 20;

/// A batch placed in the log, waiting for its write.
pub(crate) struct Entry {
    pub batch: Vec<u8>,
    pub done: AppendCallback,
    pub enqueued: Instant,
    pub placed: Placed,
    /// End of this batch in the partition's running byte sequence.
    pub seq_end: u64,
}

/// What a submitted write keeps alive until it completes.
pub(crate) struct WriteOp {
    pub partition: u32,
    /// The segment file's path, for the error if the write fails.
    pub path: Arc<Path>,
    iov: Vec<libc::iovec>,
    file: Arc<OpenFile>,
    buf: Option<Arc<AlignedBuf>>,
}

impl WriteOp {
    /// The O_DIRECT buffer, when this was its last write (for reuse).
    pub(crate) fn into_buffer(self) -> Option<AlignedBuf> {
        self.buf.and_then(|b| Arc::try_unwrap(b).ok())
    }
}

struct OpSlot {
    token: u64,
    seq_end: u64,
    result: Option<Result<()>>,
}

/// O_DIRECT staging for one segment: `buf[0]` is at block-aligned `file_pos`.
struct Stage {
    buf: AlignedBuf,
    file: Arc<OpenFile>,
    path: Arc<Path>,
    segment_base: i64,
    file_pos: u64,
    /// `seq` of `buf[0]`.
    seq_at_buf: u64,
    /// Bytes of `buf` already submitted.
    submitted: usize,
    /// The in-flight write covering the block `buf` starts with.
    blocker: Option<u64>,
}

/// Where a partition's byte sequence starts: far enough from zero that a stage's reread block head
/// (less than one block before the first placed byte) still has a position in it.
const SEQ_ORIGIN: u64 = 1 << 32;

/// The pipeline of one partition.
pub(crate) struct Pipe {
    pub entries: VecDeque<Entry>,
    /// `entries[unsubmitted..]` are in no write yet (buffered mode).
    unsubmitted: usize,
    seq_placed: u64,
    ops: VecDeque<OpSlot>,
    frontier: u64,
    /// The first write error; set until every write in flight has finished and the log rolled back.
    pub failure: Option<Error>,
    stages: VecDeque<Stage>,
    /// Segments whose O_DIRECT padding is cut once the frontier reaches `seq`.
    trims: Vec<(u64, i64)>,
    /// O_DIRECT buffers whose writes completed, for reuse.
    pool: Vec<AlignedBuf>,
    /// The path of the segment last written (by base offset), shared by its writes rather than
    /// copied for each.
    path: Option<(i64, Arc<Path>)>,
}

impl Default for Pipe {
    fn default() -> Self {
        Pipe {
            entries: VecDeque::new(),
            unsubmitted: 0,
            seq_placed: SEQ_ORIGIN,
            ops: VecDeque::new(),
            frontier: SEQ_ORIGIN,
            failure: None,
            stages: VecDeque::new(),
            trims: Vec::new(),
            pool: Vec::new(),
            path: None,
        }
    }
}

impl Pipe {
    /// Adds a placed batch; in O_DIRECT mode copies it into its segment's stage.
    pub(crate) fn push(&mut self, entry_parts: (Vec<u8>, AppendCallback, Instant, Placed), direct: bool) -> Result<()> {
        let (batch, done, enqueued, placed) = entry_parts;
        self.seq_placed += batch.len() as u64;
        if direct {
            self.stage_batch(&batch, &placed)?;
        }
        self.entries.push_back(Entry { batch, done, enqueued, placed, seq_end: self.seq_placed });
        Ok(())
    }

    fn stage_batch(&mut self, batch: &[u8], placed: &Placed) -> Result<()> {
        let seq_start = self.seq_placed - batch.len() as u64;
        if self.stages.back().is_none_or(|s| s.segment_base != placed.segment_base) {
            if let Some(old) = self.stages.back() {
                // The old segment ends here: cut its padding once everything before is written.
                self.trims.push((seq_start, old.segment_base));
            }
            // A new stage starts at the block holding `position`; an unaligned start (a reopened or
            // rolled-back log) rereads the bytes of that block already in the file.
            let file_pos = placed.position / ALIGN as u64 * ALIGN as u64;
            let prefix = (placed.position - file_pos) as usize;
            let mut buf = AlignedBuf::new(DIRECT_CHUNK.max(prefix + batch.len()));
            if prefix > 0 {
                let mut head = vec![0u8; prefix];
                // The write file is O_DIRECT and write-only: the block is read through its own file.
                let reader = OpenFile::open(placed.file.storage(), &placed.path, Access::ReadOnly)
                    .map_err(|e| Error::io("open segment", &placed.path, e))?;
                reader.read_exact_at(&mut head, file_pos).map_err(|e| Error::io("read segment", &placed.path, e))?;
                buf.extend(&head);
            }
            self.stages.push_back(Stage {
                buf,
                file: Arc::clone(&placed.file),
                path: Arc::from(placed.path.as_path()),
                segment_base: placed.segment_base,
                file_pos,
                seq_at_buf: seq_start - prefix as u64,
                submitted: prefix,
                blocker: None,
            });
        }
        let stage = self.stages.back_mut().expect("pushed above");
        debug_assert_eq!(
            stage.file_pos + stage.buf.len() as u64,
            placed.position,
            "stage {} {} {}",
            stage.file_pos,
            stage.buf.len(),
            stage.segment_base
        );
        stage.buf.reserve_total(stage.buf.len() + batch.len());
        stage.buf.extend(batch);
        Ok(())
    }

    /// Whether nothing is placed and unwritten.
    pub(crate) fn is_idle(&self) -> bool {
        self.entries.is_empty() && self.ops.is_empty()
    }

    /// Whether [`submit`](Self::submit) has something to send now: placed bytes not yet in a write,
    /// not held back by a failure or by an O_DIRECT block still being written.
    pub(crate) fn has_submittable(&self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        if self.stages.is_empty() {
            self.unsubmitted < self.entries.len()
        } else {
            // Stages submit in order: the first with unsent bytes decides. The active stage's partial
            // block waits while writes are in flight (see `submit_direct`).
            let count = self.stages.len();
            self.stages.iter().enumerate().find(|(_, s)| s.submitted < s.buf.len()).is_some_and(|(i, s)| {
                s.blocker.is_none() && (i + 1 < count || self.ops.is_empty() || s.buf.len() >= ALIGN)
            })
        }
    }

    /// Submits writes for everything placed and not yet in a write. Each write is kept in `ops`
    /// until its completion is reaped; its token is its key there. Returns the writes submitted
    /// and the bytes they carry.
    pub(crate) fn submit(&mut self, partition: u32, backend: &mut dyn Backend, ops: &mut Slab<WriteOp>) -> (u64, u64) {
        if self.failure.is_some() {
            return (0, 0);
        }
        if self.stages.is_empty() {
            self.submit_buffered(partition, backend, ops)
        } else {
            self.submit_direct(partition, backend, ops)
        }
    }

    fn submit_buffered(&mut self, partition: u32, backend: &mut dyn Backend, ops: &mut Slab<WriteOp>) -> (u64, u64) {
        let (mut writes, mut bytes) = (0, 0);
        while self.unsubmitted < self.entries.len() {
            let first = &self.entries[self.unsubmitted];
            let (file, position) = (Arc::clone(&first.placed.file), first.placed.position);
            let path = match &self.path {
                Some((base, path)) if *base == first.placed.segment_base => Arc::clone(path),
                _ => {
                    let path: Arc<Path> = Arc::from(first.placed.path.as_path());
                    self.path = Some((first.placed.segment_base, Arc::clone(&path)));
                    path
                }
            };
            let mut iov = Vec::new();
            let mut end = position;
            let mut i = self.unsubmitted;
            while let Some(e) = self.entries.get(i) {
                let joins = Arc::ptr_eq(&e.placed.file, &file) && e.placed.position == end;
                if !joins || iov.len() >= MAX_IOVECS || (end - position) as usize >= MAX_WRITE_BYTES {
                    break;
                }
                iov.push(libc::iovec { iov_base: e.batch.as_ptr() as *mut libc::c_void, iov_len: e.batch.len() });
                end += e.batch.len() as u64;
                i += 1;
            }
            let seq_end = self.entries[i - 1].seq_end;
            self.unsubmitted = i;
            writes += 1;
            bytes += end - position;
            let key = ops.insert(WriteOp { partition, path, iov, file, buf: None });
            let token = key as u64;
            let op = &ops[key];
            // SAFETY: the iovecs point into `Entry::batch` buffers, which stay in `self.entries`
            // unmodified until the frontier passes this write, i.e. after its completion is reaped.
            // The iovec array is `op.iov`'s heap buffer and the file is `op.file`'s, kept open by
            // that Arc: the op stays in `ops` until the completion is reaped (the slab may move the
            // `WriteOp` when it grows, never the `Vec`'s buffer or the `OpenFile`).
            unsafe { backend.write(token, &op.file, position, &op.iov) };
            self.ops.push_back(OpSlot { token, seq_end, result: None });
        }
        (writes, bytes)
    }

    fn submit_direct(&mut self, partition: u32, backend: &mut dyn Backend, ops: &mut Slab<WriteOp>) -> (u64, u64) {
        let (mut writes, mut bytes) = (0, 0);
        let count = self.stages.len();
        for i in 0..count {
            // While writes of this partition are in flight more data is likely on its way, so the
            // active stage sends whole blocks only and keeps its partial last block to grow: writing
            // it now would make the next write wait for this one (it must rewrite that block). Once
            // nothing is in flight the partial block goes out, padded, and acknowledges what it holds.
            let hold_tail = i + 1 == count && !self.ops.is_empty();
            let stage = &mut self.stages[i];
            if stage.submitted >= stage.buf.len() {
                continue;
            }
            if stage.blocker.is_some() {
                // Later stages wait too: writes are submitted in sequence order.
                break;
            }
            let len = stage.buf.len();
            let whole = len / ALIGN * ALIGN;
            let send = if hold_tail { whole } else { len };
            if send == 0 {
                continue;
            }
            let next = self.pool.pop().unwrap_or_else(|| AlignedBuf::new(DIRECT_CHUNK));
            stage.buf.zero_pad();
            let buf = Arc::new(std::mem::replace(&mut stage.buf, next));
            let padded = &buf.padded()[..send.div_ceil(ALIGN) * ALIGN];
            let mut at = 0;
            let mut last_token = 0;
            while at < send {
                let chunk_end = (at + DIRECT_CHUNK).min(padded.len());
                let iov =
                    vec![libc::iovec { iov_base: padded[at..].as_ptr() as *mut libc::c_void, iov_len: chunk_end - at }];
                writes += 1;
                bytes += (chunk_end - at) as u64;
                let key = ops.insert(WriteOp {
                    partition,
                    path: Arc::clone(&stage.path),
                    iov,
                    file: Arc::clone(&stage.file),
                    buf: Some(Arc::clone(&buf)),
                });
                let token = key as u64;
                let op = &ops[key];
                // SAFETY: the iovec points into `buf`, an aligned buffer kept alive by `op.buf` (and
                // never written again) until this write's completion is reaped, as the iovec array
                // (`op.iov`'s heap buffer) and the file (`op.file`'s Arc) are: the op stays in `ops`
                // until then (the slab may move the `WriteOp`, never those).
                unsafe { backend.write(token, &op.file, stage.file_pos + at as u64, &op.iov) };
                let seq_end = stage.seq_at_buf + chunk_end.min(send) as u64;
                self.ops.push_back(OpSlot { token, seq_end, result: None });
                last_token = token;
                at = chunk_end;
            }
            // The partial last block starts the next stage buffer: held back (not yet on disk), or
            // sent padded and rewritten with what follows once that write completed.
            stage.buf.extend(&buf.as_slice()[whole..]);
            stage.file_pos += whole as u64;
            stage.seq_at_buf += whole as u64;
            if send > whole {
                stage.submitted = len - whole;
                stage.blocker = Some(last_token);
            } else {
                stage.submitted = 0;
                stage.blocker = None;
            }
        }
        (writes, bytes)
    }

    /// Takes back an O_DIRECT buffer whose writes all completed.
    pub(crate) fn recycle(&mut self, mut buf: AlignedBuf) {
        if self.pool.len() < 64 {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Records a write's outcome.
    pub(crate) fn complete(&mut self, token: u64, result: Result<()>) {
        // Tokens are reused once reaped, and a completed write stays here until the frontier passes
        // it: the write in flight is the one with this token and no result yet.
        if let Some(slot) = self.ops.iter_mut().find(|s| s.token == token && s.result.is_none()) {
            slot.result = Some(result);
        }
        for stage in &mut self.stages {
            if stage.blocker == Some(token) {
                stage.blocker = None;
            }
        }
    }

    /// Advances the frontier over completed writes and moves the entries it made writable into
    /// `ready`, in order. A failed write stops it and sets `failure`.
    pub(crate) fn advance(&mut self, ready: &mut Vec<Entry>) {
        while let Some(front) = self.ops.front() {
            match &front.result {
                None => break,
                Some(Ok(())) if self.failure.is_none() => {
                    self.frontier = front.seq_end;
                    self.ops.pop_front();
                }
                Some(Ok(())) => {
                    self.ops.pop_front();
                }
                Some(Err(e)) => {
                    if self.failure.is_none() {
                        self.failure = Some(e.clone());
                    }
                    self.ops.pop_front();
                }
            }
        }
        while self.entries.front().is_some_and(|e| e.seq_end <= self.frontier) {
            ready.push(self.entries.pop_front().expect("checked"));
            self.unsubmitted = self.unsubmitted.saturating_sub(1);
        }
    }

    /// Segments whose padding can be cut now (every write before their end completed).
    pub(crate) fn due_trims(&mut self) -> Vec<i64> {
        if self.trims.is_empty() {
            return Vec::new();
        }
        let frontier = self.frontier;
        let (due, keep): (Vec<_>, Vec<_>) = self.trims.iter().partition(|(seq, _)| *seq <= frontier);
        self.trims = keep;
        let bases: Vec<i64> = due.into_iter().map(|(_, base)| base).collect();
        self.stages.retain(|s| !bases.contains(&s.segment_base));
        bases
    }

    /// After a failure, once no write is in flight: every entry left is failed and returned, and the
    /// pipeline starts afresh (the caller rolls the log back to the first one).
    pub(crate) fn take_failed(&mut self) -> Option<(Error, Vec<Entry>)> {
        if self.failure.is_none() || !self.ops.is_empty() {
            return None;
        }
        let error = self.failure.take()?;
        let failed: Vec<Entry> = self.entries.drain(..).collect();
        self.unsubmitted = 0;
        self.stages.clear();
        self.trims.clear();
        self.seq_placed = self.frontier;
        Some((error, failed))
    }
}
