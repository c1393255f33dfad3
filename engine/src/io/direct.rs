//! Buffers for O_DIRECT writes: memory aligned to [`ALIGN`], written in whole blocks.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

/// Alignment of O_DIRECT buffers, file offsets and lengths (the largest logical block size in use).
pub(crate) const ALIGN: usize = 4096;

/// A fixed-capacity, zero-initialised buffer aligned to [`ALIGN`], with a fill length.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    capacity: usize,
    len: usize,
}

// SAFETY: AlignedBuf uniquely owns its allocation, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only read the buffer (mutation needs `&mut self`), like a Vec<u8>.
unsafe impl Sync for AlignedBuf {}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf").field("capacity", &self.capacity).field("len", &self.len).finish()
    }
}

impl AlignedBuf {
    /// A zeroed buffer of at least `capacity` bytes, rounded up to whole blocks.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).div_ceil(ALIGN) * ALIGN;
        let layout = Self::layout(capacity);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, capacity, len: 0 }
    }

    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity, ALIGN).unwrap_or_else(|_| panic!("AlignedBuf of {capacity} bytes"))
    }

    /// Bytes filled.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Room left.
    pub(crate) fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    /// Appends `bytes` (at most `remaining()`; the caller checks).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.remaining());
        // SAFETY: `len + n <= capacity`; the source is a distinct live slice.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(self.len), n) };
        self.len += n;
    }

    /// Grows the capacity to at least `capacity` bytes, keeping the contents.
    pub(crate) fn reserve_total(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        let mut bigger = AlignedBuf::new(capacity.max(self.capacity * 2));
        bigger.extend(self.as_slice());
        *self = bigger;
    }

    /// Filled bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (the allocation is zeroed) and owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Zeroes the bytes from `len` to the end of its block, so [`AlignedBuf::padded`] sends zeros.
    pub(crate) fn zero_pad(&mut self) {
        let end = self.len.div_ceil(ALIGN) * ALIGN;
        // SAFETY: `len <= end <= capacity`.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, end - self.len) };
    }

    /// Empties the buffer for reuse (a recycled buffer skips the allocation and its page faults).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The filled bytes padded to a whole number of blocks: what an O_DIRECT write sends. The pad is
    /// zero after [`AlignedBuf::zero_pad`] (or in a fresh buffer).
    pub(crate) fn padded(&self) -> &[u8] {
        let n = self.len.div_ceil(ALIGN) * ALIGN;
        // SAFETY: `n <= capacity` (capacity is a multiple of ALIGN), all initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), n) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this exact layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_is_block_aligned_and_zero_filled() {
        let mut b = AlignedBuf::new(10_000);
        assert_eq!(b.ptr.as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.remaining(), 3 * ALIGN);
        b.extend(&[1u8; 5000]);
        assert_eq!(b.padded().len(), 2 * ALIGN);
        assert!(b.padded()[5000..].iter().all(|&x| x == 0));
        b.reserve_total(20_000);
        assert_eq!(b.ptr.as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.as_slice(), &[1u8; 5000][..]);
        assert!(b.padded()[5000..].iter().all(|&x| x == 0));
    }
}
