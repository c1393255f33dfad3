//! snappy codec: implemented by the codecs work item (this placeholder refuses, it never fakes output).

use super::{CompressionType, codec_error};
use crate::error::Result;

pub(super) fn compress(_input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
    Err(codec_error(CompressionType::Snappy, "compression", "not built yet"))
}

pub(super) fn decompress(_input: &[u8], _out: &mut Vec<u8>, _limit: usize) -> Result<()> {
    Err(codec_error(CompressionType::Snappy, "decompression", "not built yet"))
}
