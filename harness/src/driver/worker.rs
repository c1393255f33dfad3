//! One producer thread of a case: send records (closed loop, or open loop on a rate schedule), and
//! record each delivery's latency from the scheduled and the actual send.
//!
//! Deliveries are read from the futures `send` returns, oldest first, between sends: no callback box
//! per record and no cross-thread recording, so the harness adds little to what it measures. The
//! latency is taken from the batch's completion instant, not from when the thread noticed it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kbench_engine::producer::{DeliveryFuture, Producer, ProducerRecord};
use kbench_engine::record::RecordHeader;

use super::keys::KeyGenerator;
use super::ledger::{ID_HEADER, Ledger, RecordId};
use super::payload::PayloadGenerator;
use super::phase::Phase;
use crate::metrics::{CaseMetrics, RateSchedule, Stage, StageRecorder};

/// Everything one thread needs.
pub(crate) struct Worker {
    pub producer: Producer,
    pub metrics: Arc<CaseMetrics>,
    pub phase: Arc<Phase>,
    pub stop: Arc<AtomicBool>,
    pub keys: KeyGenerator,
    pub values: PayloadGenerator,
    pub headers: Vec<RecordHeader>,
    pub schedule: Option<RateSchedule>,
    /// Records this thread sends in the measured phase when the workload gives a count.
    pub quota: Option<u64>,
    pub sync: bool,
    pub core: Option<core_affinity::CoreId>,
    /// With consumers: the delivery ledger, this thread's number and the case's epoch (record ids).
    pub ledger: Option<(Arc<Ledger>, u32, Instant)>,
}

/// What a thread reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerReport {
    /// Sends issued in the measured phase.
    pub sent: u64,
    /// How far behind its schedule the thread was when it stopped (open loop).
    pub lag: Duration,
}

struct InFlight {
    future: DeliveryFuture,
    seq: u64,
    due: Instant,
    sent: Instant,
    bytes: u64,
}

impl Worker {
    pub(crate) fn run(mut self) -> WorkerReport {
        if let Some(core) = self.core {
            core_affinity::set_for_current(core);
        }
        let mut rec = self.metrics.recorder();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut report = WorkerReport::default();
        let mut seq = 0u64;
        let mut headers = self.headers.clone();
        while !self.stop.load(Ordering::Relaxed) {
            if self.quota.is_some_and(|q| report.sent >= q) {
                break;
            }
            let due = match self.schedule.as_ref().map(RateSchedule::next_due) {
                Some(next) => {
                    // Poll deliveries while early, so waiting does not delay their recording.
                    while Instant::now() + Duration::from_micros(50) < next && !in_flight.is_empty() {
                        if !self.collect(&mut in_flight, &mut rec, false) {
                            break;
                        }
                    }
                    self.schedule.as_mut().map_or_else(Instant::now, RateSchedule::wait_until_due)
                }
                None => Instant::now(),
            };
            let key = self.keys.next();
            let value = self.values.next();
            let bytes = (value.len() + key.map_or(0, <[u8]>::len)) as u64;
            if let Some((_, thread, epoch)) = &self.ledger {
                let id = RecordId {
                    thread: *thread,
                    seq,
                    scheduled_ns: due.saturating_duration_since(*epoch).as_nanos() as u64,
                };
                headers.truncate(self.headers.len());
                headers.push(RecordHeader { key: ID_HEADER.into(), value: Some(id.encode()) });
            }
            let record = ProducerRecord { key, value: Some(value), headers: &headers, ..ProducerRecord::default() };
            let sent = Instant::now();
            let outcome = self.producer.send(&record);
            let measured = self.phase.is_measuring(due);
            if measured {
                rec.record(Stage::Send, sent.elapsed().as_nanos() as u64);
                report.sent += 1;
            }
            seq += 1;
            match outcome {
                Ok(future) if self.sync => {
                    let entry = InFlight { future, seq: seq - 1, due, sent, bytes };
                    self.finish(entry, &mut rec);
                }
                Ok(future) => {
                    in_flight.push_back(InFlight { future, seq: seq - 1, due, sent, bytes });
                    self.collect(&mut in_flight, &mut rec, false);
                }
                Err(e) => {
                    if measured {
                        self.metrics.add_errors(1);
                    }
                    if matches!(e, kbench_engine::Error::Closed { .. }) {
                        break;
                    }
                }
            }
        }
        if let Some(s) = &self.schedule {
            report.lag = s.lag(Instant::now());
        }
        // Every record sent gets its outcome recorded, however long the log takes.
        while !in_flight.is_empty() {
            self.collect(&mut in_flight, &mut rec, true);
        }
        report
    }

    /// Records the deliveries that completed, oldest first; with `wait`, blocks for the oldest.
    /// Returns whether anything was collected.
    fn collect(&self, in_flight: &mut VecDeque<InFlight>, rec: &mut StageRecorder, wait: bool) -> bool {
        let mut any = false;
        while let Some(head) = in_flight.front() {
            if !(wait || head.future.is_done()) {
                break;
            }
            let entry = in_flight.pop_front().expect("front exists");
            self.finish(entry, rec);
            any = true;
            if wait {
                break;
            }
        }
        any
    }

    fn finish(&self, entry: InFlight, rec: &mut StageRecorder) {
        let InFlight { future, seq, due, sent, bytes } = entry;
        let completed_at = future.completed_at();
        let outcome = future.get();
        if let (Ok(_), Some((ledger, thread, _))) = (&outcome, &self.ledger) {
            ledger.acknowledged(*thread, seq);
        }
        if !self.phase.is_measuring(due) {
            return;
        }
        match outcome {
            Ok(_) => {
                let done = completed_at.unwrap_or_else(Instant::now);
                rec.record(Stage::EndToEnd, done.saturating_duration_since(due).as_nanos() as u64);
                rec.record(Stage::EndToEndActual, done.saturating_duration_since(sent).as_nanos() as u64);
                rec.add_records(1, bytes);
            }
            Err(_) => self.metrics.add_errors(1),
        }
    }
}
