//! One v2 record inside a batch's records section (Kafka's `DefaultRecord`): encoding into a pre-sized slot or a `Vec`, and
//! zero-copy decoding.
//!
//! Layout (all varints zig-zag): length, attributes (i8, 0), timestampDelta (varlong), offsetDelta,
//! keyLength (-1 = null) + key, valueLength (-1 = null) + value, headerCount, then per header
//! keyLength + UTF-8 key and valueLength (-1 = null) + value.

use super::varint::{
    put_varint, put_varlong, read_varint, read_varlong, varint_len, varlong_len, write_varint, write_varlong,
};

/// A record header as a producer supplies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// Header key (UTF-8, as Kafka requires).
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Vec<u8>>,
}

/// A header borrowed from a decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Key bytes (UTF-8 when written by a conforming producer).
    pub key: &'a [u8],
    /// Value bytes, or `None` for null.
    pub value: Option<&'a [u8]>,
}

#[inline]
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => varint_len(b.len() as i32) + b.len(),
        None => 1, // varint(-1)
    }
}

/// A record's key, value and headers with the size of their encoding, which does not depend on where
/// the record lands in a batch: computed once per append, outside any retry loop.
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [RecordHeader],
    /// keyLength + key + valueLength + value + headerCount + headers.
    tail: usize,
}

impl<'a> RecordParts<'a> {
    /// Measures the parts.
    #[inline]
    pub fn new(key: Option<&'a [u8]>, value: Option<&'a [u8]>, headers: &'a [RecordHeader]) -> Self {
        let mut tail = bytes_len(key) + bytes_len(value) + varint_len(headers.len() as i32);
        for h in headers {
            tail += bytes_len(Some(h.key.as_bytes())) + bytes_len(h.value.as_deref());
        }
        RecordParts { key, value, headers, tail }
    }

    /// Size of the body (everything after the length varint) at these deltas.
    #[inline]
    pub fn body_size(&self, timestamp_delta: i64, offset_delta: i32) -> usize {
        1 + varlong_len(timestamp_delta) + varint_len(offset_delta) + self.tail
    }

    /// Size of the whole encoded record, length prefix included, at these deltas.
    #[inline]
    pub fn size(&self, timestamp_delta: i64, offset_delta: i32) -> usize {
        let body = self.body_size(timestamp_delta, offset_delta);
        varint_len(body as i32) + body
    }

    /// Kafka's upper bound whatever the deltas (`DefaultRecord.recordSizeUpperBound`): varint body
    /// length (5) + attributes (1) + varlong timestampDelta (10) + varint offsetDelta (5) + the parts.
    #[inline]
    pub fn size_upper_bound(&self) -> usize {
        5 + 1 + 10 + 5 + self.tail
    }

    /// Writes the record at the start of `slot`, which must be exactly [`size`](Self::size) bytes for
    /// the same deltas. Returns the bytes written.
    ///
    /// This is the form concurrent appenders use: each claims a slot of the batch buffer, then fills it.
    pub fn write(&self, slot: &mut [u8], timestamp_delta: i64, offset_delta: i32) -> usize {
        let body = self.body_size(timestamp_delta, offset_delta);
        let at = write_varint(slot, body as i32);
        at + self.write_body(&mut slot[at..], timestamp_delta, offset_delta)
    }

    /// Writes the body (everything after the length varint) at the start of `slot`.
    #[inline]
    fn write_body(&self, slot: &mut [u8], timestamp_delta: i64, offset_delta: i32) -> usize {
        let mut at = 0;
        slot[at] = 0; // attributes: unused, always 0
        at += 1;
        at += write_varlong(&mut slot[at..], timestamp_delta);
        at += write_varint(&mut slot[at..], offset_delta);
        at += write_bytes(&mut slot[at..], self.key);
        at += write_bytes(&mut slot[at..], self.value);
        at += write_varint(&mut slot[at..], self.headers.len() as i32);
        for h in self.headers {
            at += write_bytes(&mut slot[at..], Some(h.key.as_bytes()));
            at += write_bytes(&mut slot[at..], h.value.as_deref());
        }
        at
    }
}

/// Size of a record's body: everything after its length varint.
#[inline]
pub fn record_body_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    RecordParts::new(key, value, headers).body_size(timestamp_delta, offset_delta)
}

/// Size of a whole encoded record, length prefix included.
#[inline]
pub fn record_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    RecordParts::new(key, value, headers).size(timestamp_delta, offset_delta)
}

