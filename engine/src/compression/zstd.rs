//! zstd: standard zstd frames. Default level 3 (`compression.zstd.level`).

use super::{CompressionType, codec_error, read_limited};
use crate::error::{Error, Result};
use std::io::Write;

/// Kafka's default zstd level.
pub(super) const DEFAULT_LEVEL: i32 = 3;

pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let level = level.unwrap_or(DEFAULT_LEVEL);
    let range = ::zstd::compression_level_range();
    if !range.contains(&level) {
        return Err(Error::config("compression.zstd.level", format!("{level} is outside {range:?}")));
    }
    let mut encoder = ::zstd::stream::write::Encoder::new(out, level)
        .map_err(|e| codec_error(CompressionType::Zstd, "compression", e))?;
    encoder.write_all(input).map_err(|e| codec_error(CompressionType::Zstd, "compression", e))?;
    encoder.finish().map_err(|e| codec_error(CompressionType::Zstd, "compression", e))?;
    Ok(())
}

pub(super) fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    let decoder = ::zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| codec_error(CompressionType::Zstd, "decompression", e))?;
    read_limited(CompressionType::Zstd, decoder, out, limit)
}
