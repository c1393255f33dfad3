//! The log writer per backend: batches of 64 KiB appended to one partition with up to 64 in flight,
//! then a flush (fsync). Throughput in bytes, so criterion reports MB/s. `discard` measures the
//! I/O thread alone; `pwrite` and `io_uring` include the page cache (and the disk, once writeback
//! throttles); `+direct` adds O_DIRECT with preallocation. Segments of 64 MiB and retention.bytes of
//! 256 MiB keep the disk use bounded however long criterion runs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kbench_engine::CompressionType;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::record::BatchBuilder;

const BATCH: usize = 64 * 1024;
const BATCHES: u64 = 256;

fn batch() -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    let value = vec![b'x'; 1000];
    while b.uncompressed_size() + 1100 < BATCH {
        b.append(0, None, Some(&value), &[]);
    }
    b.build(0).expect("batch")
}

fn run(log: &TopicLog, template: &[u8]) {
    // Credits for the 64 appends in flight; blocking (not spinning) leaves the CPU to the I/O thread.
    let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(64);
    for _ in 0..64 {
        let _ = credit_tx.send(());
    }
    for _ in 0..BATCHES {
        let _ = credit_rx.recv();
        let credit = credit_tx.clone();
        log.append(
            0,
            template.to_vec(),
            Box::new(move |r, _| {
                r.expect("append");
                let _ = credit.send(());
            }),
        );
    }
    log.flush().expect("flush");
}

fn writer(c: &mut Criterion) {
    let template = batch();
    let mut group = c.benchmark_group("log_writer");
    group.throughput(Throughput::Bytes(template.len() as u64 * BATCHES));
    group.sample_size(10);
    let cases = [
        ("discard", IoBackendKind::Discard, false),
        ("pwrite", IoBackendKind::Pwrite, false),
        ("io_uring", IoBackendKind::IoUring, false),
        ("pwrite+direct", IoBackendKind::Pwrite, true),
        ("io_uring+direct", IoBackendKind::IoUring, true),
    ];
    for (name, io, direct) in cases {
        let dir =
            tempfile::tempdir_in(std::env::var_os("KBENCH_BENCH_DIR").unwrap_or_else(|| ".".into())).expect("tempdir");
        let config = LogConfig {
            io,
            direct_io: direct,
            preallocate: direct,
            segment_bytes: 64 << 20,
            retention_bytes: Some(256 << 20),
            log_retention_check_interval_ms: 500,
            ..LogConfig::default()
        };
        let log = match TopicLog::open(dir.path(), "bench", 1, config) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        group.bench_function(name, |b| b.iter(|| run(&log, &template)));
        log.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
