//! The end-of-case audit of a replicated or faulted log: after the faults are healed and the
//! replicas have converged, every record readable from the leaders (below the high watermark) is
//! matched by its id header against the ledger's acknowledged records. An acknowledged record that
//! is not there was lost (acks=1 across a leader failure, an unclean election, a power loss of
//! brokers that had not fsynced it). Each fault is charged with the records acknowledged before it
//! started that are missing.

use std::time::{Duration, Instant};

use anyhow::Context;
use kbench_engine::log::TopicLog;
use kbench_engine::record::BatchIter;

use super::ledger::{ID_HEADER, Ledger, RecordId, snapshot_missing};
use super::replica_faults::Started;
use crate::results::schema::FaultLoss;

/// Waits up to `timeout` for every partition to have a leader, a full ISR and equal replica ends.
/// Returns whether they converged.
pub(crate) fn converge(log: &TopicLog, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut done = true;
        for p in 0..log.partitions() {
            let Some(s) = log.replica_status(p)? else { return Ok(true) };
            let same = s.log_end_offsets.iter().all(|&e| e == s.log_end_offsets[0]);
            done &= s.leader.is_some() && same && s.isr.len() as u32 == log.replication_factor();
        }
        if done {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Acknowledged records (per the ledger) missing from what the log serves, and per started fault,
/// those acknowledged before it that are missing.
pub(crate) fn missing_acknowledged(
    log: &TopicLog,
    ledger: &Ledger,
    started: &[Started],
) -> anyhow::Result<(u64, Vec<FaultLoss>)> {
    let present = present(log)?;
    let per_fault = started
        .iter()
        .map(|s| FaultLoss {
            fault: s.what.clone(),
            acknowledged_before: s.acknowledged.iter().map(|t| t.iter().filter(|&&a| a).count() as u64).sum(),
            lost_acknowledged: snapshot_missing(&s.acknowledged, &present),
        })
        .collect();
    Ok((ledger.acknowledged_missing(&present), per_fault))
}

/// Per producer thread, which record ids the log serves.
fn present(log: &TopicLog) -> anyhow::Result<Vec<Vec<bool>>> {
    let mut present: Vec<Vec<bool>> = Vec::new();
    for p in 0..log.partitions() {
        let mut offset = log.log_start_offset(p);
        let end = log.log_end_offset(p);
        while offset < end {
            let fetch = log.read(p, offset, 4 << 20).with_context(|| format!("audit: reading partition {p}"))?;
            if fetch.bytes.is_empty() {
                break;
            }
            for batch in BatchIter::new(&fetch.bytes, 0) {
                let batch = batch.with_context(|| format!("audit: partition {p} at offset {offset}"))?;
                for record in batch.records().context("audit: decoding records")?.iter() {
                    let record = record.context("audit: decoding a record")?;
                    let id = record
                        .headers()
                        .find(|h| h.key == ID_HEADER.as_bytes())
                        .and_then(|h| RecordId::decode(h.value?));
                    if let Some(id) = id {
                        let t = id.thread as usize;
                        if present.len() <= t {
                            present.resize(t + 1, Vec::new());
                        }
                        let seen = &mut present[t];
                        if seen.len() <= id.seq as usize {
                            seen.resize(id.seq as usize + 1, false);
                        }
                        seen[id.seq as usize] = true;
                    }
                }
                offset = batch.header().last_offset() + 1;
            }
        }
    }
    Ok(present)
}
