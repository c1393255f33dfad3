//! The simulated disk's model, one behaviour per test, and the real-file storage on the same calls.

use std::path::Path;
use std::time::Duration;

use super::super::storage::{FsStorage, Storage};
use super::{SECTOR, SimDisk};

fn disk(seed: u64) -> SimDisk {
    let d = SimDisk::new(seed);
    d.create_dir_all(Path::new("/d")).unwrap();
    d
}

fn read_all(s: &dyn Storage, path: &str) -> std::io::Result<Vec<u8>> {
    let f = s.open(Path::new(path))?;
    let mut buf = vec![0u8; s.len(f)? as usize];
    let n = s.read_at(f, 0, &mut buf)?;
    buf.truncate(n);
    s.close(f);
    Ok(buf)
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn a_process_crash_keeps_the_page_cache_and_drops_the_handles() {
    let d = disk(1);
    let f = d.create(Path::new("/d/a")).unwrap();
    d.write_at(f, 0, &[b"hello ", b"world"]).unwrap();
    d.crash();
    assert_eq!(errno(&d.len(f).unwrap_err()), libc::EBADF);
    assert_eq!(read_all(&d, "/d/a").unwrap(), b"hello world");
}

#[test]
fn a_power_loss_keeps_only_what_fsyncs_made_durable() {
    let d = disk(1);
    let f = d.create(Path::new("/d/synced")).unwrap();
    d.write_at(f, 0, &[&[7u8; 1000]]).unwrap();
    d.sync_data(f).unwrap();
    d.sync_dir(Path::new("/d")).unwrap();
    let g = d.create(Path::new("/d/entry-not-synced")).unwrap();
    d.write_at(g, 0, &[b"x"]).unwrap();
    d.sync_data(g).unwrap();
    d.power_loss();
    assert_eq!(read_all(&d, "/d/synced").unwrap(), vec![7u8; 1000]);
    // Its data was synced but its directory entry never was.
    assert_eq!(errno(&read_all(&d, "/d/entry-not-synced").unwrap_err()), libc::ENOENT);
    assert_eq!(d.list(Path::new("/d")).unwrap(), ["synced"]);
}

/// What one power loss leaves of 16 unsynced sectors written over 16 synced ones.
fn torn(seed: u64) -> Vec<u8> {
    let d = disk(seed);
    let f = d.create(Path::new("/d/log")).unwrap();
    let sectors = 16 * SECTOR as usize;
    d.write_at(f, 0, &[&vec![b'o'; sectors]]).unwrap();
    d.sync_data(f).unwrap();
    d.sync_dir(Path::new("/d")).unwrap();
    d.write_at(f, 0, &[&vec![b'n'; sectors]]).unwrap();
    d.power_loss();
    read_all(&d, "/d/log").unwrap()
}

#[test]
fn a_write_in_flight_at_a_power_loss_is_torn_at_sectors_deterministically_per_seed() {
    let mut kept = 0;
    let mut dropped = 0;
    for seed in 0..8 {
        let after = torn(seed);
        assert_eq!(after, torn(seed), "seed {seed} is not deterministic");
        assert_eq!(after.len(), 16 * SECTOR as usize);
        for sector in after.chunks(SECTOR as usize) {
            // Whole sectors: all old or all new.
            assert!(sector.iter().all(|&b| b == sector[0]), "seed {seed}: a sector is mixed");
            if sector[0] == b'n' { kept += 1 } else { dropped += 1 }
        }
    }
    assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}: the tear never varies");
}

#[test]
fn a_failed_fsync_is_reported_once_and_drops_the_dirty_pages() {
    let d = disk(3);
    let f = d.create(Path::new("/d/log")).unwrap();
    d.write_at(f, 0, &[b"durable"]).unwrap();
    d.sync_data(f).unwrap();
    d.sync_dir(Path::new("/d")).unwrap();
    d.write_at(f, 7, &[b"-lost"]).unwrap();
    d.fail_next_sync(Path::new("/d/log"));
    assert_eq!(errno(&d.sync_data(f).unwrap_err()), libc::EIO);
    // Linux's semantics: the next fsync "succeeds", and the bytes are gone all the same.
    d.sync_data(f).unwrap();
    assert_eq!(read_all(&d, "/d/log").unwrap(), b"durable");
    d.power_loss();
    assert_eq!(read_all(&d, "/d/log").unwrap(), b"durable");
}

