//! The log writer against the disk, for `scripts/disk-baseline.sh`: appends batches of `--bs` bytes
//! to one partition from `--producers` threads (each keeping `--inflight` appends outstanding) for
//! `--bytes` in total, then prints one `key=value` line (MB/s, records/s, fsyncs, writes).
//!
//! `cargo run --release -p kbench-engine --example log_disk -- --dir /path --io io_uring --bs 1048576
//!  --bytes 8589934592 [--direct] [--flush-messages 1] [--producers 8] [--records 1]`

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
    let _ = log.close();
    let _ = std::fs::remove_dir_all(args.dir.join("bench-0"));
}
