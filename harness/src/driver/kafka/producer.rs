//! The producer side on librdkafka: a [`Sender`] per producer thread over a shared or per-thread
//! librdkafka producer, and the delivery callback.
//!
//! Who polls librdkafka (and so runs its delivery callbacks): in a closed loop the sending threads
//! themselves, between sends, as librdkafka's own tools do (kcat calls `rd_kafka_poll` after each
//! produce), so no third busy thread competes for the cores with the sender and librdkafka's
//! broker thread; in an open loop, where a sending thread sleeps until its next record is due, a
//! polling thread of kbench's ([`Poller`], named `producer pollin` as rdkafka's ThreadedProducer
//! names its own), so that a report is taken the moment librdkafka has it, not when the sender
//! wakes.
//!
//! The delivery report carries the record's opaque, a number: the sending thread's index and the
//! record's slot in that thread's table of pending tokens (no allocation per record). The callback
//! takes the completion instant and queues the slot and outcome to the thread that sent the
//! record, which looks its token up and records it in its own histograms like any backend's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use slab::Slab;

use super::errors::{ClientErrors, Seen};
use crate::driver::backend::{Delivery, Outgoing, SendFailed, Sender, Token};
use crate::driver::phase::Phase;

/// A librdkafka producer with kbench's callbacks.
pub(crate) type KafkaProducer = BaseProducer<ProducerSide>;

/// In a closed loop, a sending thread polls librdkafka once per this many sends (a poll without a
/// timeout takes one event: a batch of delivery reports), and whenever it waits for outcomes.
const POLL_EVERY: u32 = 16;

/// An open loop's polling thread for one producer: serves librdkafka's events (delivery reports,
/// errors, statistics) as they come until dropped.
pub(crate) struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    /// Starts polling `producer`.
    pub(crate) fn start(producer: Arc<KafkaProducer>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new().name("producer pollin".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    producer.poll(Duration::from_millis(10));
                }
            })?
        };
        Ok(Poller { stop, thread: Some(thread) })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bits of a delivery opaque that hold the slot; the sending thread's index is above them.
const SLOT_BITS: u32 = 40;

/// What the delivery callback learns of one record: its slot in the sender's table and the outcome.
#[derive(Debug)]
struct Done {
    slot: usize,
    error: Option<KafkaError>,
    completed_at: Instant,
}

/// One sending thread's mailbox of delivery outcomes.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    queue: SegQueue<Done>,
    waiting: AtomicBool,
    /// The sending thread, to wake when it waits for outcomes; set on its first send.
    thread: OnceLock<std::thread::Thread>,
}

/// The callbacks of one librdkafka producer: a mailbox per sending thread.
pub(crate) struct ProducerSide {
    phase: Arc<Phase>,
    errors: Arc<ClientErrors>,
    mailboxes: Vec<Arc<Outcomes>>,
}

