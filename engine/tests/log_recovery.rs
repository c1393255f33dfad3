//! Opening an existing log: torn and corrupt tails are cut, indexes rebuilt when missing or
//! corrupt, a hole in an older segment deletes what follows, offsets and producer state resume.

mod log_support;

use std::io::Write;

use kbench_engine::io::IoBackendKind;
use kbench_engine::log::{LogConfig, TopicLog};
use kbench_engine::record::ProducerIdentity;
use log_support::{append, batch, files, plain, read_all};

fn config() -> LogConfig {
    LogConfig {
        io: IoBackendKind::IoUring,
        segment_bytes: 8 * 1024,
        index_interval_bytes: 512,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// A closed log of `n` 2-record batches on partition 0; returns the records.
fn fill(dir: &std::path::Path, n: usize) -> Vec<(i64, String)> {
    let log = TopicLog::open(dir, "r", 1, config()).unwrap();
    for i in 0..n {
        append(&log, 0, plain(&format!("b{i}"), 2, 200, 1000 + i as i64)).unwrap();
    }
    let all = read_all(&log, 0);
    log.close().unwrap();
    all
}

fn segment_logs(log: &TopicLog) -> Vec<String> {
    files(log, 0).into_iter().filter(|n| n.ends_with(".log")).collect()
}

#[test]
fn a_torn_tail_is_cut_and_offsets_resume() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path(), 10);
    let path = dir.path().join("r-0").join("00000000000000000000.log");
    let clean_len = std::fs::metadata(&path).unwrap().len();
    // Half a batch at the end, as a crash in the middle of a write leaves it.
    let half = &plain("torn", 2, 200, 0)[..150];
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(half).unwrap();
    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), clean_len, "the torn batch is cut");
    assert_eq!(log.log_end_offset(0), 20);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(append(&log, 0, plain("next", 1, 1, 0)).unwrap().base_offset, 20);
}

#[test]
fn a_corrupt_batch_in_the_active_segment_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path(), 10);
    let path = dir.path().join("r-0").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let batch_len = bytes.len() / 10;
    bytes[6 * batch_len + 100] ^= 0x5a; // inside the 7th batch's records: its CRC no longer matches
    std::fs::write(&path, &bytes).unwrap();
    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    assert_eq!(log.log_end_offset(0), 12, "batches 0..6 survive, the corrupt one and later go");
    assert_eq!(read_all(&log, 0), before[..12].to_vec());
}

#[test]
fn missing_and_corrupt_indexes_of_older_segments_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path(), 120);
    let p = dir.path().join("r-0");
    let reference = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    let logs = segment_logs(&reference);
    assert!(logs.len() >= 3, "{logs:?}");
    let index0 = p.join(logs[0].replace(".log", ".index"));
    let good_index = std::fs::read(&index0).unwrap();
    let ts_lookup = reference.offset_for_timestamp(0, 1050).unwrap();
    reference.close().unwrap();
    drop(reference);

    std::fs::remove_file(&index0).unwrap();
    let time1 = p.join(logs[1].replace(".log", ".timeindex"));
    std::fs::write(&time1, [0xffu8; 36]).unwrap(); // timestamps out of order
    let index1 = p.join(logs[1].replace(".log", ".index"));
    std::fs::write(&index1, [0x7fu8; 13]).unwrap(); // not a whole number of entries

    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(std::fs::read(&index0).unwrap()[..good_index.len()], good_index[..], "rebuilt as it was");
    assert_eq!(log.offset_for_timestamp(0, 1050).unwrap(), ts_lookup);
    // Every offset is found through the rebuilt indexes.
    for o in (0..240).step_by(7) {
        let f = log.read(0, o, 1).unwrap();
        assert!(f.first_offset <= o && o < f.first_offset + 2, "offset {o} -> batch {}", f.first_offset);
    }
}

#[test]
fn a_hole_in_an_older_segment_truncates_it_and_deletes_every_later_segment() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path(), 120);
    let probe = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    let logs = segment_logs(&probe);
    probe.close().unwrap();
    drop(probe);
    // The second segment loses its tail (its last writes never landed before a crash).
    let second = dir.path().join("r-0").join(&logs[1]);
    let len = std::fs::metadata(&second).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&second).unwrap().set_len(len - 100).unwrap();
    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    let after = segment_logs(&log);
    assert_eq!(after, logs[..2].to_vec(), "segments after the hole are deleted");
    let kept = read_all(&log, 0);
    assert!(kept.len() < before.len());
    assert_eq!(kept[..], before[..kept.len()], "what is kept is a prefix of what was written");
    let next = append(&log, 0, plain("next", 1, 1, 0)).unwrap();
    assert_eq!(next.base_offset, kept.len() as i64);
}

#[test]
fn producer_state_is_rebuilt_so_a_retried_batch_is_still_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let id = |seq| ProducerIdentity { producer_id: 9, producer_epoch: 1, base_sequence: seq };
    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    for i in 0..4 {
        append(&log, 0, batch("p", 2, 10, 0, id(i * 2))).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let log = TopicLog::open(dir.path(), "r", 1, config()).unwrap();
    let again = append(&log, 0, batch("p", 2, 10, 0, id(6))).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.base_offset, again.last_offset), (6, 7));
    assert!(append(&log, 0, batch("p", 2, 10, 0, id(9))).is_err(), "a gap is still a gap");
    assert_eq!(append(&log, 0, batch("p", 2, 10, 0, id(8))).unwrap().base_offset, 8);
}
