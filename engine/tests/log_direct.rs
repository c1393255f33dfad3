//! O_DIRECT writing under load: batches of sizes that never fill a 4 KiB block, many appends in flight,
//! so almost every write ends in a partial block the next write must wait for. Regression test for a
//! stall: a write unblocked by the last completion sat unsubmitted while the I/O thread slept on its
//! request channel (up to log.retention.check.interval.ms, 5 minutes).

mod log_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};

#[test]
fn direct_io_with_partial_blocks_never_stalls_and_reads_back_whole() {
    for io in [IoBackendKind::IoUring, IoBackendKind::Pwrite] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { io, direct_io: true, segment_bytes: 8 << 20, ..LogConfig::default() };
        let log = match TopicLog::open(dir.path(), "direct", 1, config) {
            Ok(log) => Arc::new(log),
            Err(e) => {
                eprintln!("SKIPPED for {io}: {e} (the filesystem under the temp dir refuses O_DIRECT)");
                return;
            }
        };
        let batches = 3_000;
        let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(64);
        for _ in 0..64 {
            credit_tx.send(()).unwrap();
        }
        let started = Instant::now();
        for i in 0..batches {
            // A batch of 3-20 records of 997 bytes: never a multiple of the block size.
            let batch = log_support::plain(&format!("b{i}"), 3 + i % 18, 997, 1_000 + i as i64);
            credit_rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("{io}: no append completed for 30 s at batch {i}: the writer stalled"));
            let credit = credit_tx.clone();
            log.append(
                0,
                batch,
                Box::new(move |r, _| {
                    r.expect("append");
                    let _ = credit.send(());
                }),
            );
        }
        for _ in 0..64 {
            credit_rx.recv_timeout(Duration::from_secs(30)).expect("the last appends complete");
        }
        log.flush().unwrap();
        eprintln!("{io}: {batches} O_DIRECT appends in {:?}", started.elapsed());
        let records = log_support::read_all(&log, 0);
        let expected: usize = (0..batches).map(|i| 3 + i % 18).sum();
        assert_eq!(records.len(), expected, "{io}");
        log.close().unwrap();
    }
}
