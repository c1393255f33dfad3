//! A follower broker's replica fetcher (Kafka's ReplicaFetcherThread, one per follower): each round
//! it first cuts back partitions whose leader changed (to the end of its last epoch in the leader's
//! history), then, for every partition it follows, reports its log end offset to the leader (the
//! fetch offset: the leader's ISR and high-watermark bookkeeping) and reads what the leader has past
//! it, appends those batches as a follower, and waits for its own writes before the next round, so
//! the offset it reports next is on its disk as its flush policy promises.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use crate::log::AppendOutcome;
use crate::record::BatchHeader;

/// Kafka's replica.fetch.max.bytes default: bytes per partition per fetch (at least one batch).
const REPLICA_FETCH_MAX_BYTES: usize = 1024 * 1024;

/// Longest wait for new data before a round runs anyway (Kafka's replica.fetch.wait.max.ms is 500;
/// shorter here so stops and delays apply promptly).
const FETCH_WAIT_MAX: Duration = Duration::from_millis(100);

pub(super) fn run(shared: &Shared, me: usize) {
    let log = &shared.brokers[me];
    let partitions = shared.states.len() as u32;
    while !shared.shutdown.load(Ordering::Acquire) {
        let seen = shared.writes.seq();
        if !shared.alive[me].load(Ordering::Acquire) {
            shared.writes.wait(seen, Instant::now() + FETCH_WAIT_MAX);
            continue;
        }
        if !slept_fetch_delay(shared, me) {
            continue;
        }
        let (tx, rx) = crossbeam_channel::unbounded::<crate::error::Result<AppendOutcome>>();
        let mut appended = 0usize;
        for p in 0..partitions {
            let (leader, truncate_to) = {
                let st = shared.state(p);
                let Some(leader) = st.leader else { continue };
                if leader == me || !shared.alive[leader].load(Ordering::Acquire) {
                    continue;
                }
                let cut = if st.needs_truncation[me] { Some(st.truncation_point(log.last_epoch(p))) } else { None };
                (leader, cut)
            };
            if let Some(point) = truncate_to {
                if let Some(offset) = point
                    && offset < log.log_end_offset(p)
                {
                    if let Err(e) = log.truncate(p, offset) {
                        log::warn!("replica {me}: truncating partition {p} to {offset}: {e}");
                        continue;
                    }
                    log::info!("replica {me}: partition {p} truncated to {offset} (diverged from the leader)");
                }
                shared.state(p).needs_truncation[me] = false;
            }
            let fetch_offset = log.log_end_offset(p);
            let mut ready = Vec::new();
            let (before, after) = {
                let mut st = shared.state(p);
                if st.leader != Some(leader) || st.needs_truncation[me] {
                    continue; // leadership moved meanwhile: next round
                }
                let before = st.hw;
                st.on_fetch(me, fetch_offset, Instant::now(), &mut ready);
                (before, st.hw)
            };
            shared.finish(ready, before, after);
            let data = match shared.brokers[leader].read(p, fetch_offset, REPLICA_FETCH_MAX_BYTES, i64::MAX) {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("replica {me}: fetching partition {p} from {leader}: {e}");
                    continue;
                }
            };
            let mut pos = 0usize;
            while pos < data.bytes.len() {
                let header = match BatchHeader::parse(&data.bytes[pos..], pos as u64, usize::MAX) {
                    Ok(h) => h,
                    Err(e) => {
                        log::warn!("replica {me}: a batch fetched for partition {p} does not parse: {e}");
                        break;
                    }
                };
                let size = header.size_in_bytes();
                if header.last_offset() >= fetch_offset {
                    let tx = tx.clone();
                    log.append_as_follower(
                        p,
                        data.bytes[pos..pos + size].to_vec(),
                        Box::new(move |r, _| {
                            let _ = tx.send(r);
                        }),
                    );
                    appended += 1;
                }
                pos += size;
            }
        }
        drop(tx);
        for _ in 0..appended {
            match rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("replica {me}: follower append failed: {e}"),
                Err(_) => break,
            }
        }
        if appended == 0 {
            shared.writes.wait(seen, Instant::now() + FETCH_WAIT_MAX);
        }
    }
}

/// Waits out the broker's fetch delay in short naps, so that a changed delay, a stop or a shutdown
/// takes effect at once. False when the round should not run (stopped, or shutting down).
fn slept_fetch_delay(shared: &Shared, me: usize) -> bool {
    let start = Instant::now();
    loop {
        if shared.shutdown.load(Ordering::Acquire) || !shared.alive[me].load(Ordering::Acquire) {
            return false;
        }
        let delay = Duration::from_nanos(shared.fetch_delay_ns[me].load(Ordering::Acquire));
        let left = delay.saturating_sub(start.elapsed());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}
