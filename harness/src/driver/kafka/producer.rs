//! The producer side on librdkafka: one thread per `producer.threads` calling `send` on a shared or
//! per-thread producer (closed loop, or open loop on the same rate schedule as the embedded engine),
//! and the delivery callback recording latency from the scheduled and the actual send into the
//! case's histograms.
//!
//! librdkafka hands each delivery report to the producer's polling thread with the record's opaque
//! box: the completion instant is taken there, as soon as librdkafka reports it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbench_engine::record::RecordHeader;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use super::errors::{ClientErrors, Seen};
use crate::driver::keys::KeyGenerator;
use crate::driver::ledger::{ID_HEADER, Ledger, RecordId};
use crate::driver::payload::PayloadGenerator;
use crate::driver::phase::Phase;
use crate::driver::worker::WorkerReport;
use crate::metrics::{CaseMetrics, RateSchedule, Stage, StageRecorder};

/// A librdkafka producer with kbench's callbacks.
pub(crate) type KafkaProducer = ThreadedProducer<ProducerSide>;

/// Wakes a thread that waits for its own deliveries (`send: sync`).
#[derive(Debug)]
pub(crate) struct Completions {
    done: AtomicU64,
    thread: std::thread::Thread,
}

/// What a delivery report needs of its record.
#[derive(Debug)]
pub(crate) struct Sent {
    thread: u32,
    seq: u64,
    due: Instant,
    sent: Instant,
    bytes: u64,
    completions: Option<Arc<Completions>>,
}

/// The callbacks of one producer.
pub(crate) struct ProducerSide {
    metrics: Arc<CaseMetrics>,
    phase: Arc<Phase>,
    ledger: Option<Arc<Ledger>>,
    errors: Arc<ClientErrors>,
    /// Used by the producer's one polling thread: never contended.
    recorder: Mutex<StageRecorder>,
}

impl ProducerSide {
    pub(crate) fn new(
        metrics: Arc<CaseMetrics>,
        phase: Arc<Phase>,
        ledger: Option<Arc<Ledger>>,
        errors: Arc<ClientErrors>,
    ) -> Self {
        let recorder = Mutex::new(metrics.recorder());
        ProducerSide { metrics, phase, ledger, errors, recorder }
    }
}

impl ClientContext for ProducerSide {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::errors::forward_log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        self.errors.statistics(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log::info!("librdkafka producer: {error}: {reason}");
        if self.phase.is_measuring(Instant::now()) {
            self.errors.count(Seen::Client, &error);
        }
    }
}

impl ProducerContext for ProducerSide {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, s: Box<Sent>) {
        let done = Instant::now();
        let measured = self.phase.is_measuring(s.due);
        match result {
            Ok(_) => {
                if let Some(ledger) = &self.ledger {
                    ledger.acknowledged(s.thread, s.seq);
                }
                if measured {
                    let mut rec = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
                    rec.record(Stage::EndToEnd, done.saturating_duration_since(s.due).as_nanos() as u64);
                    rec.record(Stage::EndToEndActual, done.saturating_duration_since(s.sent).as_nanos() as u64);
                    rec.add_records(1, s.bytes);
                }
            }
            Err((e, _)) => {
                if measured {
                    self.metrics.add_errors(1);
                    self.errors.count(Seen::Delivery, e);
                }
            }
        }
        if let Some(c) = &s.completions {
            c.done.fetch_add(1, Ordering::Release);
            c.thread.unpark();
        }
    }
}

/// One sending thread.
pub(crate) struct KafkaWorker {
    pub producer: Arc<KafkaProducer>,
    pub topic: String,
    pub thread: u32,
    pub metrics: Arc<CaseMetrics>,
    pub phase: Arc<Phase>,
    pub stop: Arc<AtomicBool>,
    pub errors: Arc<ClientErrors>,
    pub keys: KeyGenerator,
    pub values: PayloadGenerator,
    pub headers: Vec<RecordHeader>,
    pub schedule: Option<RateSchedule>,
    pub quota: Option<u64>,
    pub sync: bool,
    /// `max.block.ms`: how long `send` retries while librdkafka's queue is full.
    pub max_block: Duration,
    pub core: Option<core_affinity::CoreId>,
    /// With consumers: stamp the id header (the case's epoch dates the schedule).
    pub ledger_epoch: Option<Instant>,
}

impl KafkaWorker {
    pub(crate) fn run(mut self) -> WorkerReport {
        if let Some(core) = self.core {
            core_affinity::set_for_current(core);
        }
        let mut rec = self.metrics.recorder();
        let mut report = WorkerReport::default();
        let completions =
            self.sync.then(|| Arc::new(Completions { done: AtomicU64::new(0), thread: std::thread::current() }));
        let mut accepted = 0u64;
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            if self.quota.is_some_and(|q| report.sent >= q) {
                break;
            }
            let due = self.schedule.as_mut().map_or_else(Instant::now, RateSchedule::wait_until_due);
            let mut headers = (!self.headers.is_empty() || self.ledger_epoch.is_some())
                .then(|| OwnedHeaders::new_with_capacity(self.headers.len() + 1));
            if let Some(h) = headers.as_mut() {
                for header in &self.headers {
                    *h = std::mem::replace(h, OwnedHeaders::new())
                        .insert(Header { key: &header.key, value: header.value.as_deref() });
                }
                if let Some(epoch) = self.ledger_epoch {
                    let id = RecordId {
                        thread: self.thread,
                        seq,
                        scheduled_ns: due.saturating_duration_since(epoch).as_nanos() as u64,
                    };
                    *h = std::mem::replace(h, OwnedHeaders::new())
                        .insert(Header { key: ID_HEADER, value: Some(&id.encode()) });
                }
            }
            let key = self.keys.next();
            let value = self.values.next();
            let bytes = (value.len() + key.map_or(0, <[u8]>::len)) as u64;
            let sent = Instant::now();
            let opaque =
                Box::new(Sent { thread: self.thread, seq, due, sent, bytes, completions: completions.clone() });
            let mut record = BaseRecord::with_opaque_to(&self.topic, opaque).payload(value);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(h) = headers {
                record = record.headers(h);
            }
            // As Java's send blocks up to max.block.ms for buffer space, retry while the queue is full.
            let outcome = loop {
                match self.producer.send(record) {
                    Ok(()) => break Ok(()),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if sent.elapsed() < self.max_block && !self.stop.load(Ordering::Relaxed) =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err((e, _)) => break Err(e),
                }
            };
            let measured = self.phase.is_measuring(due);
            if measured {
                rec.record(Stage::Send, sent.elapsed().as_nanos() as u64);
                report.sent += 1;
            }
            seq += 1;
            match outcome {
                Ok(()) => accepted += 1,
                Err(e) => {
                    if measured {
                        self.metrics.add_errors(1);
                        self.errors.count(Seen::Send, &e);
                    }
                }
            }
            if let Some(c) = &completions {
                // send().get(): librdkafka reports every accepted record by delivery.timeout.ms.
                while c.done.load(Ordering::Acquire) < accepted {
                    std::thread::park_timeout(Duration::from_millis(10));
                }
            }
        }
        if let Some(s) = &self.schedule {
            report.lag = s.lag(Instant::now());
        }
        report
    }
}
