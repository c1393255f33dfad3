//! The log writer against the disk, for `scripts/disk-baseline.sh`: appends batches of `--bs` bytes
//! to one partition from `--producers` threads (each keeping `--inflight` appends outstanding) for
//! `--bytes` in total, then prints one `key=value` line (MB/s, records/s, fsyncs, writes).
//!
//! With `--read`, the log is then read back by a Consumer (after dropping the page cache, when
//! permitted) and a second line gives the consumer's MB/s and records/s.
//!
//! `cargo run --release -p kbench-engine --example log_disk -- --dir /path --io io_uring --bs 1048576
//!  --bytes 8589934592 [--direct] [--flush-messages 1] [--producers 8] [--records 1] [--read]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kbench_engine::CompressionType;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::record::BatchBuilder;

struct Args {
    dir: PathBuf,
    io: IoBackendKind,
    bs: usize,
    bytes: u64,
    direct: bool,
    flush_messages: Option<u64>,
    producers: usize,
    inflight: u64,
    records: usize,
    read: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        dir: std::env::temp_dir().join("kbench-log-disk"),
        io: IoBackendKind::IoUring,
        bs: 1 << 20,
        bytes: 1 << 30,
        direct: false,
        flush_messages: None,
        producers: 1,
        inflight: 64,
        records: 0,
        read: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(v()?),
            "--io" => a.io = v()?.parse().map_err(|e| format!("{e}"))?,
            "--bs" => a.bs = v()?.parse().map_err(|e| format!("--bs: {e}"))?,
            "--bytes" => a.bytes = v()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--direct" => a.direct = true,
            "--flush-messages" => a.flush_messages = Some(v()?.parse().map_err(|e| format!("{e}"))?),
            "--producers" => a.producers = v()?.parse().map_err(|e| format!("{e}"))?,
            "--inflight" => a.inflight = v()?.parse().map_err(|e| format!("{e}"))?,
            "--records" => a.records = v()?.parse().map_err(|e| format!("{e}"))?,
            "--read" => a.read = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// One batch of about `bs` bytes holding `records` records (0: 1 KiB records).
fn make_batch(bs: usize, records: usize) -> Vec<u8> {
    let records = if records == 0 { (bs / 1024).max(1) } else { records };
    let value = vec![b'x'; (bs / records).saturating_sub(80).max(1)];
    let mut b = BatchBuilder::new(CompressionType::None);
    for _ in 0..records {
        b.append(0, None, Some(&value), &[]);
    }
    b.build(0).expect("batch")
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("log_disk: {e}");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_dir_all(args.dir.join("bench-0"));
    let config = LogConfig {
        io: args.io,
        direct_io: args.direct,
        flush_messages: args.flush_messages,
        preallocate: args.direct,
        retention_ms: None,
        ..LogConfig::default()
    };
    let log = match TopicLog::open(&args.dir, "bench", 1, config) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("log_disk: {e}");
            std::process::exit(1);
        }
    };
    let template = make_batch(args.bs, args.records);
    let records_per_batch = kbench_engine::record::BatchIter::new(&template, 0)
        .next()
        .and_then(|b| b.ok())
        .map_or(1, |b| b.header().records_count as u64);
    let batches = (args.bytes / template.len() as u64).max(1);
    let per_producer = batches.div_ceil(args.producers as u64);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.producers {
            let (log, template, errors) = (Arc::clone(&log), template.clone(), Arc::clone(&errors));
            let inflight = args.inflight;
            s.spawn(move || {
                // Credits for appends in flight: blocking, so a waiting producer leaves the CPU to the
                // I/O thread and the kernel's workers (a yield loop steals it on a small machine).
                let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(inflight as usize);
                for _ in 0..inflight {
                    let _ = credit_tx.send(());
                }
                let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
                for _ in 0..per_producer {
                    let _ = credit_rx.recv();
                    // Recycle returned buffers, as the producer's buffer pool does.
                    let buf = rx.try_recv().map_or_else(
                        |_| template.clone(),
                        |mut b| {
                            b.clear();
                            b.extend_from_slice(&template);
                            b
                        },
                    );
                    let (credit, tx, errors) = (credit_tx.clone(), tx.clone(), Arc::clone(&errors));
                    log.append(
                        0,
                        buf,
                        Box::new(move |r, b| {
                            if r.is_err() {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = tx.send(b);
                            let _ = credit.send(());
                        }),
                    );
                }
                for _ in 0..inflight {
                    let _ = credit_rx.recv();
                }
            });
        }
    });
    let written = started.elapsed();
    if let Err(e) = log.flush() {
        eprintln!("log_disk: flush failed: {e}");
    }
    let elapsed = started.elapsed();
    let stats = log.io_stats();
    let total = per_producer * args.producers as u64;
    let bytes = total * template.len() as u64;
    println!(
        "kbench io={} direct={} bs={} batches={} bytes={} secs={:.3} MBps={:.1} MBps_before_final_flush={:.1} \
         records_per_s={:.0} batches_per_s={:.0} fsyncs={} fsyncs_per_s={:.1} writes={} errors={}",
        log.io_backend(),
        args.direct,
        template.len(),
        total,
        bytes,
        elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        bytes as f64 / written.as_secs_f64() / 1e6,
        (total * records_per_batch) as f64 / elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        stats.fsyncs,
        stats.fsyncs as f64 / elapsed.as_secs_f64(),
        stats.writes,
        errors.load(Ordering::Relaxed),
    );
    if args.read {
        read_back(&args, &log);
    }
    let _ = log.close();
    let _ = std::fs::remove_dir_all(args.dir.join("bench-0"));
}

/// Reads the whole partition back through a Consumer, from a cold page cache when the kernel lets us
/// drop it, and prints the consumer's MB/s.
fn read_back(args: &Args, log: &Arc<TopicLog>) {
    use kbench_engine::consumer::{AutoOffsetReset, Consumer, ConsumerConfig, Coordinator};
    // Write back first, so dropping the cache leaves nothing of the log in memory.
    let _ = std::process::Command::new("sync").status();
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let coordinator = match Coordinator::open(&args.dir.join("__consumer_offsets"), 1) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("log_disk: {e}");
            return;
        }
    };
    let config = ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        max_poll_records: 100_000,
        max_partition_fetch_bytes: 4 << 20,
        ..ConsumerConfig::default()
    };
    let mut consumer = match Consumer::new(config, Arc::clone(log), &coordinator) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("log_disk: {e}");
            return;
        }
    };
    if let Err(e) = consumer.assign(&[0]) {
        eprintln!("log_disk: {e}");
        return;
    }
    let end = log.log_end_offset(0);
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    loop {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                records += batch.len() as u64;
                bytes += batch.iter().map(|r| r.value.as_ref().map_or(0, Vec::len) as u64).sum::<u64>();
                if batch.last().is_some_and(|r| r.offset + 1 >= end) {
                    break;
                }
            }
            Err(e) => {
                eprintln!("log_disk: poll: {e}");
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "consumer cold_cache={cold} records={records} value_bytes={bytes} secs={secs:.3} read_MBps={:.1} read_records_per_s={:.0}",
        bytes as f64 / secs / 1e6,
        records as f64 / secs
    );
}
