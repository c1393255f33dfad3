//! Zig-zag LEB128 varints, as Kafka's `ByteUtils` writes them in v2 records.
//!
//! A varint carries an i32 (at most 5 bytes), a varlong an i64 (at most 10 bytes).

/// Maximum encoded size of a varint (i32).
pub const MAX_VARINT_LEN: usize = 5;
/// Maximum encoded size of a varlong (i64).
pub const MAX_VARLONG_LEN: usize = 10;

#[inline]
fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bytes needed to encode `v` as a zig-zag varint.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v))
}

/// Bytes needed to encode `v` as a zig-zag varlong.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

#[inline]
fn unsigned_len(u: u64) -> usize {
    // 7 payload bits per byte; `| 1` makes zero take one byte.
    let bits = 64 - (u | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `v` as a zig-zag varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, zigzag32(v));
}

/// Appends `v` as a zig-zag varlong.
#[inline]
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag64(v));
}

#[inline]
fn put_unsigned(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Writes `v` as a zig-zag varint at the start of `out`, returning the bytes written.
///
/// `out` must hold at least [`varint_len`]`(v)` bytes; this is for writing into a slot whose size was
/// computed beforehand (the lock-free accumulator writes records into claimed space).
#[inline]
pub fn write_varint(out: &mut [u8], v: i32) -> usize {
    write_unsigned(out, zigzag32(v))
}

/// Writes `v` as a zig-zag varlong at the start of `out`, returning the bytes written.
#[inline]
pub fn write_varlong(out: &mut [u8], v: i64) -> usize {
    write_unsigned(out, zigzag64(v))
}

#[inline]
fn write_unsigned(out: &mut [u8], mut u: u64) -> usize {
    let mut i = 0;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More continuation bytes than the type allows.
    TooLong,
}

/// Reads a zig-zag varint from the start of `input`: (value, bytes consumed).
#[inline]
pub fn read_varint(input: &[u8]) -> Result<(i32, usize), VarintError> {
    let (u, n) = read_unsigned(input, MAX_VARINT_LEN)?;
    if u > u64::from(u32::MAX) {
        return Err(VarintError::TooLong);
    }
    let u = u as u32;
    Ok((((u >> 1) as i32) ^ -((u & 1) as i32), n))
}

/// Reads a zig-zag varlong from the start of `input`: (value, bytes consumed).
#[inline]
pub fn read_varlong(input: &[u8]) -> Result<(i64, usize), VarintError> {
    let (u, n) = read_unsigned(input, MAX_VARLONG_LEN)?;
    Ok((((u >> 1) as i64) ^ -((u & 1) as i64), n))
}

#[inline]
fn read_unsigned(input: &[u8], max_len: usize) -> Result<(u64, usize), VarintError> {
    let mut u: u64 = 0;
    for (i, &b) in input.iter().take(max_len).enumerate() {
        u |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((u, i + 1));
        }
    }
    if input.len() < max_len { Err(VarintError::Truncated) } else { Err(VarintError::TooLong) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_zigzag_examples() {
        // Values from the protobuf/Kafka zig-zag table.
        let cases: [(i32, &[u8]); 6] =
            [(0, &[0x00]), (-1, &[0x01]), (1, &[0x02]), (-2, &[0x03]), (63, &[0x7e]), (-64, &[0x7f])];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "encoding {v}");
            assert_eq!(read_varint(bytes).unwrap(), (v, bytes.len()));
            assert_eq!(varint_len(v), bytes.len());
        }
        let mut out = Vec::new();
        put_varint(&mut out, 64);
        assert_eq!(out, [0x80, 0x01]);
    }

    #[test]
    fn extremes_round_trip() {
        for v in [i32::MIN, i32::MAX, 0, -1, 1 << 20] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(read_varint(&out).unwrap(), (v, out.len()));
            let mut slot = [0u8; MAX_VARINT_LEN];
            assert_eq!(write_varint(&mut slot, v), out.len());
            assert_eq!(&slot[..out.len()], &out[..]);
        }
        for v in [i64::MIN, i64::MAX, 0, -1, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(read_varlong(&out).unwrap(), (v, out.len()));
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(read_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0xff; 5]), Err(VarintError::TooLong));
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]), Err(VarintError::TooLong));
        assert_eq!(read_varlong(&[0xff; 10]), Err(VarintError::TooLong));
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
    }
}
