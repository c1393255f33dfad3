//! A case's workload turned into engine configs and thread settings.

use std::time::Duration;

use kbench_engine::CompressionType;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::LogConfig;
use kbench_engine::partitioner::PartitionerKind;
use kbench_engine::producer::AccumulatorKind;
use kbench_engine::producer::{Acks, ProducerConfig};
use kbench_engine::record::RecordHeader;

use super::consumers::{ConsumersPlan, consumer_config};
use super::replica_faults::ReplicaFault;
use crate::workload::{self, Case, EngineKind, KeySpec, SendMode, Sharing, ValueSpec};

/// Everything `case::run_case` needs.
#[derive(Debug, Clone)]
pub(crate) struct CasePlan {
    pub id: String,
    pub index: usize,
    pub topic: String,
    pub partitions: u32,
    pub log: LogConfig,
    pub producer: ProducerConfig,
    pub threads: u32,
    pub shared_producer: bool,
    pub sync: bool,
    pub pin_threads: bool,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub warmup: Duration,
    pub rate: f64,
    pub key: KeySpec,
    pub value: ValueSpec,
    pub headers: Vec<RecordHeader>,
    pub seed: u64,
    pub consumers: Option<ConsumersPlan>,
    /// Replica faults, in the order they are due.
    pub replica_faults: Vec<ReplicaFault>,
    /// `engine.kind: kafka`: the librdkafka side of the case.
    #[cfg(feature = "kafka")]
    pub kafka: Option<super::kafka::KafkaPlan>,
}

impl CasePlan {
    pub(crate) fn from_case(case: &Case) -> anyhow::Result<Self> {
        let w = &case.workload;
        if w.engine.kind == EngineKind::Kafka && !cfg!(feature = "kafka") {
            anyhow::bail!(
                "case {}: engine.kind: kafka: built without the `kafka` feature: cargo build --features kafka",
                case.id
            );
        }
        let t = &w.topic;
        let p = &w.producer;
        let compression = match p.compression_type {
            workload::Compression::None => CompressionType::None,
            workload::Compression::Gzip => CompressionType::Gzip,
            workload::Compression::Snappy => CompressionType::Snappy,
            workload::Compression::Lz4 => CompressionType::Lz4,
            workload::Compression::Zstd => CompressionType::Zstd,
        };
        let log = LogConfig {
            segment_bytes: t.segment_bytes.0,
            segment_ms: t.segment_ms,
            segment_index_bytes: t.segment_index_bytes.0.min(u64::from(u32::MAX)) as u32,
            index_interval_bytes: t.index_interval_bytes.0.min(u64::from(u32::MAX)) as u32,
            flush_messages: t.flush_messages,
            flush_ms: t.flush_ms,
            retention_ms: t.retention_ms.filter(|v| *v >= 0),
            retention_bytes: t.retention_bytes.filter(|v| *v >= 0),
            log_retention_check_interval_ms: t.log_retention_check_interval_ms,
            preallocate: t.preallocate,
            direct_io: t.direct_io,
            io: match w.engine.io {
                workload::IoKind::IoUring => IoBackendKind::IoUring,
                workload::IoKind::Pwrite => IoBackendKind::Pwrite,
                workload::IoKind::Discard => IoBackendKind::Discard,
                workload::IoKind::Sim => IoBackendKind::Sim,
            },
            replication_factor: t.replication_factor,
            min_insync_replicas: t.min_insync_replicas,
            replica_lag_time_max_ms: t.replica_lag_time_max_ms,
            unclean_leader_election_enable: t.unclean_leader_election_enable,
        };
        let producer = ProducerConfig {
            acks: match p.acks {
                workload::Acks::Zero => Acks::Zero,
                workload::Acks::One => Acks::One,
                workload::Acks::All => Acks::All,
            },
            batch_size: p.batch_size.0 as usize,
            linger: Duration::from_millis(p.linger_ms),
            buffer_memory: p.buffer_memory.0 as usize,
            max_block: Duration::from_millis(p.max_block_ms),
            max_request_size: p.max_request_size.0 as usize,
            compression,
            compression_level: match compression {
                CompressionType::Gzip => p.compression_gzip_level,
                CompressionType::Lz4 => p.compression_lz4_level,
                CompressionType::Zstd => p.compression_zstd_level,
                _ => None,
            },
            compression_threads: p
                .compression_threads
                .map_or_else(kbench_engine::producer::default_compression_threads, |n| n as usize),
            enable_idempotence: p.enable_idempotence,
            max_in_flight: p.max_in_flight,
            partitioner: match p.partitioner {
                workload::PartitionerKind::Default => PartitionerKind::Default,
                workload::PartitionerKind::RoundRobin => PartitionerKind::RoundRobin,
            },
            partitioner_ignore_keys: p.partitioner_ignore_keys,
            accumulator: match p.accumulator {
                workload::AccumulatorKind::Lockfree => AccumulatorKind::LockFree,
                workload::AccumulatorKind::Mutex => AccumulatorKind::Mutex,
            },
        };
        producer.validate().map_err(|e| anyhow::anyhow!("case {}: {e}", case.id))?;
        let mut value = w.records.value.clone();
        if let Some(file) = &value.file {
            value.file = Some(w.source.parent().unwrap_or(std::path::Path::new(".")).join(file));
        }
        Ok(CasePlan {
            id: case.id.clone(),
            index: case.index,
            topic: t.name.clone(),
            partitions: t.partitions,
            log,
            producer,
            threads: p.threads,
            shared_producer: p.sharing == Sharing::Shared,
            sync: p.send == SendMode::Sync,
            pin_threads: p.pin_threads,
            duration: w.records.duration.map(|d| d.0),
            count: w.records.count,
            warmup: w.records.warmup.0,
            rate: w.records.rate,
            key: w.records.key.clone(),
            value,
            headers: (0..w.records.headers)
                .map(|i| RecordHeader {
                    key: format!("h{i}"),
                    value: Some(format!("header-value-{i:04}").into_bytes()),
                })
                .collect(),
            seed: w.records.seed.wrapping_add(u64::from(case.repeat)),
            consumers: w.consumers.as_ref().map(|c| ConsumersPlan {
                members: c.members,
                strategy: c.strategy,
                workers: c.workers,
                commit: c.commit,
                config: consumer_config(c),
                processing: c.processing.0,
                faults: c.faults.iter().map(|f| (f.at.0, f.action)).collect(),
            }),
            replica_faults: ReplicaFault::schedule(&t.faults),
            #[cfg(feature = "kafka")]
            kafka: super::kafka::KafkaPlan::from_case(case)?,
        })
    }
}
