//! Feeds arbitrary bytes to every codec's decompressor (the first byte picks the codec), under a
//! small output limit.
#![no_main]

use kbench_engine::{CompressionType, compression};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let codec = CompressionType::ALL[usize::from(selector) % CompressionType::ALL.len()];
    let mut out = Vec::new();
    if compression::decompress(codec, input, &mut out, 1 << 20).is_ok() {
        assert!(out.len() <= 1 << 20);
    }
});
