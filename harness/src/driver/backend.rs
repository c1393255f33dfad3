//! What differs between the systems a case can run against, behind one trait: the embedded engine
//! ([`super::embedded`]), a Kafka cluster through librdkafka (`super::kafka`), and a backend that
//! does nothing ([`NullSender`], which measures the harness's own per-record cost). Everything
//! else (the case loop in [`super::case`], the worker loop in [`super::worker`], the histograms)
//! is shared, so every backend is measured the same way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use kbench_engine::record::RecordHeader;

use super::ledger::Ledger;
use super::plan::CasePlan;
use crate::metrics::CaseMetrics;
use crate::results::schema::{ConsumerSummary, KafkaSummary, ReplicationSummary};

/// One record as the worker loop builds it.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    pub headers: &'a [RecordHeader],
}

/// What the worker loop needs back with a record's delivery: plain data, no allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    /// The sending thread's sequence number of the record.
    pub seq: u64,
    /// Scheduled send (the actual send in a closed loop), in nanoseconds since the case's epoch
    /// ([`Shared::epoch`]).
    pub due_ns: u64,
    /// Actual send, in nanoseconds since the case's epoch.
    pub sent_ns: u64,
    /// Key + value bytes.
    pub bytes: u64,
    /// Whether the record belongs to the measured phase: decided once, at the send, for all of
    /// its figures (backends that name errors count them by it).
    pub measured: bool,
}

/// A record's outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub token: Token,
    pub ok: bool,
    /// When the backend completed it (the batch's completion, or the delivery report); `None`
    /// when the backend does not say, and the worker's reading is used.
    pub completed_at: Option<Instant>,
}

/// A failed send call.
#[derive(Debug)]
pub(crate) struct SendFailed {
    /// The backend is closed: the thread stops sending.
    pub closed: bool,
}

/// One producer thread's handle on the backend.
pub(crate) trait Sender: Send + 'static {
    /// Sends one record. On failure the backend has counted the error by name where it names
    /// errors (with `token.measured`); the worker counts it in the case's errors.
    fn send(&mut self, record: &Outgoing<'_>, token: Token) -> Result<(), SendFailed>;

    /// Hands completed deliveries to `done`, oldest first where the backend keeps order; with
    /// `wait`, blocks until at least one completes (when any is in flight). Returns how many.
    fn poll(&mut self, wait: bool, done: &mut dyn FnMut(Delivery)) -> usize;

    /// Records sent whose outcome `poll` has not handed over yet.
    fn in_flight(&self) -> usize;
}

/// What every backend of a case shares with the case loop.
#[derive(Clone)]
pub(crate) struct Shared {
    pub metrics: Arc<CaseMetrics>,
    pub phase: Arc<super::phase::Phase>,
    pub stop: Arc<AtomicBool>,
    /// Record ids and acknowledgements, when something will check them (consumers, the audit of a
    /// replicated log).
    pub ledger: Option<Arc<Ledger>>,
    pub epoch: Instant,
}

/// What a backend adds to a case's outcome when it is done.
#[derive(Debug, Default)]
pub(crate) struct BackendReport {
    /// The io backend that really ran (io_uring may fall back); empty when kbench has none.
    pub io_backend_effective: String,
    pub consumers: Option<ConsumerSummary>,
    pub kafka: Option<KafkaSummary>,
    pub replication: Option<ReplicationSummary>,
}

/// A system a case runs against.
pub(crate) trait Backend: Sized {
    /// The per-thread handle.
    type Sender: Sender;

    /// Whether records must carry ids for this plan (consumers, or an audit).
    fn tracks_records(plan: &CasePlan) -> bool;

    /// A sending handle for producer thread `thread`.
    fn sender(&mut self, thread: u32, shared: &Shared) -> anyhow::Result<Self::Sender>;

    /// Measurement starts now.
    fn start_measuring(&mut self) {}

    /// Applies what is due `since` into the measured phase (faults); returns when the next thing
    /// is due, if anything is.
    fn tick(&mut self, since: Duration) -> anyhow::Result<Option<Duration>>;

    /// The consumer group's lag in records, when the case has consumers.
    fn consumer_lag(&self) -> Option<u64>;

    /// The producer threads have stopped: returns once every record sent has its outcome
    /// (close or flush the producers).
    fn stop_producing(&mut self) -> anyhow::Result<()>;

    /// After the measured phase: heal faults, let consumers and replicas catch up, audit, close.
    /// `measured` is the measured phase's length (the consumers' rates).
    fn finish(self, shared: &Shared, measured: Duration) -> anyhow::Result<BackendReport>;
}

/// A backend that completes every send at once and does nothing else: the worker loop against it
/// costs what the harness costs per record.
#[derive(Debug)]
pub(crate) struct NullSender {
    done: VecDeque<Token>,
    epoch: Instant,
}

impl NullSender {
    /// A backend whose deliveries complete at their send instants (on the case's `epoch`).
    pub(crate) fn new(epoch: Instant) -> Self {
        NullSender { done: VecDeque::new(), epoch }
    }
}

impl Sender for NullSender {
    #[inline]
    fn send(&mut self, record: &Outgoing<'_>, token: Token) -> Result<(), SendFailed> {
        std::hint::black_box(record);
        self.done.push_back(token);
        Ok(())
    }

    #[inline]
    fn poll(&mut self, _wait: bool, done: &mut dyn FnMut(Delivery)) -> usize {
        let n = self.done.len();
        for token in self.done.drain(..) {
            // A fresh instant per record, as deliveries from different batches have: the worker's
            // conversion back to nanoseconds is then paid per record, as it is at its dearest.
            let completed_at = self.epoch + Duration::from_nanos(token.sent_ns);
            done(Delivery { token, ok: true, completed_at: Some(completed_at) });
        }
        n
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }
}

/// How long the harness-cost probe runs the worker loop against [`NullSender`].
pub(crate) const PROBE_RECORDS: u64 = 200_000;

/// Upper bound on the probe's wall time (a slow host stops early; the figure is per record).
pub(crate) const PROBE_MAX: Duration = Duration::from_millis(300);
