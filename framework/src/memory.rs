//! Transfer buffers.

use std::fmt;

use crate::backend::Buffer;

/// A transfer buffer owned by a [`Request`](crate::Request).
///
/// For an OUT transfer its initialized bytes (`len`) are sent; for an IN
/// transfer the received bytes land in it and `len` becomes the count moved.
/// Buffers made by [`Pipe::allocate`](crate::Pipe::allocate) or a pipe's
/// [`RequestPool`](crate::RequestPool) are zero-copy on Linux (the kernel
/// reads and writes them directly); [`Memory::new`] uses the heap.
///
/// KMDF: `WDFMEMORY` (`WdfMemoryCreate`, `WdfMemoryCreatePreallocated`).
pub struct Memory {
    pub(crate) buf: Buffer,
}

impl Memory {
    /// A heap buffer with room for `capacity` bytes and nothing in it.
    ///
    /// # Panics
    /// If `capacity` exceeds `u32::MAX`.
    pub fn new(capacity: usize) -> Memory {
        Memory {
            buf: Buffer::new(capacity),
        }
    }

    /// A heap buffer holding a copy of `data`.
    pub fn from_slice(data: &[u8]) -> Memory {
        let mut m = Memory::new(data.len());
        m.buf.extend_from_slice(data);
        m
    }

    pub(crate) fn from_buffer(buf: Buffer) -> Memory {
        Memory { buf }
    }

    /// Bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Initialized bytes: the data to send, or the data received.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no byte is initialized.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether the OS moves data straight into and out of this buffer.
    pub fn is_zero_copy(&self) -> bool {
        self.buf.is_zero_copy()
    }

    /// The initialized bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The initialized bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Forget the contents (capacity is kept).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Replace the contents with a copy of `data`.
    ///
    /// # Errors
    /// [`CapacityError`] when `data` is longer than the capacity; the
    /// contents are left as they were.
    pub fn set(&mut self, data: &[u8]) -> Result<(), CapacityError> {
        if data.len() > self.capacity() {
            return Err(CapacityError {
                needed: data.len(),
                capacity: self.capacity(),
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Append a copy of `data` to the contents.
    ///
    /// # Errors
    /// [`CapacityError`] when it does not fit; nothing is appended.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), CapacityError> {
        if data.len() > self.buf.remaining_capacity() {
            return Err(CapacityError {
                needed: self.len() + data.len(),
                capacity: self.capacity(),
            });
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Make the contents `len` bytes long, each written by `f(index)`.
    ///
    /// # Errors
    /// [`CapacityError`] when `len` exceeds the capacity.
    pub fn fill_with(
        &mut self,
        len: usize,
        mut f: impl FnMut(usize) -> u8,
    ) -> Result<(), CapacityError> {
        if len > self.capacity() {
            return Err(CapacityError {
                needed: len,
                capacity: self.capacity(),
            });
        }
        self.buf.clear();
        let out = self.buf.extend_fill(len, 0);
        for (i, b) in out.iter_mut().enumerate() {
            *b = f(i);
        }
        Ok(())
    }
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memory")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("zero_copy", &self.is_zero_copy())
            .finish()
    }
}

/// Data did not fit in a [`Memory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{needed} bytes do not fit in a buffer of {capacity}")]
pub struct CapacityError {
    /// Bytes that were needed.
    pub needed: usize,
    /// Bytes the buffer holds.
    pub capacity: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_extend_respect_capacity() {
        let mut m = Memory::new(4);
        m.set(&[1, 2, 3]).unwrap();
        assert_eq!(m.as_slice(), &[1, 2, 3]);
        assert_eq!(
            m.extend_from_slice(&[4, 5]),
            Err(CapacityError {
                needed: 5,
                capacity: 4
            })
        );
        assert_eq!(m.as_slice(), &[1, 2, 3], "a failed extend changes nothing");
        m.extend_from_slice(&[4]).unwrap();
        assert_eq!(m.as_slice(), &[1, 2, 3, 4]);
        assert!(m.set(&[0; 5]).is_err());
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn fill_with_index() {
        let mut m = Memory::new(8);
        m.fill_with(8, |i| i as u8 * 2).unwrap();
        assert_eq!(m.as_slice(), &[0, 2, 4, 6, 8, 10, 12, 14]);
        assert!(m.fill_with(9, |_| 0).is_err());
    }
}
