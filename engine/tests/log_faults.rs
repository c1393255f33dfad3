//! Faults reach the producers as errors naming the file, and the log stays readable up to the last
//! good batch: a real ENOSPC on a tiny tmpfs made by the test (skipped, saying so, where mounting is
//! not permitted).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kbench_engine::Error;
use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kbench_engine::record::BatchIter;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn enospc_fails_the_waiting_sends_with_the_file_and_keeps_the_log_readable() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); ENOSPC not tested");
        return;
    }
    let _mount = Mount(dir.path().to_path_buf());
    for io in [IoBackendKind::Pwrite, IoBackendKind::IoUring] {
        let data = dir.path().join(io.to_string());
        let config = LogConfig { io, segment_index_bytes: 4096, ..LogConfig::default() };
        let log = Arc::new(TopicLog::open(&data, "full", 1, config.clone()).unwrap());
        let producer = Producer::new(
            ProducerConfig { acks: Acks::One, linger: Duration::ZERO, ..ProducerConfig::default() },
            Arc::clone(&log),
            None,
        )
        .unwrap();
        let value = vec![7u8; 10_000];
        let mut first_error = None;
        let mut acked = Vec::new();
        for _ in 0..400 {
            match producer.send(&ProducerRecord::new(None, &value)).unwrap().get() {
                Ok(m) => acked.push(m.offset),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        let e = first_error.expect("a 1 MiB filesystem must fill up");
        let text = e.to_string();
        assert!(matches!(e, Error::Io { .. }), "{io}: {text}");
        assert!(
            text.contains("00000000000000000000.log") || text.contains("full-0"),
            "{io}: the error names no file: {text}"
        );
        assert!(text.to_lowercase().contains("space"), "{io}: not ENOSPC: {text}");
        producer.close().unwrap();
        // Everything acknowledged is still served, and nothing beyond it.
        assert_eq!(log.log_end_offset(0), acked.len() as i64, "{io}");
        let fetch = log.read(0, 0, usize::MAX).unwrap();
        let served: usize = BatchIter::new(&fetch.bytes, 0).map(|b| b.unwrap().header().records_count as usize).sum();
        assert_eq!(served, acked.len(), "{io}");
        drop(log);
        std::fs::remove_dir_all(&data).unwrap();
    }
}
