//! Deterministic simulation of the log under faults: each seed picks a workload (partitions, flush
//! policy, segment size, preallocation, batch sizes) and a fault (power loss, process crash, fsync
//! failure, ENOSPC; the last two followed by a crash or a power loss), runs it entirely over the
//! in-memory simulated disk ([`SimDisk`], seeded by the same seed: no real file is touched; its
//! writes and fsyncs go through the storage seam, [`Through`]), and checks after recovery that
//! - every record whose acknowledgement promised durability is present byte for byte at its offset,
//! - nothing corrupt or never written is served, offsets are contiguous from 0,
//! - the offset index agrees with the log (a read at every offset starts at the batch holding it),
//! - recovering a second time gives the same state.
//!
//! CI runs [`CI_SEEDS`]; `scripts/simulate.sh --seeds N` or `--minutes M` runs more (through
//! `KBENCH_SIM_SEEDS` / `KBENCH_SIM_MINUTES` and the ignored test below). A failure prints the
//! command that reproduces it.
//!
//! Planted bugs ([`Planted`]): `KBENCH_SIM_PLANT=skip-fsync|skip-recovery-crc|ack-before-sync` runs
//! the seeds with that bug in the log (the CI test then fails, naming the seed that caught it), and
//! [`each_planted_bug_is_caught_within_the_ci_seeds`] checks that the CI seeds catch each one.
//!
//! A seed fixes the workload, the fault, the disk's coins and where the fault strikes in the
//! sequence of appends; the I/O thread is a real thread, so how many appends it wrote before the
//! fault (and so how many were acknowledged) may differ between two runs of a seed. The checks hold
//! for every such schedule.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::config::Planted;
use super::{LogConfig, TopicLog};
use crate::CompressionType;
use crate::io::sim::SimDisk;
use crate::io::storage::Storage;
use crate::io::through::Through;
use crate::io::{Backend, IoBackendKind};
use crate::record::{BatchBuilder, BatchIter};

/// Seeds CI runs (in `cargo test --workspace`).
const CI_SEEDS: std::ops::Range<u64> = 0..128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    PowerLoss,
    Crash,
    /// An fdatasync fails (Linux semantics), then the power goes (`true`) or the process dies.
    FsyncFailure(bool),
    /// A write fails with ENOSPC, then the power goes or the process dies.
    Enospc(bool),
}

impl Fault {
    fn power_lost(self) -> bool {
        matches!(self, Fault::PowerLoss | Fault::FsyncFailure(true) | Fault::Enospc(true))
    }
}

/// An acknowledged batch: where it landed and its values.
struct Acked {
    /// Its place among the appends.
    index: usize,
    partition: u32,
    base_offset: i64,
    values: Vec<Vec<u8>>,
}

/// A served batch: base offset, last offset, values.
type Served = (i64, i64, Vec<Vec<u8>>);

fn build(values: &[Vec<u8>]) -> Vec<u8> {
    let mut b = BatchBuilder::new(CompressionType::None);
    for v in values {
        b.append(1_000, None, Some(v), &[]);
    }
    b.build(0).expect("build batch")
}

/// Every batch of `partition` as served: (base offset, last offset, values). Errors name why.
fn served(log: &TopicLog, partition: u32) -> Result<Vec<Served>, String> {
    let mut out = Vec::new();
    loop {
        // A fetch returns batches of one segment: fetch on from the next offset until nothing comes.
        let from = out.last().map_or(0, |b: &Served| b.1 + 1);
        let data = log.read(partition, from, usize::MAX).map_err(|e| format!("read p{partition} at {from}: {e}"))?;
        if data.bytes.is_empty() {
            return Ok(out);
        }
        let before = out.len();
        fetched(&data.bytes, partition, &mut out)?;
        if out.len() == before {
            return Err(format!("p{partition}: a fetch at {from} returned bytes holding no batch"));
        }
    }
}

/// Appends the batches of one fetch to `out`.
fn fetched(bytes: &[u8], partition: u32, out: &mut Vec<Served>) -> Result<(), String> {
    for b in BatchIter::new(bytes, 0) {
        let b = b.map_err(|e| format!("p{partition}: a corrupt batch is served: {e}"))?;
        let records = b.records().map_err(|e| format!("p{partition}: records do not decode: {e}"))?;
        let mut values = Vec::new();
        for r in records.iter() {
            let r = r.map_err(|e| format!("p{partition}: a record does not decode: {e}"))?;
            values.push(r.value.unwrap_or_default().to_vec());
        }
        out.push((b.header().base_offset, b.header().last_offset(), values));
    }
    Ok(())
}

