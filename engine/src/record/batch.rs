//! Reading record batches: a validated view of one batch, its records, and a walk over batches laid
//! back to back as in a `.log` segment.

use std::borrow::Cow;

use super::default_record::{RecordRef, decode_record};
use super::header::{BatchHeader, LOG_OVERHEAD, MAGIC_V2, RECORD_BATCH_OVERHEAD, compute_crc, offsets};
use crate::compression::{self, CompressionType};
use crate::error::{Corruption, Error, Result};

/// Largest batch a reader accepts unless told otherwise (Kafka's message.max.bytes default, 1 MiB,
/// with generous headroom for brokers configured larger).
pub const DEFAULT_MAX_BATCH_SIZE: usize = 64 * 1024 * 1024;

/// A record batch whose header, length and CRC have been validated. Borrows the bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    header: BatchHeader,
    bytes: &'a [u8],
    position: u64,
}

impl<'a> RecordBatch<'a> {
    /// Validates the batch at the start of `bytes`: complete header, magic 2, batchLength within
    /// `max_batch_size`, all bytes present, CRC-32C correct. `position` is the batch's byte position in
    /// its file, reported in errors.
    pub fn parse(bytes: &'a [u8], position: u64, max_batch_size: usize) -> Result<Self> {
        let header = BatchHeader::parse(bytes, position, max_batch_size)?;
        let size = header.size_in_bytes();
        if bytes.len() < size {
            return Err(Error::Truncated {
                position,
                what: "record batch",
                needed: size as u64,
                available: bytes.len() as u64,
            });
        }
        let bytes = &bytes[..size];
        let computed = compute_crc(bytes);
        if computed != header.crc {
            return Err(Error::CorruptBatch {
                position,
                reason: Corruption::CrcMismatch { stored: header.crc, computed },
            });
        }
        if header.records_count < 0 {
            return Err(Error::CorruptBatch {
                position,
                reason: Corruption::RecordCount { declared: header.records_count, found: -1 },
            });
        }
        Ok(RecordBatch { header, bytes, position })
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch exactly as stored, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Byte position of the batch in its file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Size on disk.
    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The stored (possibly compressed) records section.
    pub fn records_section(&self) -> &'a [u8] {
        &self.bytes[RECORD_BATCH_OVERHEAD..]
    }

    /// The records, decompressed when the batch is compressed.
    ///
    /// Decompression stops at `max_decompressed` bytes so a hostile batch cannot exhaust memory.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Records<'a>> {
        let section = self.records_section();
        let codec = self.header.attributes.compression;
        let data = if codec == CompressionType::None {
            Cow::Borrowed(section)
        } else {
            let mut out = Vec::with_capacity(section.len().saturating_mul(4).min(max_decompressed));
            compression::decompress(codec, section, &mut out, max_decompressed).map_err(|e| Error::CorruptBatch {
                position: self.position,
                reason: Corruption::Decompression(e.to_string()),
            })?;
            Cow::Owned(out)
        };
        Ok(Records { data, count: self.header.records_count, position: self.position })
    }

    /// [`records_with_limit`](Self::records_with_limit) with a limit of 64 x the batch size plus 1 MiB.
    pub fn records(&self) -> Result<Records<'a>> {
        self.records_with_limit(self.bytes.len().saturating_mul(64).saturating_add(1 << 20))
    }
}

/// A batch's records section, decompressed.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: Cow<'a, [u8]>,
    count: i32,
    position: u64,
}

impl Records<'_> {
    /// The decompressed records section.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Records the header declares.
    pub fn declared_count(&self) -> usize {
        self.count as usize
    }

    /// Iterates the records. Yields an error (then stops) at the first malformed record, or when the
    /// count of records disagrees with recordsCount.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter { data: &self.data, at: 0, index: 0, count: self.count as u32, position: self.position, done: false }
    }
}

