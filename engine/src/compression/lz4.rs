//! lz4 codec: implemented by the codecs work item (this placeholder refuses, it never fakes output).

use super::{CompressionType, codec_error};
use crate::error::Result;

pub(super) fn compress(_level: Option<i32>, _input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
    Err(codec_error(CompressionType::Lz4, "compression", "not built yet"))
}

pub(super) fn decompress(_input: &[u8], _out: &mut Vec<u8>, _limit: usize) -> Result<()> {
    Err(codec_error(CompressionType::Lz4, "decompression", "not built yet"))
}
