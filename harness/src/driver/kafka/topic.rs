//! The case's topic on a real cluster: used as it is when it exists with the workload's partition
//! count, created (with the workload's non-default topic configs and the brokers' default
//! replication factor) when it does not. This is the case's first contact with the cluster: a
//! refused TLS handshake or SASL authentication fails the case at once, with librdkafka's error,
//! rather than after the metadata timeout.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// How long cluster metadata and topic creation may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long one metadata request may take before kbench looks at what librdkafka reported.
const ATTEMPT: Duration = Duration::from_millis(500);

/// Errors no retry can mend: the TLS handshake or SASL authentication was refused.
const REFUSED: &[RDKafkaErrorCode] = &[
    RDKafkaErrorCode::SSL,
    RDKafkaErrorCode::Authentication,
    RDKafkaErrorCode::SaslAuthenticationFailed,
    RDKafkaErrorCode::UnsupportedSASLMechanism,
    RDKafkaErrorCode::IllegalSASLState,
];

/// How long every broker may stay unreachable (librdkafka's AllBrokersDown, with no metadata
/// since) before the case fails: a few reconnection attempts (`reconnect.backoff.ms` starts at
/// 100 ms), not the whole [`TIMEOUT`].
const UNREACHABLE_GRACE: Duration = Duration::from_secs(2);

/// The metadata client's context: librdkafka's log, the first refusal it reported, and since when
/// all brokers have been down (errors are events on the client's main queue, served by polling
/// it: a producer's `poll`).
#[derive(Default)]
struct Watch {
    refused: Mutex<Option<String>>,
    /// When librdkafka first said every broker was down, and its last word on a connection.
    down: Mutex<Option<(Instant, String)>>,
    transport: Mutex<Option<String>>,
}

impl ClientContext for Watch {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        super::errors::forward_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let named = || format!("{} ({reason})", super::errors::error_name(&error));
        if code.is_some_and(|c| REFUSED.contains(&c)) {
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            refused.get_or_insert_with(named);
        } else if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
            down.get_or_insert_with(|| (Instant::now(), named()));
        } else {
            if code == Some(RDKafkaErrorCode::BrokerTransportFailure) {
                *self.transport.lock().unwrap_or_else(|p| p.into_inner()) = Some(named());
            }
            log::info!("librdkafka: {error}: {reason}");
        }
    }
}

impl Watch {
    /// Every broker has been unreachable for [`UNREACHABLE_GRACE`]: what librdkafka said.
    fn unreachable(&self) -> Option<String> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let (since, what) = down.as_ref().filter(|(since, _)| since.elapsed() >= UNREACHABLE_GRACE)?;
        let last = self.transport.lock().unwrap_or_else(|p| p.into_inner());
        Some(format!(
            "librdkafka: {what} for {:.1} s{}",
            since.elapsed().as_secs_f64(),
            last.as_ref().map_or(String::new(), |t| format!("; last: {t}"))
        ))
    }
}

impl ProducerContext for Watch {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// A client that sends nothing: it reads metadata and reports librdkafka's errors.
type Probe = BaseProducer<Watch>;

/// Makes sure `topic` exists with `partitions` partitions.
pub(crate) fn ensure(
    common: &BTreeMap<String, String>,
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    configs: &BTreeMap<String, String>,
    replication_factor: Option<i32>,
) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    for (k, v) in common {
        config.set(k, v);
    }
    config.set("bootstrap.servers", bootstrap);
    let probe: Probe = config.create_with_context(Watch::default()).context("creating a Kafka client")?;
    match partition_count(&probe, topic, bootstrap)? {
        Some(n) if n == partitions as usize && configs.is_empty() => return Ok(()),
        Some(n) if n != partitions as usize => anyhow::bail!(
            "topic.partitions: topic {topic} exists on {bootstrap} with {n} partitions, not {partitions}; \
             delete it or set topic.partitions: {n}"
        ),
        Some(_) => anyhow::bail!(
            "topic.{}: topic {topic} exists on {bootstrap}; kbench sets topic configs only on topics it creates \
             (delete the topic, or remove the key and set it on the cluster)",
            configs.keys().next().map_or("", String::as_str)
        ),
        None => {}
    }
    let mut new = NewTopic::new(
        topic,
        i32::try_from(partitions).context("topic.partitions")?,
        TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
    );
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config.create().context("creating a Kafka admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = block_on(admin.create_topics([&new], &opts)).context("creating the topic")?;
    for r in results {
        if let Err((name, code)) = r {
            anyhow::bail!("creating topic {name} on {bootstrap}: {code}");
        }
    }
    // Creation is asynchronous on the brokers: wait until metadata shows every partition.
    let until = Instant::now() + TIMEOUT;
    while partition_count(&probe, topic, bootstrap)? != Some(partitions as usize) {
        anyhow::ensure!(
            Instant::now() < until,
            "topic {topic} was created but its partitions did not appear in {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The topic's partition count, `None` when the cluster does not know it. Fails as soon as
/// librdkafka reports the connection refused (TLS, SASL), once no broker has been reachable for
/// [`UNREACHABLE_GRACE`] ([`super::Unreachable`]), or after [`TIMEOUT`].
fn partition_count(probe: &Probe, topic: &str, bootstrap: &str) -> anyhow::Result<Option<usize>> {
    let until = Instant::now() + TIMEOUT;
    loop {
        // All topics: asking for one by name may auto-create it on brokers that allow that.
        let result = probe.client().fetch_metadata(None, ATTEMPT);
        probe.poll(Duration::ZERO);
        if let Some(refused) = probe.context().refused.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            anyhow::bail!("connecting to {bootstrap}: librdkafka: {refused}");
        }
        if result.is_err()
            && let Some(reason) = probe.context().unreachable()
        {
            return Err(super::Unreachable { bootstrap: bootstrap.to_string(), reason }.into());
        }
        match result {
            Ok(metadata) => {
                return Ok(metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().len()));
            }
            Err(e) if Instant::now() >= until => {
                return Err(e).with_context(|| format!("fetching cluster metadata from {bootstrap} for {TIMEOUT:?}"));
            }
            // A request that failed at once (no broker reachable yet): not a busy loop.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (the admin client completes it from its own thread).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Ready once another thread, started at the first poll, has set the flag and woken the task.
    struct Later {
        done: Arc<AtomicBool>,
        started: bool,
    }

    impl Future for Later {
        type Output = u32;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<u32> {
            if self.done.load(Ordering::Acquire) {
                return Poll::Ready(7);
            }
            if !self.started {
                self.started = true;
                let (done, waker) = (Arc::clone(&self.done), cx.waker().clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    done.store(true, Ordering::Release);
                    waker.wake();
                });
            }
            Poll::Pending
        }
    }

    #[test]
    fn block_on_waits_for_a_wake_from_another_thread() {
        let started = Instant::now();
        assert_eq!(block_on(Later { done: Arc::new(AtomicBool::new(false)), started: false }), 7);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
