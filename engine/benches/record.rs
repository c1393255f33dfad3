//! The record layer: encoding and decoding RecordBatch v2, CRC-32C, and each codec with Kafka's
//! framing and default level, all with Throughput::Bytes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kbench_engine::CompressionType;
use kbench_engine::compression::{compress, decompress};
use kbench_engine::record::{BatchBuilder, RecordBatch, compute_crc};

/// JSON order events like the harness's `json` payload: compressible the way real events are.
fn json_events(total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + 256);
    let mut i = 0u64;
    while out.len() < total {
        let e = format!(
            "{{\"order_id\":\"ord-{i:010}\",\"customer_id\":{},\"amount\":{}.{:02},\"currency\":\"{}\",\"ts\":{}}}",
            (i * 7919) % 500_000,
            (i * 31) % 2000,
            i % 100,
            ["EUR", "USD", "GBP"][(i % 3) as usize],
            1_795_000_000_000u64 + i * 13
        );
        out.extend_from_slice(e.as_bytes());
        i += 1;
    }
    out.truncate(total);
    out
}

/// Incompressible bytes (xorshift).
fn random_bytes(total: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..total)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn build(record_size: usize, batch_bytes: usize, codec: CompressionType) -> (BatchBuilder, usize) {
    let values = json_events(batch_bytes);
    let mut b = BatchBuilder::new(codec);
    let mut n = 0;
    for (i, v) in values.chunks(record_size).enumerate() {
        b.append(1_795_000_000_000 + i as i64, Some(&(i as u64).to_be_bytes()), Some(v), &[]);
        n += v.len();
    }
    (b, n)
}

fn encode_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for &batch in &[16 * 1024, 1024 * 1024] {
        for &record in &[10usize, 100, 1000] {
            let (builder, bytes) = build(record, batch, CompressionType::None);
            g.throughput(Throughput::Bytes(bytes as u64));
            let id = format!("{}KiB/{record}B", batch / 1024);
            g.bench_function(BenchmarkId::new("encode", &id), |b| b.iter(|| black_box(builder.build(0).unwrap())));
            let encoded = builder.build(0).unwrap();
            g.bench_function(BenchmarkId::new("decode", &id), |b| {
                b.iter(|| {
                    let batch = RecordBatch::parse(&encoded, 0, usize::MAX).unwrap();
                    let records = batch.records().unwrap();
                    let mut sum = 0usize;
                    for r in records.iter() {
                        sum += r.unwrap().value.map_or(0, <[u8]>::len);
                    }
                    black_box(sum)
                })
            });
        }
    }
    g.finish();
}

fn crc(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc32c");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for &size in &[4 * 1024, 64 * 1024, 1024 * 1024] {
        let data = random_bytes(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter(size), |b| b.iter(|| black_box(compute_crc(&data))));
    }
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let size = 256 * 1024;
    for (name, data) in [("json", json_events(size)), ("random", random_bytes(size))] {
        for codec in CompressionType::ALL.into_iter().filter(|c| *c != CompressionType::None) {
            g.throughput(Throughput::Bytes(size as u64));
            let mut out = Vec::with_capacity(size * 2);
            g.bench_function(BenchmarkId::new(format!("{}/compress", codec.name()), name), |b| {
                b.iter(|| {
                    out.clear();
                    compress(codec, None, &data, &mut out).unwrap();
                    black_box(out.len())
                })
            });
            let mut compressed = Vec::new();
            compress(codec, None, &data, &mut compressed).unwrap();
            let mut plain = Vec::with_capacity(size);
            g.bench_function(BenchmarkId::new(format!("{}/decompress", codec.name()), name), |b| {
                b.iter(|| {
                    plain.clear();
                    decompress(codec, &compressed, &mut plain, usize::MAX).unwrap();
                    black_box(plain.len())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, encode_decode, crc, codecs);
criterion_main!(benches);
