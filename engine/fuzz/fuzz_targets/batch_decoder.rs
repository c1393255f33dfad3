//! Walks arbitrary bytes as a `.log` segment: every batch, every record, every header.
//!
//! Random bytes almost never carry a valid CRC-32C, which would stop the walk before the records or
//! codecs are reached; so each input is walked twice, as given and with every complete batch's CRC
//! patched to match its bytes.
#![no_main]

use kbench_engine::record::{BatchIter, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, finish_crc};
use libfuzzer_sys::fuzz_target;

/// Small enough that a hostile length cannot make a run allocate much.
const MAX_BATCH: usize = 1 << 20;

fn walk(bytes: &[u8]) {
    let mut iter = BatchIter::with_max_batch_size(bytes, 0, MAX_BATCH);
    for batch in iter.by_ref() {
        let Ok(batch) = batch else { break };
        let h = batch.header();
        let _ = (h.last_offset(), h.last_sequence());
        let Ok(records) = batch.records_with_limit(4 * MAX_BATCH) else { continue };
        for record in records.iter() {
            let Ok(record) = record else { break };
            for header in record.headers() {
                std::hint::black_box(header);
            }
        }
    }
    let _ = (iter.valid_end(), iter.partial_tail());
}

fn patch_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while bytes.len() - at >= RECORD_BATCH_OVERHEAD {
        let length = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        let Ok(length) = usize::try_from(length) else { return };
        let end = at + LOG_OVERHEAD + length;
        if length < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD || end > bytes.len() {
            return;
        }
        finish_crc(&mut bytes[at..end]);
        at = end;
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data);
    let mut patched = data.to_vec();
    patch_crcs(&mut patched);
    walk(&patched);
});
