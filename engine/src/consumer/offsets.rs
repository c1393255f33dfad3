//! Committed offsets, durable per group (Kafka keeps them in `__consumer_offsets`; here each group
//! has an append-only file `<dir>/<group>.offsets` of 16-byte records: partition (u32), offset (i64),
//! CRC-32C of the 12 bytes before it, big-endian). Opening replays the file; a torn or corrupt tail
//! (a crash mid-commit) is cut at the last whole record. The file is rewritten compactly once it
//! holds many superseded records.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const RECORD: usize = 16;
/// Superseded records tolerated before the file is rewritten with the live offsets only.
const COMPACT_AFTER: usize = 100_000;

/// One group's committed offsets.
#[derive(Debug)]
pub(crate) struct OffsetStore {
    path: PathBuf,
    file: File,
    offsets: BTreeMap<u32, i64>,
    records: usize,
}

fn encode(partition: u32, offset: i64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

impl OffsetStore {
    /// Opens (or creates) the store of `group` under `dir`.
    pub(crate) fn open(dir: &Path, group: &str) -> Result<OffsetStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create offsets directory", dir, e))?;
        let path = dir.join(format!("{group}.offsets"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("read committed offsets", &path, e)),
        };
        let mut offsets = BTreeMap::new();
        let mut good = 0;
        for rec in bytes.chunks_exact(RECORD) {
            let crc = u32::from_be_bytes(rec[12..16].try_into().expect("4 bytes"));
            if crc32c::crc32c(&rec[..12]) != crc {
                break;
            }
            let partition = u32::from_be_bytes(rec[..4].try_into().expect("4 bytes"));
            let offset = i64::from_be_bytes(rec[4..12].try_into().expect("8 bytes"));
            offsets.insert(partition, offset);
            good += RECORD;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open committed offsets", &path, e))?;
        if good < bytes.len() {
            log::warn!("{}: cut a torn or corrupt tail of {} bytes", path.display(), bytes.len() - good);
            file.set_len(good as u64).map_err(|e| Error::io("truncate committed offsets", &path, e))?;
        }
        Ok(OffsetStore { path, file, offsets, records: good / RECORD })
    }

    /// The committed offset of `partition`, if any.
    pub(crate) fn get(&self, partition: u32) -> Option<i64> {
        self.offsets.get(&partition).copied()
    }

    /// Every committed offset.
    #[cfg(test)]
    pub(crate) fn all(&self) -> &BTreeMap<u32, i64> {
        &self.offsets
    }

    /// Records `offsets`; with `sync`, fdatasyncs before returning (commitSync's durability).
    pub(crate) fn commit(&mut self, offsets: &BTreeMap<u32, i64>, sync: bool) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        if self.records > COMPACT_AFTER && self.records > 4 * self.offsets.len() {
            self.compact()?;
        }
        let mut buf = Vec::with_capacity(offsets.len() * RECORD);
        for (&p, &o) in offsets {
            encode(p, o, &mut buf);
        }
        self.file.write_all(&buf).map_err(|e| Error::io("write committed offsets", &self.path, e))?;
        if sync {
            self.file.sync_data().map_err(|e| Error::io("fdatasync committed offsets", &self.path, e))?;
        }
        self.offsets.extend(offsets);
        self.records += offsets.len();
        Ok(())
    }

    /// Rewrites the file with the live offsets (temporary file, fsync, rename).
    fn compact(&mut self) -> Result<()> {
        let tmp = self.path.with_extension("offsets.tmp");
        let mut buf = Vec::with_capacity(self.offsets.len() * RECORD);
        for (&p, &o) in &self.offsets {
            encode(p, o, &mut buf);
        }
        let write = || -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            OpenOptions::new().append(true).open(&self.path)
        };
        self.file = write().map_err(|e| Error::io("compact committed offsets", &self.path, e))?;
        self.records = self.offsets.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = OffsetStore::open(dir.path(), "g").unwrap();
        s.commit(&BTreeMap::from([(0, 10), (3, 7)]), true).unwrap();
        s.commit(&BTreeMap::from([(0, 12)]), false).unwrap();
        drop(s);
        let path = dir.path().join("g.offsets");
        // A crash mid-append: half a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3, 4, 5]).unwrap();
        drop(f);
        let s = OffsetStore::open(dir.path(), "g").unwrap();
        assert_eq!((s.get(0), s.get(3), s.get(1)), (Some(12), Some(7), None));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * RECORD as u64);
    }

    #[test]
    fn compaction_keeps_the_live_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = OffsetStore::open(dir.path(), "g").unwrap();
        s.records = COMPACT_AFTER + 1;
        s.commit(&BTreeMap::from([(1, 5)]), true).unwrap();
        s.commit(&BTreeMap::from([(2, 6)]), true).unwrap();
        assert_eq!(s.records, 2);
        drop(s);
        let s = OffsetStore::open(dir.path(), "g").unwrap();
        assert_eq!(s.all(), &BTreeMap::from([(1, 5), (2, 6)]));
    }
}
