//! flush.messages group commit: with an fsync due after every message, concurrent appends are
//! acknowledged only after an fsync that started after their write, and one fsync covers many.

mod log_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use log_support::{append, plain, read_all};

#[test]
fn flush_messages_one_acks_after_fsync_and_one_fsync_covers_many_batches() {
    for io in [IoBackendKind::IoUring, IoBackendKind::Pwrite] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { io, flush_messages: Some(1), ..LogConfig::default() };
        let log = Arc::new(TopicLog::open(dir.path(), "g", 1, config).unwrap());
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 100;
        let acked = Arc::new(AtomicU64::new(0));
        let synced = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (log, acked, synced, tx) = (Arc::clone(&log), Arc::clone(&acked), Arc::clone(&synced), tx.clone());
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        let (acked, synced, tx) = (Arc::clone(&acked), Arc::clone(&synced), tx.clone());
                        // Asynchronous: no waiting for the previous append.
                        log.append(
                            0,
                            plain(&format!("t{t}-{i}"), 1, 100, 0),
                            Box::new(move |r, _| {
                                let o = r.expect("append");
                                acked.fetch_add(1, Ordering::Relaxed);
                                if o.sync_ns > 0 {
                                    synced.fetch_add(1, Ordering::Relaxed);
                                }
                                let _ = tx.send(());
                            }),
                        );
                    }
                });
            }
        });
        drop(tx);
        for _ in 0..THREADS * PER_THREAD {
            rx.recv().unwrap();
        }
        let stats = log.io_stats();
        assert_eq!(acked.load(Ordering::Relaxed), THREADS * PER_THREAD);
        assert_eq!(synced.load(Ordering::Relaxed), THREADS * PER_THREAD, "{io}: every ack waited for an fsync");
        assert!(stats.fsyncs > 0);
        assert!(
            stats.fsyncs * 4 <= THREADS * PER_THREAD,
            "{io}: {} fsyncs for {} batches: group commit is not grouping",
            stats.fsyncs,
            THREADS * PER_THREAD
        );
        assert_eq!(read_all(&log, 0).len() as u64, THREADS * PER_THREAD);
        eprintln!("{io}: {} batches, {} fsyncs, {} writes", THREADS * PER_THREAD, stats.fsyncs, stats.writes);
    }
}

#[test]
fn without_flush_messages_acks_do_not_wait_and_flush_syncs_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { io: IoBackendKind::IoUring, ..LogConfig::default() };
    let log = TopicLog::open(dir.path(), "g", 2, config).unwrap();
    for i in 0..20 {
        let o = append(&log, i % 2, plain("x", 1, 10, 0)).unwrap();
        assert_eq!(o.sync_ns, 0);
    }
    assert_eq!(log.io_stats().fsyncs, 0);
    log.flush().unwrap();
    assert!(log.io_stats().fsyncs >= 2, "flush fsyncs both partitions' files");
    log.flush().unwrap();
    let after = log.io_stats().fsyncs;
    log.flush().unwrap();
    assert_eq!(log.io_stats().fsyncs, after, "nothing new written, nothing to sync");
}

#[test]
fn flush_messages_n_syncs_every_n_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { io: IoBackendKind::Pwrite, flush_messages: Some(10), ..LogConfig::default() };
    let log = TopicLog::open(dir.path(), "g", 1, config).unwrap();
    let mut waited = 0;
    for _ in 0..30 {
        // 4 records a batch: the unflushed count reaches 10 at the 3rd batch, 6th, 9th, ...
        if append(&log, 0, plain("x", 4, 10, 0)).unwrap().sync_ns > 0 {
            waited += 1;
        }
    }
    assert_eq!(waited, 10);
    assert_eq!(log.io_stats().fsyncs, 10 + 1, "ten group commits, plus the directory after creating the segment");
}
