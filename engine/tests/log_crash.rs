//! Crash test at the log level: a child process appends to a `TopicLog` (many appends in flight on
//! three partitions) and prints each acknowledgement; the parent SIGKILLs it at a random moment once
//! it has acknowledged a random number of appends,
//! reopens the log (recovery) and checks that every acknowledged record is there, intact, at its
//! acknowledged offset, that offsets are contiguous and that nothing corrupt is served. Rounds cycle
//! through io_uring and pwrite, buffered and O_DIRECT, with and without flush.messages=1.

mod log_support;
mod sigkill;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use log_support::{plain, read_all};

const ROUNDS: u32 = 50;
const PARTITIONS: u32 = 3;

fn config(round: u32) -> LogConfig {
    LogConfig {
        io: if round.is_multiple_of(2) { IoBackendKind::IoUring } else { IoBackendKind::Pwrite },
        direct_io: round % 4 >= 2,
        flush_messages: (round % 8 >= 4).then_some(1),
        // Small segments and index spacing so kills land in rolls and index writes too.
        segment_bytes: 48 * 1024,
        index_interval_bytes: 512,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// The child: appends until killed, printing `ACK partition base_offset tag records`.
#[test]
fn log_crash_child() {
    let Ok(dir) = std::env::var("KBENCH_LOG_CRASH_DIR") else { return };
    let round: u32 = std::env::var("KBENCH_LOG_CRASH_ROUND").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let log = TopicLog::open(Path::new(&dir), "crash", PARTITIONS, config(round)).expect("open");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let in_flight = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for i in 0u64.. {
        let p = (i % u64::from(PARTITIONS)) as u32;
        let records = 1 + (i % 5) as usize;
        let tag = format!("r{round}i{i}");
        let bytes = plain(&tag, records, 20 + (i % 300) as usize, i as i64);
        let (out, flight) = (Arc::clone(&out), Arc::clone(&in_flight));
        in_flight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        log.append(
            p,
            bytes,
            Box::new(move |r, _| {
                if let Ok(o) = r {
                    let mut o2 = out.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = writeln!(o2, "ACK {p} {} {tag} {records}", o.base_offset);
                    let _ = o2.flush();
                }
                flight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }),
        );
        while in_flight.load(std::sync::atomic::Ordering::Acquire) > 64 {
            std::thread::yield_now();
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    if std::env::var("KBENCH_LOG_CRASH_DIR").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // (partition, offset) -> value the record must have.
    let mut acked: HashMap<(u32, i64), String> = HashMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random number of acknowledged appends, then a random moment amid the writes in flight.
        let min_acks = 60 + (seed % 300) as usize;
        let extra = Duration::from_millis((seed >> 32) % 30);
        let mut cmd = Command::new(&exe);
        cmd.args(["log_crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("KBENCH_LOG_CRASH_DIR", dir.path())
            .env("KBENCH_LOG_CRASH_ROUND", round.to_string());
        let lines = sigkill::run_until_acked_then_kill(cmd, min_acks, extra);
        let mut this_round = 0;
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            let [ack, p, base, tag, records] = f[..] else { continue };
            let (Ok(p), Ok(base), Ok(records)) = (p.parse::<u32>(), base.parse::<i64>(), records.parse::<i64>()) else {
                continue; // a line cut by the kill
            };
            if ack != "ACK" {
                continue;
            }
            for r in 0..records {
                acked.insert((p, base + r), format!("{tag}-{r}"));
            }
            this_round += 1;
        }
        // Recovery with the next round's settings (a direct log reopened buffered and vice versa).
        let log = TopicLog::open(dir.path(), "crash", PARTITIONS, config(round + 1)).unwrap();
        let mut stored = HashMap::new();
        for p in 0..PARTITIONS {
            // read_all asserts contiguous offsets and valid (CRC-checked), whole batches.
            for (o, v) in read_all(&log, p) {
                stored.insert((p, o), v.trim_end_matches('.').to_string());
            }
        }
        for (key, value) in &acked {
            assert_eq!(stored.get(key), Some(value), "round {round}: acknowledged record {key:?} lost or changed");
        }
        log.close().unwrap();
        assert!(this_round > 0 || round > 0, "the child acknowledged nothing in the first round");
    }
    // At least 60 acknowledged appends of 1-5 records each per round, by construction.
    assert!(acked.len() >= 3000, "too few acknowledgements to mean anything: {}", acked.len());
    eprintln!("{ROUNDS} kills, {} acknowledged records verified, {:?}", acked.len(), started.elapsed());
}
