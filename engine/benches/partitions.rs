//! Per-batch cost across many partitions (issue 15 item 3): one-record batches spread over 10,000
//! partitions, through the whole producer path (accumulator, sender, log's I/O thread).
//!
//! Every record goes to the next partition in turn (an explicit partition, so nothing but the path
//! under test picks it), and batch.size is one record's batch, so each append fills its batch and
//! every batch holds exactly one record whatever the timing. linger.ms 0, acks=1, no compression,
//! idempotence on. Two backends: `discard` (the per-batch CPU of everything outside the kernel's
//! write) and `io_uring` (with the buffered writes).
//!
//! Criterion reports records/s (= batches/s). After each case the bench prints the process's CPU
//! time per batch (user + system, all threads, from getrusage) over the measured iterations.
//!
//! A partition holds one descriptor (its active segment's): the bench raises its soft RLIMIT_NOFILE
//! to the hard limit, and where even that cannot hold the partitions it says so and runs the
//! largest count that fits (named in the case id). `KBENCH_BENCH_PARTITIONS=N` picks another count,
//! `KBENCH_BENCH_IO=discard` (or `io_uring`) runs one backend only (a criterion filter still opens
//! every backend's log).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog, descriptor_limit, open_descriptors, raise_descriptor_limit};
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kbench_engine::record::RECORD_BATCH_OVERHEAD;

const WANTED: u32 = 10_000;
const VALUE: usize = 100;
/// Records sent per criterion iteration.
const PER_ITER: u64 = 10_000;

/// Process CPU time (user + system, every thread).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
fn raise_nofile() -> u64 {
    raise_descriptor_limit();
    descriptor_limit().unwrap_or(1024)
}

fn open_fds() -> u64 {
    open_descriptors().unwrap_or(0)
}

/// Descriptors one partition of an open log holds, measured on a small log.
fn fds_per_partition(io: IoBackendKind) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = open_fds();
    let log = TopicLog::open(dir.path(), "probe", 64, LogConfig { io, ..LogConfig::default() }).expect("probe log");
    let per = (open_fds().saturating_sub(before)).div_ceil(64);
    log.close().expect("close probe log");
    per.max(1)
}

/// The partition count to run: the wanted one, or the largest the descriptor limit holds.
fn partitions(io: IoBackendKind) -> u32 {
    if let Some(n) = std::env::var("KBENCH_BENCH_PARTITIONS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    let limit = raise_nofile();
    let per = fds_per_partition(io);
    let room = limit.saturating_sub(open_fds() + 256) / per;
    if room < u64::from(WANTED) {
        eprintln!(
            "partitions bench: {WANTED} partitions need about {} descriptors ({per} each), the limit is {limit}: \
             running {room} partitions instead",
            u64::from(WANTED) * per
        );
        return room.max(1) as u32;
    }
    WANTED
}

fn one_record_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_record_batches");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let value = vec![b'x'; VALUE];
    // One record's batch: header plus the record (a few varints around the value). That is below
    // the record's size upper bound (VALUE + 24), so, as in Kafka's BufferPool, each batch gets a
    // buffer outside the pool; `KBENCH_BENCH_BATCH_SIZE=185` (the bound) keeps one record per batch
    // with pooled buffers.
    let batch_size = std::env::var("KBENCH_BENCH_BATCH_SIZE")
        .ok()
        .map_or(RECORD_BATCH_OVERHEAD + VALUE + 16, |v| v.parse().expect("KBENCH_BENCH_BATCH_SIZE"));
    let only: Option<IoBackendKind> =
        std::env::var("KBENCH_BENCH_IO").ok().map(|v| v.parse().expect("KBENCH_BENCH_IO"));
    for io in [IoBackendKind::Discard, IoBackendKind::IoUring] {
        if only.is_some_and(|o| o != io) {
            continue;
        }
        let n = partitions(io);
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = Instant::now();
        let log =
            Arc::new(TopicLog::open(dir.path(), "wide", n, LogConfig { io, ..LogConfig::default() }).expect("log"));
        eprintln!("partitions bench: {n} partitions ({io}) opened in {:.2?}", opened.elapsed());
        let config =
            ProducerConfig { acks: Acks::One, batch_size, linger: Duration::ZERO, ..ProducerConfig::default() };
        let producer = Producer::new(config, Arc::clone(&log), None).expect("producer");
        let next = AtomicU64::new(0);
        let (cpu, batches) = (AtomicU64::new(0), AtomicU64::new(0));
        group.throughput(Throughput::Elements(PER_ITER));
        group.bench_function(BenchmarkId::new(format!("{io}"), format!("{n}p")), |b| {
            b.iter_custom(|iters| {
                let cpu_before = cpu_time();
                let started = Instant::now();
                for _ in 0..iters * PER_ITER {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let record = ProducerRecord {
                        partition: Some((i % u64::from(n)) as u32),
                        ..ProducerRecord::new(None, &value)
                    };
                    drop(std::hint::black_box(producer.send(&record).expect("send")));
                }
                producer.flush().expect("flush");
                let elapsed = started.elapsed();
                cpu.fetch_add((cpu_time() - cpu_before).as_nanos() as u64, Ordering::Relaxed);
                batches.fetch_add(iters * PER_ITER, Ordering::Relaxed);
                elapsed
            })
        });
        let (cpu, batches) = (cpu.load(Ordering::Relaxed), batches.load(Ordering::Relaxed).max(1));
        eprintln!(
            "partitions bench: {io} {n}p: {:.2} us CPU per batch (all threads, {batches} one-record batches)",
            cpu as f64 / batches as f64 / 1000.0
        );
        producer.close().expect("close");
        let closing = Instant::now();
        log.close().expect("log close");
        eprintln!("partitions bench: {n} partitions ({io}) closed in {:.2?}", closing.elapsed());
    }
    group.finish();
}

criterion_group!(benches, one_record_batches);
criterion_main!(benches);
