//! Crash test: a writer in a child process is SIGKILLed at random moments; after each kill the log
//! is reopened (recovery) and every record whose acknowledgement reached the parent must be there,
//! intact, at its acknowledged offset; offsets must be contiguous and nothing corrupt is served.

mod sigkill;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kbench_engine::record::BatchIter;

const ROUNDS: u32 = 50;
const PARTITIONS: u32 = 3;

fn config(io: IoBackendKind) -> LogConfig {
    // Small segments and index spacing so kills land in rolls and index writes too.
    LogConfig { io, segment_bytes: 64 * 1024, index_interval_bytes: 512, ..LogConfig::default() }
}

/// The child: produce until killed, printing `ACK partition offset id` for every delivery.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("KBENCH_CRASH_DIR") else { return };
    let round: u32 = std::env::var("KBENCH_CRASH_ROUND").unwrap().parse().unwrap();
    let io = if round.is_multiple_of(2) { IoBackendKind::IoUring } else { IoBackendKind::Pwrite };
    let log = Arc::new(TopicLog::open(Path::new(&dir), "crash", PARTITIONS, config(io)).unwrap());
    let producer = Producer::new(
        ProducerConfig {
            acks: Acks::One,
            linger: Duration::from_millis(1),
            batch_size: 2048,
            ..ProducerConfig::default()
        },
        log,
        None,
    )
    .unwrap();
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    for i in 0u64.. {
        let id = format!("r{round}-{i}");
        let key = (i % 17).to_string();
        let out = Arc::clone(&out);
        let id2 = id.clone();
        producer
            .send_with_callback(&ProducerRecord::new(Some(key.as_bytes()), id.as_bytes()), move |r| {
                if let Ok(m) = r {
                    let mut o = out.lock().unwrap();
                    let _ = writeln!(o, "ACK {} {} {id2}", m.partition, m.offset);
                    let _ = o.flush();
                }
            })
            .unwrap();
        if i.is_multiple_of(64) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn read_all(log: &TopicLog) -> HashMap<(u32, i64), String> {
    let mut out = HashMap::new();
    for p in 0..log.partitions() {
        let mut offset = log.log_start_offset(p);
        let end = log.log_end_offset(p);
        while offset < end {
            let fetch = log.read(p, offset, 1 << 20).expect("read after recovery");
            assert!(!fetch.bytes.is_empty(), "partition {p}: nothing served at {offset} below the end {end}");
            let mut iter = BatchIter::new(&fetch.bytes, 0);
            for batch in iter.by_ref() {
                let batch = batch.expect("recovery serves no corrupt batch");
                let base = batch.header().base_offset;
                assert_eq!(base, offset, "partition {p}: offsets are not contiguous");
                for r in batch.records().expect("records decode").iter() {
                    let r = r.expect("record decodes");
                    out.insert(
                        (p, base + i64::from(r.offset_delta)),
                        String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    );
                }
                offset = batch.header().last_offset() + 1;
            }
            assert!(iter.partial_tail().is_none(), "a served read ends in a partial batch");
        }
    }
    out
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    if std::env::var("KBENCH_CRASH_DIR").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<(u32, i64), String> = HashMap::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let started = Instant::now();
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random number of acknowledged records, then a random moment amid the sends in flight.
        let min_acks = 40 + (seed % 200) as usize;
        let extra = Duration::from_millis((seed >> 32) % 30);
        let mut cmd = Command::new(&exe);
        cmd.args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("KBENCH_CRASH_DIR", dir.path())
            .env("KBENCH_CRASH_ROUND", round.to_string());
        let lines = sigkill::run_until_acked_then_kill(cmd, min_acks, extra);
        let mut this_round = 0;
        for line in lines {
            let mut f = line.split(' ');
            if f.next() != Some("ACK") {
                continue;
            }
            let (Some(p), Some(o), Some(id)) = (f.next(), f.next(), f.next()) else { continue };
            let (Ok(p), Ok(o)) = (p.parse(), o.parse()) else { continue }; // a line cut by the kill
            acked.insert((p, o), id.to_string());
            this_round += 1;
        }
        let log = TopicLog::open(dir.path(), "crash", PARTITIONS, config(IoBackendKind::Pwrite)).unwrap();
        let stored = read_all(&log);
        for ((p, o), id) in &acked {
            assert_eq!(
                stored.get(&(*p, *o)),
                Some(id),
                "round {round}: acknowledged record {p}/{o} ({id}) lost or changed"
            );
        }
        log.close().unwrap();
        assert!(this_round > 0 || round > 0, "the child acknowledged nothing in the first round");
    }
    // At least 40 acknowledged records per round, by construction.
    assert!(acked.len() >= 2000, "too few acknowledgements to mean anything: {}", acked.len());
    eprintln!("{ROUNDS} kills, {} acknowledged records verified, {:?}", acked.len(), started.elapsed());
}
