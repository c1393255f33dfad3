//! lz4: the LZ4 frame Kafka's `Lz4BlockOutputStream` writes.
//!
//! Writing, byte for byte the framing Kafka produces: magic `0x184D2204` (LE), FLG `0x60` (version
//! 01, independent blocks, no block checksum, no content size, no content checksum), BD `0x40`
//! (64 KiB blocks), header checksum `(xxhash32(FLG BD, seed 0) >> 8) & 0xFF`; then per 64 KiB of
//! input a u32 LE length (high bit set = stored uncompressed, used when compression does not shrink
//! the block) and the block; then the end mark u32 0.
//!
//! Levels (`compression.lz4.level`, 1..=17, default 9): Kafka compresses with lz4-java's *fast*
//! compressor (`LZ4_compress_default`, acceleration 1) at the default level and with the HC
//! compressor at any other level. We use lz4_flex, a pure-Rust implementation of the fast compressor
//! (the same greedy algorithm as `LZ4_compress_default`, whose output differs from liblz4's only in
//! the matches chosen). lz4_flex has no HC mode, so a non-default level is validated and accepted
//! but compressed with the fast compressor: the frame is still valid and Kafka-readable, only its
//! ratio is that of level 9. Binding liblz4 for HC would cost a C build for a setting Kafka users
//! rarely change; the default, which benchmarks use, matches Kafka's compressor class exactly.
//!
//! Reading accepts any conformant frame, as librdkafka or kafka-python may write: block and content
//! checksums (verified), a content size (verified), dependent blocks, any block size from 64 KiB to
//! 4 MiB, concatenated and skippable frames. Frames needing a preset dictionary are refused.

use super::{CompressionType, codec_error, too_large};
use crate::error::{Error, Result};
use lz4_flex::block::{CompressTable, DecompressError};
use twox_hash::XxHash32;

/// LZ4 frame magic number (stored little-endian).
pub(super) const MAGIC: u32 = 0x184D_2204;
/// Kafka's default level (`compression.lz4.level`).
pub(super) const DEFAULT_LEVEL: i32 = 9;
/// Lowest level Kafka accepts.
pub(super) const MIN_LEVEL: i32 = 1;
/// Highest level Kafka accepts (lz4's HC maximum).
pub(super) const MAX_LEVEL: i32 = 17;
/// Input bytes per block Kafka writes.
pub(super) const BLOCK_SIZE: usize = 64 * 1024;

/// FLG: version 01 (bits 6-7) and block independence (bit 5).
const FLG: u8 = 0b0110_0000;
/// BD: block maximum size code 4 (64 KiB) in bits 4-6.
const BD: u8 = 4 << 4;
const UNCOMPRESSED: u32 = 1 << 31;
/// Window a dependent block may reach back into.
const WINDOW: usize = 64 * 1024;

pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let level = level.unwrap_or(DEFAULT_LEVEL);
    if !(MIN_LEVEL..=MAX_LEVEL).contains(&level) {
        return Err(Error::config("compression.lz4.level", format!("{level} is outside {MIN_LEVEL}..={MAX_LEVEL}")));
    }
    let blocks = input.len().div_ceil(BLOCK_SIZE);
    out.reserve(7 + 4 + blocks * 4 + lz4_flex::block::get_maximum_output_size(input.len()));
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[FLG, BD, header_checksum(&[FLG, BD])]);
    let mut table = CompressTable::default();
    for block in input.chunks(BLOCK_SIZE) {
        let length_at = out.len();
        out.resize(length_at + 4 + lz4_flex::block::get_maximum_output_size(block.len()), 0);
        let written = lz4_flex::block::compress_into_with_table(block, &mut out[length_at + 4..], &mut table)
            .map_err(|e| codec_error(CompressionType::Lz4, "compression", e))?;
        let length = if written >= block.len() {
            // Incompressible: Kafka stores the block as is and flags it.
            out.truncate(length_at + 4);
            out.extend_from_slice(block);
            block.len() as u32 | UNCOMPRESSED
        } else {
            out.truncate(length_at + 4 + written);
            written as u32
        };
        out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

fn header_checksum(descriptor: &[u8]) -> u8 {
    (XxHash32::oneshot(0, descriptor) >> 8) as u8
}

pub(super) fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    if input.is_empty() {
        return Err(corrupt("the stream is empty, an LZ4 frame needs at least 7 bytes".into()));
    }
    let mut at = 0;
    while at < input.len() {
        at = frame(input, at, out, limit)?;
    }
    Ok(())
}

