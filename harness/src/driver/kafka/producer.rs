//! The producer side on librdkafka: a [`Sender`] per producer thread over a shared or per-thread
//! librdkafka producer, and the delivery callback.
//!
//! librdkafka hands each delivery report to the producer's polling thread with the record's
//! opaque box; the callback takes the completion instant there and queues the outcome to the
//! thread that sent the record, which records it in its own histograms like any backend's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use super::errors::{ClientErrors, Seen};
use crate::driver::backend::{Delivery, Outgoing, SendFailed, Sender, Token};
use crate::driver::phase::Phase;

/// A librdkafka producer with kbench's callbacks.
pub(crate) type KafkaProducer = ThreadedProducer<ProducerSide>;

/// One sending thread's mailbox of delivery outcomes.
#[derive(Debug)]
pub(crate) struct Outcomes {
    queue: SegQueue<Delivery>,
    /// The thread parks on it while it waits for a delivery.
    waiting: AtomicBool,
    thread: std::thread::Thread,
}

/// What a delivery report needs of its record.
#[derive(Debug)]
pub(crate) struct Sent {
    token: Token,
    outcomes: Arc<Outcomes>,
}

/// The callbacks of one producer.
pub(crate) struct ProducerSide {
    phase: Arc<Phase>,
    errors: Arc<ClientErrors>,
}

impl ProducerSide {
    pub(crate) fn new(phase: Arc<Phase>, errors: Arc<ClientErrors>) -> Self {
        ProducerSide { phase, errors }
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
        let completed_at = Some(Instant::now());
        let ok = match result {
            Ok(_) => true,
            Err((e, _)) => {
                if s.token.measured {
                    self.errors.count(Seen::Delivery, e);
                }
                false
            }
        };
        s.outcomes.queue.push(Delivery { token: s.token, ok, completed_at });
        if s.outcomes.waiting.load(Ordering::SeqCst) {
            s.outcomes.thread.unpark();
        }
    }
}

/// One producer thread's handle on a librdkafka producer.
pub(crate) struct KafkaSender {
    producer: Arc<KafkaProducer>,
    topic: String,
    errors: Arc<ClientErrors>,
    stop: Arc<AtomicBool>,
    /// `max.block.ms`: how long `send` retries while librdkafka's queue is full.
    max_block: Duration,
    /// Made on the first send, on the thread that sends (the one to wake).
    outcomes: Option<Arc<Outcomes>>,
    sent: u64,
    done: u64,
}

impl KafkaSender {
    pub(crate) fn new(
        producer: Arc<KafkaProducer>,
        topic: String,
        errors: Arc<ClientErrors>,
        stop: Arc<AtomicBool>,
        max_block: Duration,
    ) -> Self {
        KafkaSender { producer, topic, errors, stop, max_block, outcomes: None, sent: 0, done: 0 }
    }
}

impl Sender for KafkaSender {
    fn send(&mut self, record: &Outgoing<'_>, token: Token) -> Result<(), SendFailed> {
        let outcomes = self.outcomes.get_or_insert_with(|| {
            Arc::new(Outcomes {
                queue: SegQueue::new(),
                waiting: AtomicBool::new(false),
                thread: std::thread::current(),
            })
        });
        let headers = (!record.headers.is_empty()).then(|| {
            record.headers.iter().fold(OwnedHeaders::new_with_capacity(record.headers.len()), |h, header| {
                h.insert(Header { key: &header.key, value: header.value.as_deref() })
            })
        });
        let opaque = Box::new(Sent { token, outcomes: Arc::clone(outcomes) });
        let mut r = BaseRecord::with_opaque_to(&self.topic, opaque).payload(record.value);
        if let Some(k) = record.key {
            r = r.key(k);
        }
        if let Some(h) = headers {
            r = r.headers(h);
        }
        // As Java's send blocks up to max.block.ms for buffer space, retry while the queue is full.
        loop {
            match self.producer.send(r) {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if token.sent.elapsed() < self.max_block && !self.stop.load(Ordering::Relaxed) =>
                {
                    r = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => {
                    if token.measured {
                        self.errors.count(Seen::Send, &e);
                    }
                    return Err(SendFailed { closed: false });
                }
            }
        }
    }

    fn poll(&mut self, wait: bool, done: &mut dyn FnMut(Delivery)) -> usize {
        let Some(outcomes) = self.outcomes.as_ref() else { return 0 };
        let mut n = 0;
        loop {
            while let Some(d) = outcomes.queue.pop() {
                done(d);
                n += 1;
            }
            if n > 0 || !wait || self.sent == self.done {
                break;
            }
            // librdkafka reports every accepted record by delivery.timeout.ms.
            outcomes.waiting.store(true, Ordering::SeqCst);
            if outcomes.queue.is_empty() {
                std::thread::park_timeout(Duration::from_millis(10));
            }
            outcomes.waiting.store(false, Ordering::SeqCst);
        }
        self.done += n as u64;
        n
    }

    fn in_flight(&self) -> usize {
        (self.sent - self.done) as usize
    }
}
