//! snappy in xerial snappy-java framing, the stream Kafka's `SnappyOutputStream` writes.
//!
//! Layout: a 16-byte header (`0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00`, i32 BE version 1, i32 BE
//! compatible version 1), then per 32 KiB of input one i32 BE compressed length and one raw snappy
//! block. This is neither raw snappy nor Google's framing format. snappy has no levels.
//!
//! Reading also accepts what snappy-java's `SnappyInputStream` accepts: several xerial streams
//! concatenated (a header may reappear at any block boundary) and, when the magic is absent, one raw
//! snappy block.

use super::{CompressionType, codec_error, too_large};
use crate::error::Result;

/// The xerial stream magic.
pub(super) const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Header size: magic, version, compatible version.
pub(super) const HEADER_LEN: usize = 16;
/// Input bytes per block: snappy-java's default block size.
pub(super) const BLOCK_SIZE: usize = 32 * 1024;

const VERSION: i32 = 1;
const MIN_COMPATIBLE_VERSION: i32 = 1;

pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(HEADER_LEN + 4 * input.len().div_ceil(BLOCK_SIZE) + snap::raw::max_compress_len(input.len()));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&MIN_COMPATIBLE_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(BLOCK_SIZE) {
        let length_at = out.len();
        let max = snap::raw::max_compress_len(block.len());
        out.resize(length_at + 4 + max, 0);
        let written = encoder
            .compress(block, &mut out[length_at + 4..])
            .map_err(|e| codec_error(CompressionType::Snappy, "compression", e))?;
        out.truncate(length_at + 4 + written);
        // A block of at most 32 KiB compresses to far less than i32::MAX.
        out[length_at..length_at + 4].copy_from_slice(&(written as i32).to_be_bytes());
    }
    Ok(())
}

pub(super) fn decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    let mut decoder = snap::raw::Decoder::new();
    if !input.starts_with(&MAGIC) {
        return raw_block(&mut decoder, input, 0, out, limit);
    }
    let mut at = 0;
    while at < input.len() {
        let rest = &input[at..];
        if rest.starts_with(&MAGIC) {
            at += header(rest, at)?;
            continue;
        }
        let Some(length) = rest.first_chunk::<4>().map(|b| i32::from_be_bytes(*b)) else {
            return Err(corrupt(format!("block length at byte {at} is cut short ({} bytes left)", rest.len())));
        };
        let start = at + 4;
        let Some(end) = usize::try_from(length).ok().and_then(|l| start.checked_add(l)) else {
            return Err(corrupt(format!("block at byte {at} declares a negative length {length}")));
        };
        if end > input.len() {
            return Err(corrupt(format!(
                "block at byte {at} declares {length} bytes but only {} remain",
                input.len() - start
            )));
        }
        raw_block(&mut decoder, &input[start..end], start, out, limit)?;
        at = end;
    }
    Ok(())
}

/// Validates a stream header at the start of `rest` (found at byte `at`), returning its size.
fn header(rest: &[u8], at: usize) -> Result<usize> {
    let Some(header) = rest.first_chunk::<HEADER_LEN>() else {
        return Err(corrupt(format!("stream header at byte {at} is cut short ({} bytes left)", rest.len())));
    };
    let compatible = i32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    // snappy-java refuses streams that need a newer reader than format version 1.
    if compatible > VERSION {
        return Err(corrupt(format!("stream header at byte {at} needs format version {compatible}, this reads 1")));
    }
    Ok(HEADER_LEN)
}

/// Decompresses one raw snappy block that starts at byte `at` of the stream.
fn raw_block(decoder: &mut snap::raw::Decoder, block: &[u8], at: usize, out: &mut Vec<u8>, limit: usize) -> Result<()> {
    let length = snap::raw::decompress_len(block).map_err(|e| corrupt(format!("block at byte {at}: {e}")))?;
    let start = out.len();
    if length > limit.saturating_sub(start) {
        return Err(too_large(CompressionType::Snappy, limit));
    }
    out.resize(start + length, 0);
    match decoder.decompress(block, &mut out[start..]) {
        Ok(written) if written == length => Ok(()),
        Ok(written) => {
            out.truncate(start);
            Err(corrupt(format!("block at byte {at} declares {length} bytes but holds {written}")))
        }
        Err(e) => {
            out.truncate(start);
            Err(corrupt(format!("block at byte {at}: {e}")))
        }
    }
}

fn corrupt(message: String) -> crate::error::Error {
    codec_error(CompressionType::Snappy, "decompression", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(input, &mut out, usize::MAX).map(|()| out)
    }

    #[test]
    fn writes_the_xerial_header_and_one_block_per_32_kib() {
        let input: Vec<u8> = (0..BLOCK_SIZE * 2 + 10).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        compress(&input, &mut out).unwrap();
        assert_eq!(&out[..16], &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        let mut at = HEADER_LEN;
        let mut sizes = Vec::new();
        while at < out.len() {
            let len = i32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            let block = &out[at + 4..at + 4 + len];
            sizes.push(snap::raw::decompress_len(block).unwrap());
            at += 4 + len;
        }
        assert_eq!(at, out.len());
        assert_eq!(sizes, [BLOCK_SIZE, BLOCK_SIZE, 10]);
        assert_eq!(decode(&out).unwrap(), input);
    }

    #[test]
    fn empty_input_is_a_bare_header() {
        let mut out = Vec::new();
        compress(b"", &mut out).unwrap();
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(decode(&out).unwrap(), b"");
    }

    #[test]
    fn reads_raw_snappy_and_concatenated_streams() {
        let raw = snap::raw::Encoder::new().compress_vec(b"hello hello hello").unwrap();
        assert_eq!(decode(&raw).unwrap(), b"hello hello hello");
        let mut two = Vec::new();
        compress(b"first ", &mut two).unwrap();
        compress(b"second", &mut two).unwrap();
        assert_eq!(decode(&two).unwrap(), b"first second");
    }

    #[test]
    fn corrupt_streams_are_errors_that_name_the_byte() {
        let mut out = Vec::new();
        compress(b"some bytes worth compressing, some bytes worth compressing", &mut out).unwrap();
        for cut in [HEADER_LEN + 2, out.len() - 1] {
            let e = decode(&out[..cut]).unwrap_err().to_string();
            assert!(e.contains("at byte 16"), "{e}");
        }
        let mut negative = out.clone();
        negative[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(decode(&negative).unwrap_err().to_string().contains("negative length"));
        assert!(decode(&MAGIC).unwrap_err().to_string().contains("header at byte 0"));
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn limit_is_enforced_before_allocating() {
        let input = vec![b'a'; 100_000];
        let mut out = Vec::new();
        compress(&input, &mut out).unwrap();
        let mut decoded = Vec::new();
        let e = decompress(&out, &mut decoded, 50_000).unwrap_err();
        assert!(e.to_string().contains("limit of 50000"), "{e}");
        assert!(decoded.len() <= 50_000);
    }
}
