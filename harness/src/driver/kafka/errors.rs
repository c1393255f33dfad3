//! What went wrong on the client side of a case, counted by librdkafka's error name: failed send
//! calls and deliveries (which are also the summary's `errors`), errors librdkafka reports about the
//! cluster (a broker down, a connection refused), consumer errors, and request retries, errors and
//! timeouts from librdkafka's statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;

use crate::results::schema::KafkaSummary;

/// Where an error was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The send call failed (queue full past max.block.ms, record too large, ...).
    Send,
    /// The delivery report carried an error (message timed out, request refused, ...).
    Delivery,
    /// librdkafka's error callback: the cluster misbehaves, no record is lost by it alone.
    Client,
    /// A consumer's poll or commit failed.
    Consumer,
}

/// Request counters of one client's brokers, from its statistics.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    retries: u64,
    errors: u64,
    timeouts: u64,
}

impl Requests {
    fn from(s: &Statistics) -> Requests {
        s.brokers.values().fold(Requests::default(), |r, b| Requests {
            retries: r.retries + b.txretries,
            errors: r.errors + b.txerrs + b.rxerrs,
            timeouts: r.timeouts + b.req_timeouts,
        })
    }
}

/// Errors of one case, shared by every client of it.
#[derive(Debug, Default)]
pub(crate) struct ClientErrors {
    counts: Mutex<BTreeMap<(u8, String), u64>>,
    /// The latest statistics of each client, by librdkafka handle name.
    latest: Mutex<HashMap<String, Requests>>,
    /// Their sum when measurement started.
    baseline: Mutex<Requests>,
}

/// librdkafka's own log lines: its errors (a refused connection, typically during a fault) as
/// warnings, since the case goes on and counts them; the rest only at info level.
pub(crate) fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            log::warn!("librdkafka: {facility}: {message}");
        }
        _ => log::info!("librdkafka: {facility}: {message}"),
    }
}

/// librdkafka's name of an error (`MessageTimedOut`), or its text when it has no code.
pub(crate) fn error_name(e: &KafkaError) -> String {
    e.rdkafka_error_code().map_or_else(|| e.to_string(), |c| format!("{c:?}"))
}

impl ClientErrors {
    /// Counts one error (the caller decides whether it belongs to the measured phase).
    pub(crate) fn count(&self, seen: Seen, e: &KafkaError) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry((seen as u8, error_name(e))).or_default() += 1;
    }

    /// Takes in a client's statistics.
    pub(crate) fn statistics(&self, s: &Statistics) {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).insert(s.name.clone(), Requests::from(s));
    }

    fn requests(&self) -> Requests {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).values().fold(Requests::default(), |a, r| Requests {
            retries: a.retries + r.retries,
            errors: a.errors + r.errors,
            timeouts: a.timeouts + r.timeouts,
        })
    }

    /// Measurement starts: what was counted so far belonged to the warmup.
    pub(crate) fn start_measuring(&self) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.baseline.lock().unwrap_or_else(|p| p.into_inner()) = self.requests();
    }

    /// The counts, into the summary's `kafka` object.
    pub(crate) fn fill(&self, k: &mut KafkaSummary) {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for ((seen, name), n) in counts.iter() {
            let map = match *seen {
                s if s == Seen::Send as u8 => &mut k.send_errors,
                s if s == Seen::Delivery as u8 => &mut k.delivery_errors,
                s if s == Seen::Client as u8 => &mut k.client_errors,
                _ => &mut k.consumer_errors,
            };
            map.insert(name.clone(), *n);
        }
        let (now, base) = (self.requests(), *self.baseline.lock().unwrap_or_else(|p| p.into_inner()));
        k.request_retries = now.retries.saturating_sub(base.retries);
        k.request_errors = now.errors.saturating_sub(base.errors);
        k.request_timeouts = now.timeouts.saturating_sub(base.timeouts);
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaErrorCode;

    use super::*;

    #[test]
    fn counts_by_place_and_name_and_forgets_the_warmup() {
        let e = ClientErrors::default();
        e.count(Seen::Delivery, &KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
        e.start_measuring();
        for _ in 0..3 {
            e.count(Seen::Delivery, &KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
        }
        e.count(Seen::Client, &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown));
        e.count(Seen::Send, &KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        let mut k = KafkaSummary::default();
        e.fill(&mut k);
        assert_eq!(k.delivery_errors.get("MessageTimedOut"), Some(&3));
        assert_eq!(k.client_errors.get("AllBrokersDown"), Some(&1));
        assert_eq!(k.send_errors.get("QueueFull"), Some(&1));
        assert!(k.consumer_errors.is_empty());
    }
}