impl ProducerSide {
    /// Callbacks for a producer that threads `0..threads` may send through.
    pub(crate) fn new(phase: Arc<Phase>, errors: Arc<ClientErrors>, threads: u32) -> Self {
        ProducerSide { phase, errors, mailboxes: (0..threads).map(|_| Arc::default()).collect() }
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
    /// The sending thread's index and the record's slot in its table: no allocation per record and
    /// nothing shared between the threads but the mailbox queue.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let completed_at = Instant::now();
        let Some(mailbox) = self.mailboxes.get(opaque >> SLOT_BITS) else { return };
        let error = result.as_ref().err().map(|(e, _)| e.clone());
        mailbox.queue.push(Done { slot: opaque & ((1 << SLOT_BITS) - 1), error, completed_at });
        if mailbox.waiting.load(Ordering::SeqCst)
            && let Some(t) = mailbox.thread.get()
        {
            t.unpark();
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
    /// This thread's index among the producer's senders (the high bits of each opaque).
    thread: usize,
    mailbox: Arc<Outcomes>,
    /// The tokens of records librdkafka has not reported yet, by slot.
    pending: Slab<Token>,
    /// Whether this thread polls librdkafka (closed loop; otherwise a [`Poller`] does).
    polls: bool,
    /// Sends since this thread last polled.
    since_poll: u32,
}

impl KafkaSender {
    pub(crate) fn new(
        producer: Arc<KafkaProducer>,
        thread: u32,
        topic: String,
        errors: Arc<ClientErrors>,
        stop: Arc<AtomicBool>,
        max_block: Duration,
        polls: bool,
    ) -> Self {
        let mailbox = Arc::clone(&producer.context().mailboxes[thread as usize]);
        KafkaSender {
            producer,
            topic,
            errors,
            stop,
            max_block,
            thread: thread as usize,
            mailbox,
            pending: Slab::new(),
            polls,
            since_poll: 0,
        }
    }
}

impl Sender for KafkaSender {
    fn send(&mut self, record: &Outgoing<'_>, token: Token) -> Result<(), SendFailed> {
        if self.mailbox.thread.get().is_none() {
            let _ = self.mailbox.thread.set(std::thread::current());
        }
        let headers = (!record.headers.is_empty()).then(|| {
            record.headers.iter().fold(OwnedHeaders::new_with_capacity(record.headers.len()), |h, header| {
                h.insert(Header { key: &header.key, value: header.value.as_deref() })
            })
        });
        let slot = self.pending.insert(token);
        let opaque = (self.thread << SLOT_BITS) | slot;
        let mut r = BaseRecord::with_opaque_to(&self.topic, opaque).payload(record.value);
        if let Some(k) = record.key {
            r = r.key(k);
        }
        if let Some(h) = headers {
            r = r.headers(h);
        }
        // max.block.ms counts from the first time librdkafka's queue refused the record.
        let mut blocked_since: Option<Instant> = None;
        loop {
            match self.producer.send(r) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if blocked_since.get_or_insert_with(Instant::now).elapsed() < self.max_block
                        && !self.stop.load(Ordering::Relaxed) =>
                {
                    r = back;
                    // The queue drains as delivery reports are served: serve them if this thread
                    // is the one that polls, else give the poller a moment.
                    if self.polls {
                        // rdkafka's poll returns at its timeout, not at the first event: keep it short.
                        self.producer.poll(Duration::from_micros(50));
                    } else {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                Err((e, _)) => {
                    self.pending.remove(slot);
                    if token.measured {
                        self.errors.count(Seen::Send, &e);
                    }
                    return Err(SendFailed { closed: false });
                }
            }
        }
    }

    fn poll(&mut self, wait: bool, done: &mut dyn FnMut(Delivery)) -> usize {
        let mut n = 0;
        if self.polls {
            self.since_poll += 1;
            if self.since_poll >= POLL_EVERY || (wait && self.mailbox.queue.is_empty()) {
                self.since_poll = 0;
                self.producer.poll(Duration::ZERO);
            }
        }
        loop {
            while let Some(d) = self.mailbox.queue.pop() {
                let Some(token) = self.pending.try_remove(d.slot) else { continue };
                if let Some(e) = &d.error
                    && token.measured
                {
                    self.errors.count(Seen::Delivery, e);
                }
                done(Delivery { token, ok: d.error.is_none(), completed_at: Some(d.completed_at) });
                n += 1;
            }
            if n > 0 || !wait || self.pending.is_empty() {
                break;
            }
            // librdkafka reports every accepted record by delivery.timeout.ms.
            if self.polls {
                // rdkafka's poll serves events until its timeout ends, so keep it short: another
                // thread sharing the producer may have served this thread's reports meanwhile.
                self.producer.poll(Duration::from_millis(1));
                continue;
            }
            self.mailbox.waiting.store(true, Ordering::SeqCst);
            if self.mailbox.queue.is_empty() {
                std::thread::park_timeout(Duration::from_millis(10));
            }
            self.mailbox.waiting.store(false, Ordering::SeqCst);
        }
        n
    }

    fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
