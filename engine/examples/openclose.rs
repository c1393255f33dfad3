//! Opening and closing a many-partition log (issue 15 item 4): opens `--partitions` partitions under
//! `--dir`, appends one batch to each, closes the log and removes the directory, and prints one
//! `key=value` line with the seconds each step took.
//!
//! `cargo run --release -p kbench-engine --example openclose -- --dir /path --partitions 10000
//!  [--io io_uring] [--keep]`
//!
//! Close is the log's: the fsync of every partition's segment and directory, index files written.
//! `remove_sec` is `remove_dir_all` of the directory afterwards (skipped with `--keep`).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use kbench_engine::CompressionType;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog, raise_descriptor_limit};
use kbench_engine::record::BatchBuilder;

fn main() {
    let mut dir = std::env::temp_dir().join("kbench-openclose");
    let mut partitions: u32 = 10_000;
    let mut io = IoBackendKind::IoUring;
    let mut keep = false;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--dir" => dir = PathBuf::from(v()),
            "--partitions" => partitions = v().parse().expect("--partitions"),
            "--io" => io = v().parse().expect("--io"),
            "--keep" => keep = true,
            other => panic!("unknown argument {other}"),
        }
    }
    raise_descriptor_limit();
    let _ = std::fs::remove_dir_all(&dir);
    let mut b = BatchBuilder::new(CompressionType::None);
    b.append(0, None, Some(&[b'x'; 100]), &[]);
    let batch = b.build(0).expect("batch");

    let t = Instant::now();
    let log = TopicLog::open(&dir, "wide", partitions, LogConfig { io, ..LogConfig::default() }).expect("open");
    let open = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (tx, rx) = mpsc::channel();
    for p in 0..partitions {
        let tx = tx.clone();
        log.append(p, batch.clone(), Box::new(move |r, _| tx.send(r.map(|_| ())).expect("send")));
    }
    for _ in 0..partitions {
        rx.recv().expect("callback").expect("append");
    }
    let append = t.elapsed().as_secs_f64();

    let t = Instant::now();
    log.close().expect("close");
    drop(log);
    let close = t.elapsed().as_secs_f64();

    let t = Instant::now();
    if !keep {
        std::fs::remove_dir_all(&dir).expect("remove");
    }
    let remove = t.elapsed().as_secs_f64();
    println!(
        "partitions={partitions} io={io} open_sec={open:.3} append_sec={append:.3} close_sec={close:.3} \
         remove_sec={remove:.3}"
    );
}