/// The log over `disk`: its files there, its writes and fsyncs through the storage seam.
fn open(disk: &Arc<SimDisk>, partitions: u32, config: &LogConfig) -> Result<TopicLog, String> {
    let d = Arc::clone(disk);
    let storage = move |_: u32| -> Arc<dyn Storage> { d.clone() };
    let skip_syncs = config.planted.skip_fsync;
    let backend = move |_: u32| -> Box<dyn Backend> { Box::new(Through::skipping_syncs(skip_syncs)) };
    TopicLog::open_on(Path::new("/sim"), "sim", partitions, config.clone(), &storage, &backend)
        .map_err(|e| e.to_string())
}

/// Runs one seed with `planted` in the log; `Err` describes the first violated check.
fn run_seed(seed: u64, planted: Planted) -> Result<String, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let partitions = rng.random_range(1..=2u32);
    let flush_each = rng.random_bool(0.6);
    let config = LogConfig {
        io: IoBackendKind::Sim,
        flush_messages: flush_each.then_some(1),
        segment_bytes: rng.random_range(2_048..16_384),
        preallocate: rng.random_bool(0.5),
        segment_index_bytes: 4096,
        index_interval_bytes: rng.random_range(64..1024),
        planted,
        ..LogConfig::default()
    };
    let fault = match rng.random_range(0..6) {
        0 | 1 => Fault::PowerLoss,
        2 => Fault::Crash,
        3 => Fault::FsyncFailure(rng.random_bool(0.5)),
        _ => Fault::Enospc(rng.random_bool(0.5)),
    };
    let appends = rng.random_range(10..60usize);
    let fault_at = rng.random_range(1..appends);
    let disk = Arc::new(SimDisk::new(seed));
    let log = open(&disk, partitions, &config).map_err(|e| format!("open: {e}"))?;
    let mut pending = Vec::new();
    // Appends before this index were covered by a successful flush().
    let mut flushed = 0;
    let mut written: HashMap<u32, HashSet<Vec<u8>>> = HashMap::new();
    for i in 0..appends {
        if i == fault_at {
            match fault {
                Fault::PowerLoss | Fault::Crash => disk.cut(),
                Fault::FsyncFailure(_) => disk.fail_sync(1),
                Fault::Enospc(_) => disk.fail_write_with(1, libc::ENOSPC),
            }
        }
        let partition = rng.random_range(0..partitions);
        let values: Vec<Vec<u8>> = (0..rng.random_range(1..4))
            .map(|r| {
                let mut v = format!("s{seed}-a{i}-r{r}-").into_bytes();
                v.resize(rng.random_range(v.len()..400), b'a' + (i % 26) as u8);
                v
            })
            .collect();
        written.entry(partition).or_default().extend(values.iter().cloned());
        let (tx, rx) = crossbeam_channel::bounded(1);
        log.append(
            partition,
            build(&values),
            Box::new(move |r, _| {
                let _ = tx.send(r);
            }),
        );
        pending.push((partition, values, rx));
        if rng.random_bool(0.3) {
            // Sometimes wait, so acknowledgements interleave with later appends.
            std::thread::sleep(Duration::from_micros(rng.random_range(0..200)));
        }
        if rng.random_bool(0.1) && log.flush().is_ok() {
            // Sometimes flush: everything appended so far is durable once it returns Ok (and the
            // directory entries of the segments with it, so a power loss leaves files to recover).
            flushed = pending.len();
        }
    }
    let mut acked = Vec::new();
    for (index, (partition, values, rx)) in pending.into_iter().enumerate() {
        if let Ok(Ok(o)) = rx.recv() {
            acked.push(Acked { index, partition, base_offset: o.base_offset, values });
        }
    }
    if matches!(fault, Fault::FsyncFailure(_) | Fault::Enospc(_)) {
        disk.cut(); // the process dies or the power goes after the disk failure
    }
    drop(log);
    if fault.power_lost() {
        disk.power_loss();
    } else {
        disk.crash();
    }
    // What the acknowledgements promised: with flush.messages=1 every ack survives anything; without
    // a flush policy an ack survives a process crash only (no fsync failure dropped its pages), or
    // anything once a later flush() succeeded.
    let promised = |a: &Acked| flush_each || fault == Fault::Crash || a.index < flushed;
    let log = open(&disk, partitions, &config).map_err(|e| format!("recovery: {e}"))?;
    let mut state = Vec::new();
    for p in 0..partitions {
        let batches = served(&log, p)?;
        let mut next = 0;
        let mut at: HashMap<i64, Vec<u8>> = HashMap::new();
        for (base, last, values) in &batches {
            if *base != next {
                return Err(format!("p{p}: offsets not contiguous: batch at {base}, expected {next}"));
            }
            for (k, v) in values.iter().enumerate() {
                if !written[&p].contains(v) {
                    return Err(format!("p{p}: offset {}: a value never written is served", base + k as i64));
                }
                at.insert(base + k as i64, v.clone());
            }
            // The index agrees with the log: a read at any offset of the batch starts at it.
            for o in *base..=*last {
                let first = log.read(p, o, 1).map_err(|e| format!("p{p}: read at {o}: {e}"))?.first_offset;
                if first != *base {
                    return Err(format!("p{p}: a read at {o} starts at {first}, the batch holding it is at {base}"));
                }
            }
            next = last + 1;
        }
        for a in acked.iter().filter(|a| a.partition == p && promised(a)) {
            for (k, v) in a.values.iter().enumerate() {
                let o = a.base_offset + k as i64;
                if at.get(&o) != Some(v) {
                    return Err(format!("p{p}: acknowledged offset {o} lost or changed after {fault:?}"));
                }
            }
        }
        state.push(batches);
    }
    drop(log);
    // Recovering twice gives the same state.
    let log = open(&disk, partitions, &config).map_err(|e| format!("second recovery: {e}"))?;
    for p in 0..partitions {
        if served(&log, p)? != state[p as usize] {
            return Err(format!("p{p}: the second recovery serves other bytes than the first"));
        }
    }
    Ok(format!(
        "{fault:?}, flush.messages={}, {} of {appends} acknowledged",
        if flush_each { "1" } else { "none" },
        acked.len()
    ))
}

