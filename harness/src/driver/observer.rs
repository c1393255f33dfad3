//! Per-batch stage timings from the engine's I/O thread into the case's histograms.

use std::sync::{Arc, Mutex};

use kbench_engine::producer::{BatchObserver, BatchStats};

use super::phase::Phase;
use crate::metrics::{CaseMetrics, Stage, StageRecorder};

/// Records queue, compression, write and sync time and batch sizes of measured batches.
///
/// The engine calls it from one I/O thread per topic, so the mutex is never contended; it only makes
/// the recorder `Sync`.
pub(crate) struct StageObserver {
    metrics: Arc<CaseMetrics>,
    phase: Arc<Phase>,
    recorder: Mutex<StageRecorder>,
}

impl std::fmt::Debug for StageObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageObserver").finish_non_exhaustive()
    }
}

impl StageObserver {
    pub(crate) fn new(metrics: Arc<CaseMetrics>, phase: Arc<Phase>) -> Self {
        let recorder = Mutex::new(metrics.recorder());
        StageObserver { metrics, phase, recorder }
    }
}

impl StageObserver {
    /// Hands what was recorded over to the collector (the last batches of a case).
    pub(crate) fn hand_over(&self) {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner()).hand_over();
    }
}

impl BatchObserver for StageObserver {
    fn on_batch(&self, s: &BatchStats) {
        // A batch belongs to the measured phase when it completes in it: batches straddle the boundary.
        if !self.phase.is_measuring(std::time::Instant::now()) {
            return;
        }
        let mut rec = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        rec.record(Stage::Queue, s.queue_ns);
        rec.record(Stage::Compress, s.compress_ns);
        rec.record(Stage::Write, s.write_ns);
        if s.sync_ns > 0 {
            rec.record(Stage::Sync, s.sync_ns);
        }
        rec.record(Stage::BatchRecords, u64::from(s.records));
        rec.record(Stage::BatchBytes, s.uncompressed_bytes as u64);
        if s.uncompressed_bytes > 0 {
            rec.record(
                Stage::CompressionRatio,
                (s.compressed_bytes as u64 * 1000).div_ceil(s.uncompressed_bytes as u64),
            );
        }
        rec.maybe_hand_over();
        drop(rec);
        self.metrics.add_compression(s.uncompressed_bytes as u64, s.compressed_bytes as u64);
    }
}