#[test]
fn a_full_disk_refuses_writes_and_allocations_past_its_capacity() {
    let d = disk(4);
    d.set_capacity(Some(1000));
    let f = d.create(Path::new("/d/log")).unwrap();
    d.write_at(f, 0, &[&[1u8; 600]]).unwrap();
    assert_eq!(errno(&d.write_at(f, 600, &[&[2u8; 401]]).unwrap_err()), libc::ENOSPC);
    assert_eq!(errno(&d.allocate(f, 2000).unwrap_err()), libc::ENOSPC);
    d.write_at(f, 600, &[&[2u8; 400]]).unwrap();
    assert_eq!(d.len(f).unwrap(), 1000);
}

#[test]
fn the_chosen_write_and_read_fail_with_eio_and_only_they() {
    let d = disk(5);
    let f = d.create(Path::new("/d/log")).unwrap();
    d.fail_write(2);
    d.write_at(f, 0, &[b"a"]).unwrap();
    assert_eq!(errno(&d.write_at(f, 1, &[b"b"]).unwrap_err()), libc::EIO);
    d.write_at(f, 1, &[b"c"]).unwrap();
    d.fail_read(1);
    let mut buf = [0u8; 2];
    assert_eq!(errno(&d.read_at(f, 0, &mut buf).unwrap_err()), libc::EIO);
    assert_eq!(d.read_at(f, 0, &mut buf).unwrap(), 2);
    assert_eq!(&buf, b"ac");
}

#[test]
fn renames_and_removals_are_durable_only_after_a_directory_fsync() {
    let d = disk(6);
    for name in ["/d/a", "/d/b"] {
        let f = d.create(Path::new(name)).unwrap();
        d.write_at(f, 0, &[name.as_bytes()]).unwrap();
        d.sync_data(f).unwrap();
    }
    d.sync_dir(Path::new("/d")).unwrap();
    d.rename(Path::new("/d/a"), Path::new("/d/c")).unwrap();
    d.remove(Path::new("/d/b")).unwrap();
    assert_eq!(d.list(Path::new("/d")).unwrap(), ["c"]);
    d.power_loss();
    // Neither change was made durable: both files are back under their old names.
    assert_eq!(d.list(Path::new("/d")).unwrap(), ["a", "b"]);
    d.rename(Path::new("/d/a"), Path::new("/d/c")).unwrap();
    d.sync_dir(Path::new("/d")).unwrap();
    d.power_loss();
    assert_eq!(read_all(&d, "/d/c").unwrap(), b"/d/a");
    assert_eq!(d.list(Path::new("/d")).unwrap(), ["b", "c"]);
}

#[test]
fn a_latency_spike_slows_the_operation_and_changes_nothing_else() {
    let d = disk(7);
    d.set_latency(Some((1.0, Duration::from_millis(1))));
    let f = d.create(Path::new("/d/log")).unwrap();
    d.write_at(f, 0, &[b"slow"]).unwrap();
    d.set_latency(None);
    assert_eq!(read_all(&d, "/d/log").unwrap(), b"slow");
}

#[test]
fn the_real_filesystem_answers_the_same_calls() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::new();
    let sub = dir.path().join("t-0");
    s.create_dir_all(&sub).unwrap();
    let f = s.create(&sub.join("a.log")).unwrap();
    s.write_at(f, 0, &[b"hello ", b"world"]).unwrap();
    s.sync_data(f).unwrap();
    s.allocate(f, 4096).unwrap();
    assert_eq!(s.len(f).unwrap(), 4096);
    s.set_len(f, 11).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(s.read_at(f, 0, &mut buf).unwrap(), 11);
    assert_eq!(&buf[..11], b"hello world");
    s.close(f);
    assert_eq!(errno(&s.len(f).unwrap_err()), libc::EBADF);
    s.rename(&sub.join("a.log"), &sub.join("b.log")).unwrap();
    s.sync_dir(&sub).unwrap();
    assert_eq!(s.list(&sub).unwrap(), ["b.log"]);
    s.remove(&sub.join("b.log")).unwrap();
    assert!(s.list(&sub).unwrap().is_empty());
    assert_eq!(errno(&s.open(&sub.join("b.log")).unwrap_err()), libc::ENOENT);
}
