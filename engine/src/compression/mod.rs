//! Kafka's record-batch codecs (`compression.type`), each with the exact framing a broker writes.
//!
//! The records section of a batch is compressed as ONE stream; the 61-byte header never is.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// `compression.type`: the codec id stored in bits 0-2 of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompressionType {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip stream (id 1).
    Gzip,
    /// snappy in xerial snappy-java framing (id 2).
    Snappy,
    /// LZ4 frame with independent 64 KiB blocks (id 3).
    Lz4,
    /// zstd frame (id 4).
    Zstd,
}

impl CompressionType {
    /// Every codec, in id order.
    pub const ALL: [CompressionType; 5] = [
        CompressionType::None,
        CompressionType::Gzip,
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd,
    ];

    /// The id stored in the batch attributes.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The codec for an attributes id, if Kafka defines one.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// Kafka's configuration name of the codec.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::None => "none",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CompressionType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            Error::config("compression.type", format!("`{s}` is not one of none, gzip, snappy, lz4, zstd"))
        })
    }
}

mod gzip;
mod lz4;
mod snappy;
mod zstd;

/// Compresses `input` as one stream of `codec`, appending to `out`.
///
/// `level` is `compression.<codec>.level`; `None` takes Kafka's default (gzip 6, lz4 9, zstd 3).
pub fn compress(codec: CompressionType, level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match codec {
        CompressionType::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        CompressionType::Gzip => gzip::compress(level, input, out),
        CompressionType::Snappy => snappy::compress(input, out),
        CompressionType::Lz4 => lz4::compress(level, input, out),
        CompressionType::Zstd => zstd::compress(level, input, out),
    }
}

/// Decompresses one `codec` stream, appending to `out`; fails rather than produce more than `limit`
/// bytes in total.
pub fn decompress(codec: CompressionType, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    match codec {
        CompressionType::None => {
            if input.len() > limit {
                return Err(too_large(codec, limit));
            }
            out.extend_from_slice(input);
            Ok(())
        }
        CompressionType::Gzip => gzip::decompress(input, out, limit),
        CompressionType::Snappy => snappy::decompress(input, out, limit),
        CompressionType::Lz4 => lz4::decompress(input, out, limit),
        CompressionType::Zstd => zstd::decompress(input, out, limit),
    }
}

fn too_large(codec: CompressionType, limit: usize) -> Error {
    Error::Compression {
        codec: codec.name(),
        operation: "decompression",
        message: format!("output exceeds the limit of {limit} bytes"),
    }
}

fn codec_error(codec: CompressionType, operation: &'static str, e: impl fmt::Display) -> Error {
    Error::Compression { codec: codec.name(), operation, message: e.to_string() }
}

/// Reads all of `reader` into `out`, failing past `limit` total bytes of `out`.
fn read_limited(codec: CompressionType, mut reader: impl std::io::Read, out: &mut Vec<u8>, limit: usize) -> Result<()> {
    let allowed = (limit.saturating_sub(out.len()) as u64).saturating_add(1);
    use std::io::Read;
    let read = (&mut reader).take(allowed).read_to_end(out).map_err(|e| codec_error(codec, "decompression", e))?;
    if read as u64 == allowed {
        return Err(too_large(codec, limit));
    }
    Ok(())
}
