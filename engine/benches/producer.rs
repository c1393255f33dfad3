//! Records/s through the whole producer path — partitioner, accumulator, sender, log — on the
//! `discard` io backend, so the threading core is measured alone.
//!
//! Grid: 1, 2, 4, 8, 16 threads x 1 and 64 partitions x 10, 100, 1000-byte values, lock-free against
//! mutex accumulator. Records are keyed with an 8-byte counter (murmur2 spreads them over the
//! partitions), acks=1, no compression, batch.size 16384, linger.ms 5, idempotence on (Kafka's
//! defaults but acks). `KBENCH_BENCH_QUICK=1` keeps only 2 threads x 64 partitions x 100 bytes.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::AccumulatorKind;
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};

fn run(producer: &Producer, threads: u32, records: u64, value: &[u8]) -> Duration {
    let per_thread = records.div_ceil(u64::from(threads));
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let producer = producer.clone();
            let barrier = Arc::clone(&barrier);
            let value = value.to_vec();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    let key = (i * u64::from(threads) + u64::from(t)).to_le_bytes();
                    let record = ProducerRecord::new(Some(&key), &value);
                    // The future is dropped: the batch's completion is what flush waits for.
                    drop(std::hint::black_box(producer.send(&record).expect("send")));
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for h in handles {
        h.join().expect("producer thread");
    }
    producer.flush().expect("flush");
    started.elapsed()
}

fn producer_throughput(c: &mut Criterion) {
    let quick = std::env::var_os("KBENCH_BENCH_QUICK").is_some();
    let mut group = c.benchmark_group("producer_discard");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let threads_set: &[u32] = if quick { &[2] } else { &[1, 2, 4, 8, 16] };
    let partitions_set: &[u32] = if quick { &[64] } else { &[1, 64] };
    let sizes: &[usize] = if quick { &[100] } else { &[10, 100, 1000] };
    for &kind in &[AccumulatorKind::LockFree, AccumulatorKind::Mutex] {
        for &partitions in partitions_set {
            for &size in sizes {
                for &threads in threads_set {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let log_config = LogConfig { io: IoBackendKind::Discard, ..LogConfig::default() };
                    let log = Arc::new(TopicLog::open(dir.path(), "bench", partitions, log_config).expect("log"));
                    let config = ProducerConfig { acks: Acks::One, accumulator: kind, ..ProducerConfig::default() };
                    let producer = Producer::new(config, Arc::clone(&log), None).expect("producer");
                    let value = vec![b'x'; size];
                    group.throughput(Throughput::Elements(1));
                    let id = BenchmarkId::new(
                        format!("{kind:?}/{partitions}p/{size}B").to_lowercase(),
                        format!("{threads}t"),
                    );
                    group.bench_function(id, |b| {
                        b.iter_custom(|iters| {
                            run(&producer, threads, iters.max(u64::from(threads)) * 1000, &value) / 1000
                        })
                    });
                    producer.close().expect("close");
                    log.close().expect("log close");
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, producer_throughput);
criterion_main!(benches);
