//! gzip: a standard gzip member, as Java's GZIPOutputStream writes it. Default level 6
//! (`compression.gzip.level`, Deflater.DEFAULT_COMPRESSION).

use super::{CompressionType, codec_error, read_limited};
use crate::error::{Error, Result};
use std::io::Write;

/// Kafka's default gzip level.
pub(super) const DEFAULT_LEVEL: i32 = 6;

pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    // Kafka accepts 1..=9 and Deflater.DEFAULT_COMPRESSION (-1), which zlib maps to 6.
    let level = match level.unwrap_or(DEFAULT_LEVEL) {
        -1 => DEFAULT_LEVEL,
        level @ 1..=9 => level,
        level => {
            return Err(Error::config("compression.gzip.level", format!("{level} is neither -1 nor in 1..=9")));
        }
    };
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(level as u32));
    encoder.write_all(input).map_err(|e| codec_error(CompressionType::Gzip, "compression", e))?;
    encoder.finish().map_err(|e| codec_error(CompressionType::Gzip, "compression", e))?;
    Ok(())
}

pub(super) fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    read_limited(CompressionType::Gzip, flate2::read::MultiGzDecoder::new(input), out, limit)
}