/// The bug `KBENCH_SIM_PLANT` names (none when unset).
fn planted_from_env() -> Planted {
    let Ok(name) = std::env::var("KBENCH_SIM_PLANT") else { return Planted::default() };
    plant(&name).unwrap_or_else(|| panic!("KBENCH_SIM_PLANT={name}: not one of {}", PLANTS.join(", ")))
}

/// The bugs that can be planted, by name.
const PLANTS: [&str; 3] = ["skip-fsync", "skip-recovery-crc", "ack-before-sync"];

fn plant(name: &str) -> Option<Planted> {
    let none = Planted::default();
    match name {
        "skip-fsync" => Some(Planted { skip_fsync: true, ..none }),
        "skip-recovery-crc" => Some(Planted { skip_recovery_crc: true, ..none }),
        "ack-before-sync" => Some(Planted { ack_before_sync: true, ..none }),
        _ => None,
    }
}

fn check(seed: u64) {
    let planted = planted_from_env();
    if let Err(e) = run_seed(seed, planted) {
        let plant = std::env::var("KBENCH_SIM_PLANT").map(|p| format!("KBENCH_SIM_PLANT={p} ")).unwrap_or_default();
        panic!(
            "simulation seed {seed}: {e}\nreproduce: {plant}KBENCH_SIM_SEED={seed} cargo test -p kbench-engine --lib log::sim_tests::one_seed -- --ignored --nocapture"
        );
    }
}

#[test]
fn ci_seeds_keep_every_durable_acknowledgement_across_faults() {
    for seed in CI_SEEDS {
        check(seed);
    }
}

/// Each planted bug makes some CI seed fail (the seeds run in order until one does).
#[test]
fn each_planted_bug_is_caught_within_the_ci_seeds() {
    for name in PLANTS {
        let planted = plant(name).expect("listed");
        let caught = CI_SEEDS.clone().find_map(|seed| run_seed(seed, planted).err().map(|e| (seed, e)));
        let Some((seed, e)) = caught else {
            panic!("the planted bug {name} passed all {} CI seeds", CI_SEEDS.end - CI_SEEDS.start);
        };
        println!("{name}: caught by seed {seed}: {e}");
    }
}

/// One seed (`KBENCH_SIM_SEED`), or many (`KBENCH_SIM_SEEDS`=N from 1000, or `KBENCH_SIM_MINUTES`=M):
/// what scripts/simulate.sh runs.
#[test]
#[ignore = "run by scripts/simulate.sh (or with KBENCH_SIM_SEED=N for one seed)"]
fn one_seed() {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(seed) = var("KBENCH_SIM_SEED") {
        match run_seed(seed, planted_from_env()) {
            Ok(what) => println!("seed {seed}: ok ({what})"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
        return;
    }
    let seeds = var("KBENCH_SIM_SEEDS");
    let deadline = var("KBENCH_SIM_MINUTES").map(|m| Instant::now() + Duration::from_secs(m * 60));
    let mut seed = 1000;
    while seeds.is_some_and(|n| seed < 1000 + n) || deadline.is_some_and(|d| Instant::now() < d) {
        check(seed);
        seed += 1;
    }
    println!("simulated seeds 1000..{seed}: all passed");
}
