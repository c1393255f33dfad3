//! Per-batch stage timings, reported to an optional observer (the harness's metrics).

/// What one batch went through between the accumulator and the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchStats {
    /// Partition of the batch.
    pub partition: u32,
    /// Records in the batch.
    pub records: u32,
    /// Size of the uncompressed records section in bytes.
    pub uncompressed_bytes: usize,
    /// Size of the batch's records section as written (compressed, or equal to uncompressed).
    pub compressed_bytes: usize,
    /// From the batch's creation (first record) to its drain by the sender: linger plus waiting.
    pub queue_ns: u64,
    /// Time spent closing the batch: compression plus header and CRC.
    pub compress_ns: u64,
    /// From hand-off to the log until its write completed.
    pub write_ns: u64,
    /// fsync time the batch waited for (0 when no flush policy made one due).
    pub sync_ns: u64,
    /// Whether the log failed the batch.
    pub failed: bool,
}

/// Receives every batch's [`BatchStats`] on the log's I/O thread, once the batch completed.
pub trait BatchObserver: Send + Sync + std::fmt::Debug {
    /// Called once per batch; must be cheap and must not block.
    fn on_batch(&self, stats: &BatchStats);
}