/// Kafka's upper bound for a record's size whatever its deltas (`DefaultRecord.recordSizeUpperBound`):
/// used to decide whether a record can fit before its position in the batch is known.
#[inline]
pub fn record_size_upper_bound(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[RecordHeader]) -> usize {
    RecordParts::new(key, value, headers).size_upper_bound()
}

/// Appends one encoded record to `out`.
pub fn put_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) {
    let body = record_body_size(timestamp_delta, offset_delta, key, value, headers);
    out.reserve(varint_len(body as i32) + body);
    put_varint(out, body as i32);
    out.push(0); // attributes: unused, always 0
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_bytes(out, key);
    put_bytes(out, value);
    put_varint(out, headers.len() as i32);
    for h in headers {
        put_bytes(out, Some(h.key.as_bytes()));
        put_bytes(out, h.value.as_deref());
    }
}

#[inline]
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// Writes one encoded record at the start of `slot`, which must be exactly
/// [`record_size`] bytes for the same arguments. Returns the bytes written.
pub fn write_record(
    slot: &mut [u8],
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    RecordParts::new(key, value, headers).write(slot, timestamp_delta, offset_delta)
}

#[inline]
fn write_bytes(slot: &mut [u8], b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => {
            let n = write_varint(slot, b.len() as i32);
            slot[n..n + b.len()].copy_from_slice(b);
            n + b.len()
        }
        None => write_varint(slot, -1),
    }
}

/// A record decoded in place from a records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's attributes byte (Kafka writes 0).
    pub attributes: i8,
    /// Timestamp minus the batch's baseTimestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's baseOffset.
    pub offset_delta: i32,
    /// Key, or `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, or `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    header_count: u32,
    headers: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The record's headers, in order. They were validated when the record was decoded.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter { input: self.headers, remaining: self.header_count }
    }
}

/// Iterator over a decoded record's headers.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    input: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = HeaderRef<'a>;
    fn next(&mut self) -> Option<HeaderRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let mut cursor = Cursor { input: self.input, at: 0 };
        // Validated at decode time, so these cannot fail; stop quietly if they somehow do.
        let key = cursor.bytes().ok()?.unwrap_or_default();
        let value = cursor.bytes().ok()?;
        self.input = &self.input[cursor.at..];
        Some(HeaderRef { key, value })
    }
}

/// Decodes the record starting at `input[0]`. Returns it and the bytes it occupies.
///
/// Errors carry a static description; the caller adds the record index and byte position.
pub fn decode_record(input: &[u8]) -> Result<(RecordRef<'_>, usize), &'static str> {
    let (body_len, prefix) = read_varint(input).map_err(|_| "malformed record length varint")?;
    if body_len < 0 {
        return Err("negative record length");
    }
    let total = prefix + body_len as usize;
    if total > input.len() {
        return Err("record length runs past the end of the records section");
    }
    let mut cursor = Cursor { input: &input[prefix..total], at: 0 };
    let attributes = *cursor.input.first().ok_or("record body is empty")? as i8;
    cursor.at = 1;
    let (timestamp_delta, n) = read_varlong(cursor.rest()).map_err(|_| "malformed timestampDelta varlong")?;
    cursor.at += n;
    let (offset_delta, n) = read_varint(cursor.rest()).map_err(|_| "malformed offsetDelta varint")?;
    cursor.at += n;
    let key = cursor.bytes()?;
    let value = cursor.bytes()?;
    let (header_count, n) = read_varint(cursor.rest()).map_err(|_| "malformed headerCount varint")?;
    cursor.at += n;
    if header_count < 0 {
        return Err("negative header count");
    }
    let headers_start = cursor.at;
    for _ in 0..header_count {
        if cursor.bytes()?.is_none() {
            return Err("null header key");
        }
        cursor.bytes()?;
    }
    if cursor.at != cursor.input.len() {
        return Err("record length does not match its fields");
    }
    let headers = &cursor.input[headers_start..];
    Ok((
        RecordRef { attributes, timestamp_delta, offset_delta, key, value, header_count: header_count as u32, headers },
        total,
    ))
}

struct Cursor<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.input[self.at..]
    }

    /// Reads a varint length then that many bytes; -1 is null.
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        let (len, n) = read_varint(self.rest()).map_err(|_| "malformed length varint")?;
        self.at += n;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err("negative length other than -1");
        }
        let len = len as usize;
        if len > self.input.len() - self.at {
            return Err("field length runs past the end of the record");
        }
        let b = &self.input[self.at..self.at + len];
        self.at += len;
        Ok(Some(b))
    }
}