/// Reads little-endian u32 at `at`, or says what was cut short.
fn u32_at(input: &[u8], at: usize, what: &str) -> Result<u32> {
    input
        .get(at..)
        .and_then(|rest| rest.first_chunk::<4>())
        .map(|b| u32::from_le_bytes(*b))
        .ok_or_else(|| corrupt(format!("{what} at byte {at} is cut short")))
}

/// Decodes the frame (or skips the skippable frame) starting at byte `at`; returns where it ends.
fn frame(input: &[u8], at: usize, out: &mut Vec<u8>, limit: usize) -> Result<usize> {
    let magic = u32_at(input, at, "frame magic")?;
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        let size = u32_at(input, at + 4, "skippable frame size")? as usize;
        let end = (at + 8).saturating_add(size);
        if end > input.len() {
            return Err(corrupt(format!("skippable frame at byte {at} runs past the end")));
        }
        return Ok(end);
    }
    if magic != MAGIC {
        return Err(corrupt(format!("bad frame magic {magic:#010x} at byte {at}")));
    }
    let descriptor_at = at + 4;
    let (&flg, &bd) = match input.get(descriptor_at..descriptor_at + 2) {
        Some([flg, bd]) => (flg, bd),
        _ => return Err(corrupt(format!("frame descriptor at byte {descriptor_at} is cut short"))),
    };
    if flg >> 6 != 1 || flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
        return Err(corrupt(format!(
            "frame descriptor at byte {descriptor_at}: FLG {flg:#04x} BD {bd:#04x} are not LZ4 frame version 01"
        )));
    }
    let has_dict_id = flg & 0b1 != 0;
    let content_checksum = flg & 0b100 != 0;
    let has_content_size = flg & 0b1000 != 0;
    let block_checksum = flg & 0b1_0000 != 0;
    let independent = flg & 0b10_0000 != 0;
    let block_max = match (bd >> 4) & 0b111 {
        code @ 4..=7 => 1usize << (2 * code + 8),
        code => return Err(corrupt(format!("frame at byte {at}: block maximum size code {code} is not 4..=7"))),
    };
    let descriptor_len = 2 + if has_content_size { 8 } else { 0 } + if has_dict_id { 4 } else { 0 };
    let Some(descriptor) = input.get(descriptor_at..descriptor_at + descriptor_len + 1) else {
        return Err(corrupt(format!("frame descriptor at byte {descriptor_at} is cut short")));
    };
    let (fields, stored) = descriptor.split_at(descriptor_len);
    let computed = header_checksum(fields);
    if stored[0] != computed {
        return Err(corrupt(format!(
            "frame descriptor checksum at byte {}: stored {:#04x}, computed {computed:#04x}",
            descriptor_at + descriptor_len,
            stored[0]
        )));
    }
    if has_dict_id {
        return Err(corrupt(format!("frame at byte {at} needs a preset dictionary, which Kafka never uses")));
    }
    let content_size = has_content_size.then(|| u64::from_le_bytes(fields[2..10].try_into().expect("8 bytes")));

    let frame_start = out.len();
    let mut pos = descriptor_at + descriptor_len + 1;
    loop {
        let word = u32_at(input, pos, "block length")?;
        let block_at = pos;
        pos += 4;
        if word == 0 {
            break;
        }
        let size = (word & !UNCOMPRESSED) as usize;
        if size > block_max {
            return Err(corrupt(format!(
                "block at byte {block_at} declares {size} bytes, above the frame's block maximum {block_max}"
            )));
        }
        let trailer = if block_checksum { 4 } else { 0 };
        let Some(block) = input.get(pos..pos + size) else {
            return Err(corrupt(format!("block at byte {block_at} declares {size} bytes but the input ends first")));
        };
        if block_checksum {
            let stored = u32_at(input, pos + size, "block checksum")?;
            let computed = XxHash32::oneshot(0, block);
            if stored != computed {
                return Err(corrupt(format!(
                    "block checksum at byte {}: stored {stored:#010x}, computed {computed:#010x}",
                    pos + size
                )));
            }
        }
        if word & UNCOMPRESSED != 0 {
            if size > limit.saturating_sub(out.len()) {
                return Err(too_large(CompressionType::Lz4, limit));
            }
            out.extend_from_slice(block);
        } else {
            decompress_block(block, block_at, block_max, independent, frame_start, out, limit)?;
        }
        pos += size + trailer;
    }
    let produced = out.len() - frame_start;
    if content_checksum {
        let stored = u32_at(input, pos, "content checksum")?;
        let computed = XxHash32::oneshot(0, &out[frame_start..]);
        if stored != computed {
            return Err(corrupt(format!(
                "content checksum at byte {pos}: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        pos += 4;
    }
    if let Some(size) = content_size
        && size != produced as u64
    {
        return Err(corrupt(format!("frame at byte {at} declares {size} content bytes but holds {produced}")));
    }
    Ok(pos)
}

fn decompress_block(
    block: &[u8],
    block_at: usize,
    block_max: usize,
    independent: bool,
    frame_start: usize,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<()> {
    let start = out.len();
    let room = block_max.min(limit.saturating_sub(start));
    out.resize(start + room, 0);
    let (done, spare) = out.split_at_mut(start);
    let result = if independent {
        lz4_flex::block::decompress_into(block, spare)
    } else {
        let dict = &done[start.saturating_sub(WINDOW).max(frame_start)..];
        lz4_flex::block::decompress_into_with_dict(block, spare, dict)
    };
    match result {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(match e {
                DecompressError::OutputTooSmall { .. } if room < block_max => too_large(CompressionType::Lz4, limit),
                DecompressError::OutputTooSmall { .. } => {
                    corrupt(format!("block at byte {block_at} decompresses past the block maximum {block_max}"))
                }
                e => corrupt(format!("block at byte {block_at}: {e}")),
            })
        }
    }
}

fn corrupt(message: String) -> Error {
    codec_error(CompressionType::Lz4, "decompression", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(input, &mut out, usize::MAX).map(|()| out)
    }

    #[test]
    fn writes_kafkas_frame_header_and_end_mark() {
        let mut out = Vec::new();
        compress(None, b"", &mut out).unwrap();
        // Magic LE, FLG 0x60, BD 0x40, checksum byte, end mark. 0x82 is (xxh32([0x60, 0x40]) >> 8) & 0xff,
        // the byte every Kafka lz4 batch carries.
        assert_eq!(out, [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0, 0, 0, 0]);
        assert_eq!(decode(&out).unwrap(), b"");
    }

    #[test]
    fn splits_into_64_kib_blocks_and_stores_incompressible_ones() {
        let mut input: Vec<u8> = b"kafka ".iter().copied().cycle().take(BLOCK_SIZE).collect();
        let mut state = 0x1234_5678u32;
        input.extend((0..1100).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        }));
        let mut out = Vec::new();
        compress(Some(9), &input, &mut out).unwrap();
        let first = u32::from_le_bytes(out[7..11].try_into().unwrap());
        assert_eq!(first & UNCOMPRESSED, 0);
        let second_at = 11 + first as usize;
        let second = u32::from_le_bytes(out[second_at..second_at + 4].try_into().unwrap());
        // Random bytes do not shrink: stored raw with the high bit.
        assert_eq!(second, UNCOMPRESSED | 1100);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0]);
        assert_eq!(out.len(), second_at + 4 + 1100 + 4);
        assert_eq!(decode(&out).unwrap(), input);
    }

    #[test]
    fn level_is_validated_like_kafka() {
        let mut out = Vec::new();
        assert!(compress(Some(0), b"x", &mut out).is_err());
        assert!(compress(Some(18), b"x", &mut out).is_err());
        compress(Some(17), b"x", &mut out).unwrap();
        assert_eq!(decode(&out).unwrap(), b"x");
    }

    /// Builds a frame with every optional feature a conformant writer may use.
    fn frame_with(content: &[u8], flg: u8, dependent_split: usize) -> Vec<u8> {
        let mut out = MAGIC.to_le_bytes().to_vec();
        let mut descriptor = vec![flg, 0x70]; // 4 MiB blocks
        if flg & 0b1000 != 0 {
            descriptor.extend_from_slice(&(content.len() as u64).to_le_bytes());
        }
        out.extend_from_slice(&descriptor);
        out.push(header_checksum(&descriptor));
        let (a, b) = content.split_at(dependent_split);
        for (block, dict) in [(a, &b""[..]), (b, a)] {
            let compressed = lz4_flex::block::compress_with_dict(block, dict);
            out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
            out.extend_from_slice(&compressed);
            if flg & 0b1_0000 != 0 {
                out.extend_from_slice(&XxHash32::oneshot(0, &compressed).to_le_bytes());
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        if flg & 0b100 != 0 {
            out.extend_from_slice(&XxHash32::oneshot(0, content).to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_checksums_content_size_and_dependent_blocks() {
        let content: Vec<u8> = b"records records records ".iter().copied().cycle().take(5000).collect();
        // version 01, dependent blocks, block checksum, content size, content checksum.
        let flg = 0b0101_1100;
        let frame = frame_with(&content, flg, 2000);
        assert_eq!(decode(&frame).unwrap(), content);
        // Concatenated with a skippable frame and a Kafka frame.
        let mut more = frame.clone();
        more.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
        more.extend_from_slice(&3u32.to_le_bytes());
        more.extend_from_slice(b"abc");
        compress(None, b"tail", &mut more).unwrap();
        let mut expected = content.clone();
        expected.extend_from_slice(b"tail");
        assert_eq!(decode(&more).unwrap(), expected);

        let mut bad = frame.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&bad).unwrap_err().to_string().contains("content checksum"));
    }

    #[test]
    fn corrupt_frames_are_errors_that_name_the_byte() {
        let mut out = Vec::new();
        compress(None, &[7u8; 1000], &mut out).unwrap();
        let mut bad_header = out.clone();
        bad_header[6] ^= 0xff;
        assert!(decode(&bad_header).unwrap_err().to_string().contains("checksum at byte 6"));
        let e = decode(&out[..out.len() - 2]).unwrap_err().to_string();
        assert!(e.contains("block length at byte"), "{e}");
        let e = decode(&out[..12]).unwrap_err().to_string();
        assert!(e.contains("block at byte 7"), "{e}");
        assert!(decode(&[0x04, 0x22, 0x4d]).is_err());
        assert!(decode(b"").is_err());
        let mut too_big = out.clone();
        too_big[7..11].copy_from_slice(&(BLOCK_SIZE as u32 + 1).to_le_bytes());
        assert!(decode(&too_big).unwrap_err().to_string().contains("block maximum"));
    }

    #[test]
    fn limit_is_enforced() {
        let mut out = Vec::new();
        compress(None, &vec![0u8; 300_000], &mut out).unwrap();
        let mut decoded = Vec::new();
        let e = decompress(&out, &mut decoded, 100_000).unwrap_err();
        assert!(e.to_string().contains("limit of 100000"), "{e}");
        assert!(decoded.len() <= 100_000);
    }
}
