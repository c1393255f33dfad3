//! Record values: `random` (incompressible), `text` (log lines), `json` (order events), `file` (lines
//! of a file). A pool of distinct values is made up front and cycled, so `next` costs nothing.

use std::fmt::Write as _;

use anyhow::Context;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::workload::{Payload, ValueSpec};

/// Distinct values in the pool, at least: enough that a codec cannot just learn a handful of records.
const POOL: usize = 1024;
/// Bytes the pool holds at least (when values are small): well past the largest batch a workload
/// is likely to build, so no batch sees a value twice and random stays incompressible.
const POOL_MIN_BYTES: usize = 16 << 20;
/// Bytes the pool may hold at most.
const POOL_BYTES: usize = 64 << 20;

/// Cycles through pre-made values.
#[derive(Debug)]
pub(crate) struct PayloadGenerator {
    data: Vec<u8>,
    bounds: Vec<(usize, usize)>,
    next: usize,
}

const WORDS: &[&str] = &[
    "request",
    "completed",
    "user",
    "session",
    "cache",
    "miss",
    "hit",
    "order",
    "payment",
    "accepted",
    "declined",
    "retry",
    "timeout",
    "connection",
    "established",
    "closed",
    "warehouse",
    "shipment",
    "queued",
    "processed",
    "latency",
    "ms",
    "service",
    "checkout",
    "inventory",
    "updated",
    "item",
    "customer",
    "login",
    "logout",
    "error",
    "info",
    "debug",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY", "CHF"];
const STATUSES: &[&str] = &["created", "paid", "shipped", "delivered", "cancelled"];

impl PayloadGenerator {
    pub(crate) fn new(spec: &ValueSpec, seed: u64) -> anyhow::Result<Self> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let size = spec.size.0 as usize;
        let mut values: Vec<Vec<u8>> = Vec::new();
        match spec.payload {
            Payload::File => {
                let path = spec.file.as_ref().context("payload: file needs records.value.file")?;
                let text = std::fs::read(path).with_context(|| format!("reading payload file {}", path.display()))?;
                values =
                    text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).take(POOL * 64).collect();
                if values.is_empty() {
                    anyhow::bail!("payload file {} has no non-empty line", path.display());
                }
            }
            kind => {
                let count = POOL.max(POOL_MIN_BYTES / size.max(1)).min((POOL_BYTES / size.max(1)).max(1));
                for i in 0..count {
                    values.push(match kind {
                        Payload::Random => (0..size).map(|_| rng.random::<u8>()).collect(),
                        Payload::Text => text_value(&mut rng, size),
                        _ => json_value(&mut rng, size, i as u64 + seed * 1_000_003),
                    });
                }
            }
        }
        let mut data = Vec::with_capacity(values.iter().map(Vec::len).sum());
        let mut bounds = Vec::with_capacity(values.len());
        for v in values {
            bounds.push((data.len(), data.len() + v.len()));
            data.extend_from_slice(&v);
        }
        Ok(PayloadGenerator { data, bounds, next: 0 })
    }

    /// The next value.
    #[inline]
    pub(crate) fn next(&mut self) -> &[u8] {
        let (a, b) = self.bounds[self.next];
        self.next += 1;
        if self.next == self.bounds.len() {
            self.next = 0;
        }
        &self.data[a..b]
    }
}

fn fit(mut s: String, size: usize, rng: &mut SmallRng) -> Vec<u8> {
    while s.len() < size {
        s.push(' ');
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s.truncate(size);
    s.into_bytes()
}

fn text_value(rng: &mut SmallRng, size: usize) -> Vec<u8> {
    let mut s = format!(
        "2026-11-23T{:02}:{:02}:{:02}.{:03}Z {} [{}]",
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
        rng.random_range(0..1000),
        ["INFO", "WARN", "DEBUG", "ERROR"][rng.random_range(0..4)],
        ["api", "db", "worker", "auth"][rng.random_range(0..4)]
    );
    for _ in 0..rng.random_range(3..12) {
        s.push(' ');
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    let _ = write!(s, " id={}", rng.random_range(100_000..999_999));
    fit(s, size, rng)
}

fn json_value(rng: &mut SmallRng, size: usize, n: u64) -> Vec<u8> {
    let mut s = format!(
        "{{\"order_id\":\"ord-{n:010}\",\"customer_id\":{},\"amount\":{}.{:02},\"currency\":\"{}\",\"status\":\"{}\",\"ts\":{},\"items\":[",
        rng.random_range(1..500_000),
        rng.random_range(1..2000),
        rng.random_range(0..100),
        CURRENCIES[rng.random_range(0..CURRENCIES.len())],
        STATUSES[rng.random_range(0..STATUSES.len())],
        1_795_000_000_000u64 + rng.random_range(0..86_400_000)
    );
    let mut first = true;
    while s.len() + 60 < size {
        if !first {
            s.push(',');
        }
        first = false;
        let _ = write!(
            s,
            "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"price\":{}.{:02}}}",
            rng.random_range(0..20_000),
            rng.random_range(1..5),
            rng.random_range(1..300),
            rng.random_range(0..100)
        );
    }
    s.push_str("]}");
    if s.len() > size {
        // Very small sizes: keep the first bytes (the event's head), still JSON-like text.
        s.truncate(size);
        return s.into_bytes();
    }
    let pad = size - s.len();
    s.truncate(s.len() - 1);
    let _ = write!(s, ",\"note\":\"{}\"}}", " ".repeat(pad.saturating_sub(10)));
    fit(s, size, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::units::Size;
    use kbench_engine::CompressionType;

    fn ratio(payload: Payload, size: u64) -> f64 {
        let mut g = PayloadGenerator::new(&ValueSpec { size: Size(size), payload, file: None }, 3).unwrap();
        let mut sample = Vec::new();
        for _ in 0..2000 {
            let v = g.next();
            assert_eq!(v.len() as u64, size);
            sample.extend_from_slice(v);
        }
        let mut out = Vec::new();
        kbench_engine::compression::compress(CompressionType::Zstd, None, &sample, &mut out).unwrap();
        out.len() as f64 / sample.len() as f64
    }

    #[test]
    fn payloads_have_their_size_and_compressibility() {
        let random = ratio(Payload::Random, 200);
        let json = ratio(Payload::Json, 200);
        let text = ratio(Payload::Text, 200);
        assert!(random > 0.95, "random must not compress: {random}");
        assert!((0.1..0.6).contains(&json), "json should compress like events: {json}");
        assert!((0.1..0.6).contains(&text), "text should compress like logs: {text}");
    }
}