/// Iterator over the records of one batch.
#[derive(Debug)]
pub struct RecordIter<'a> {
    data: &'a [u8],
    at: usize,
    index: u32,
    count: u32,
    position: u64,
    done: bool,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            if self.at != self.data.len() {
                return Some(Err(self.corrupt(Corruption::BadRecord {
                    index: self.index,
                    position: self.at as u64,
                    detail: "bytes left over after recordsCount records",
                })));
            }
            return None;
        }
        if self.at == self.data.len() {
            self.done = true;
            return Some(Err(
                self.corrupt(Corruption::RecordCount { declared: self.count as i32, found: i64::from(self.index) })
            ));
        }
        match decode_record(&self.data[self.at..]) {
            Ok((record, used)) => {
                self.at += used;
                self.index += 1;
                Some(Ok(record))
            }
            Err(detail) => {
                self.done = true;
                Some(Err(self.corrupt(Corruption::BadRecord { index: self.index, position: self.at as u64, detail })))
            }
        }
    }
}

impl RecordIter<'_> {
    fn corrupt(&self, reason: Corruption) -> Error {
        Error::CorruptBatch { position: self.position, reason }
    }
}

/// Walks batches laid back to back (a `.log` segment's contents).
///
/// Yields each valid batch; yields one error and stops at the first corrupt batch; stops cleanly —
/// yielding nothing more — at a partial batch at the end (a torn tail), which
/// [`partial_tail`](Self::partial_tail) then reports.
#[derive(Debug)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    at: usize,
    base_position: u64,
    max_batch_size: usize,
    finished: bool,
    partial_tail: Option<u64>,
}

impl<'a> BatchIter<'a> {
    /// Walks `bytes`, whose first byte is at `base_position` in its file.
    pub fn new(bytes: &'a [u8], base_position: u64) -> Self {
        Self::with_max_batch_size(bytes, base_position, DEFAULT_MAX_BATCH_SIZE)
    }

    /// As [`new`](Self::new) with a custom batch size limit.
    pub fn with_max_batch_size(bytes: &'a [u8], base_position: u64, max_batch_size: usize) -> Self {
        BatchIter { bytes, at: 0, base_position, max_batch_size, finished: false, partial_tail: None }
    }

    /// File position just past the last batch yielded: where valid data ends.
    pub fn valid_end(&self) -> u64 {
        self.base_position + self.at as u64
    }

    /// Position of an incomplete batch at the end of the input, if the walk stopped at one.
    pub fn partial_tail(&self) -> Option<u64> {
        self.partial_tail
    }

    fn stop_at_partial_tail(&mut self, position: u64) -> Option<Result<RecordBatch<'a>>> {
        self.finished = true;
        self.partial_tail = Some(position);
        None
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<RecordBatch<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.at == self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.at..];
        let position = self.base_position + self.at as u64;
        // As Kafka's FileLogInputStream: too few bytes to hold batchLength and magic, or a batch that
        // declares more bytes than remain, is a torn write at the tail and ends the walk cleanly; but
        // a batchLength or magic no writer produces is corruption even at the tail.
        let Some(prefix) = rest.first_chunk::<{ offsets::MAGIC + 1 }>() else {
            return self.stop_at_partial_tail(position);
        };
        let length = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
        let magic = prefix[offsets::MAGIC] as i8;
        let reason = if length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            Some(Corruption::BatchLengthTooSmall(length))
        } else if length as usize + LOG_OVERHEAD > self.max_batch_size {
            Some(Corruption::BatchLengthTooLarge { length, limit: self.max_batch_size })
        } else if magic != MAGIC_V2 {
            Some(Corruption::UnsupportedMagic(magic))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.finished = true;
            return Some(Err(Error::CorruptBatch { position, reason }));
        }
        if rest.len() < LOG_OVERHEAD + length as usize {
            return self.stop_at_partial_tail(position);
        }
        match RecordBatch::parse(rest, position, self.max_batch_size) {
            Ok(batch) => {
                self.at += batch.size_in_bytes();
                Some(Ok(batch))
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}
