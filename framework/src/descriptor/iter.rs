//! Checked iteration over a run of descriptors, and the raw descriptor types.

use std::iter::FusedIterator;

use super::DescriptorError;

/// A checked view of one descriptor inside a larger buffer.
///
/// Guarantees: [`as_bytes`](Self::as_bytes) is the whole descriptor, its length equals its
/// `bLength`, and that is at least 2 (the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDescriptor<'a> {
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> RawDescriptor<'a> {
    /// Check the descriptor at the start of `buf` (at `offset` within some larger buffer; used
    /// in errors and reported by [`offset`](Self::offset)).
    ///
    /// # Errors
    /// [`DescriptorError::Truncated`] if fewer than 2 bytes or fewer than `bLength` bytes
    /// remain, [`DescriptorError::BadLength`] if `bLength` is 0 or 1.
    pub fn new(buf: &'a [u8], offset: usize) -> Result<Self, DescriptorError> {
        let &[b_length, _] = buf.first_chunk::<2>().ok_or(DescriptorError::Truncated {
            offset,
            needed: 2,
            available: buf.len(),
        })?;
        if b_length < 2 {
            return Err(DescriptorError::BadLength {
                offset,
                b_length,
                minimum: 2,
            });
        }
        let bytes = buf
            .get(..usize::from(b_length))
            .ok_or(DescriptorError::Truncated {
                offset,
                needed: usize::from(b_length),
                available: buf.len(),
            })?;
        Ok(RawDescriptor { offset, bytes })
    }

    /// Where this descriptor starts, in bytes from the start of the iterated buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The `bDescriptorType` field.
    pub fn descriptor_type(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or(0)
    }

    /// The whole descriptor, header included (`bLength` bytes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes after the two-byte header.
    pub fn body(&self) -> &'a [u8] {
        self.bytes.get(2..).unwrap_or(&[])
    }

    /// Copy into an owned [`RawOwned`].
    pub fn to_raw_owned(&self) -> RawOwned {
        RawOwned {
            descriptor_type: self.descriptor_type(),
            body: self.body().to_vec(),
        }
    }

    /// Check that this descriptor has `bDescriptorType == expected` and at least `N` bytes,
    /// and return those first `N` bytes as an array (so fields can be read without bounds
    /// checks that could panic).
    pub(crate) fn fields<const N: usize>(
        &self,
        expected: u8,
    ) -> Result<&'a [u8; N], DescriptorError> {
        let found = self.descriptor_type();
        if found != expected {
            return Err(DescriptorError::WrongType {
                offset: self.offset,
                expected,
                found,
            });
        }
        self.bytes
            .first_chunk::<N>()
            .ok_or(DescriptorError::BadLength {
                offset: self.offset,
                b_length: self.bytes.first().copied().unwrap_or(0),
                minimum: u8::try_from(N).unwrap_or(u8::MAX),
            })
    }
}

/// An owned descriptor kept as bytes: class-specific descriptors (CDC functional descriptors,
/// the HID descriptor, …) and anything the parser does not know.
///
/// The header is not stored: `bLength` is always `body.len() + 2`, so it cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawOwned {
    /// `bDescriptorType`.
    pub descriptor_type: u8,
    /// The bytes after the two-byte header (at most 253).
    pub body: Vec<u8>,
}

impl RawOwned {
    /// A descriptor of type `descriptor_type` with the given body (the bytes after the header).
    pub fn new(descriptor_type: u8, body: impl Into<Vec<u8>>) -> Self {
        RawOwned {
            descriptor_type,
            body: body.into(),
        }
    }

    /// The whole descriptor, header included.
    ///
    /// # Panics
    /// If `body` is longer than 253 bytes (`bLength` would not fit in a byte). Parsed values
    /// never are.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 2);
        write_descriptor(&mut out, self.descriptor_type, &self.body);
        out
    }

    /// The bytes, or [`DescriptorError::BadLength`] if the body is too long for a `bLength`.
    pub(crate) fn to_bytes_checked(&self) -> Result<Vec<u8>, DescriptorError> {
        if self.body.len() > 253 {
            return Err(DescriptorError::BadLength {
                offset: 0,
                b_length: u8::MAX,
                minimum: 2,
            });
        }
        Ok(self.to_bytes())
    }

    /// The `bLength` this descriptor has when written (`body.len() + 2`).
    pub fn descriptor_len(&self) -> usize {
        self.body.len() + 2
    }
}

/// A checked iterator over the descriptors in a byte slice.
///
/// Yields each descriptor as a [`RawDescriptor`]. Malformed framing (a `bLength` of 0 or 1, or
/// a descriptor running past the end) yields one `Err` and then the iterator ends, so it never
/// loops and never panics.
///
/// ```
/// use usbdf::descriptor::{Descriptors, DescriptorError, INTERFACE};
///
/// let bytes = [9, 4, 0, 0, 0, 0xFF, 0, 0, 0, /* bLength 0: */ 0, 5];
/// let mut it = Descriptors::new(&bytes);
/// assert_eq!(it.next().unwrap()?.descriptor_type(), INTERFACE);
/// assert!(matches!(it.next(), Some(Err(DescriptorError::BadLength { offset: 9, .. }))));
/// assert!(it.next().is_none());
/// # Ok::<(), DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptors<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Descriptors<'a> {
    /// Iterate over the descriptors in `buf`, starting at its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Descriptors {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Iterate over the descriptors in `buf` starting at `offset` (offsets reported stay
    /// relative to the start of `buf`).
    pub fn starting_at(buf: &'a [u8], offset: usize) -> Self {
        Descriptors {
            buf,
            pos: offset,
            failed: false,
        }
    }

    /// The offset of the next descriptor.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Descriptors<'a> {
    type Item = Result<RawDescriptor<'a>, DescriptorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        match RawDescriptor::new(rest, self.pos) {
            Ok(d) => {
                // bLength >= 2, so this always advances.
                self.pos = self.pos.saturating_add(d.as_bytes().len());
                Some(Ok(d))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for Descriptors<'_> {}

/// Check the header of the descriptor at the start of `buf` for a standalone parse: type
/// `expected`, `bLength >= N`, all `bLength` bytes present. Returns the descriptor.
pub(crate) fn checked<const N: usize>(
    buf: &[u8],
    expected: u8,
) -> Result<(RawDescriptor<'_>, &[u8; N]), DescriptorError> {
    // Check the type before the length so that a wrong descriptor is reported as such.
    if let Some(&[b_length, found]) = buf.first_chunk::<2>() {
        if found != expected && b_length >= 2 {
            return Err(DescriptorError::WrongType {
                offset: 0,
                expected,
                found,
            });
        }
    }
    let raw = RawDescriptor::new(buf, 0)?;
    let fields = raw.fields::<N>(expected)?;
    Ok((raw, fields))
}

/// Append a descriptor with the given type and body, writing `bLength`.
///
/// # Panics
/// If `body` is longer than 253 bytes.
pub(crate) fn write_descriptor(out: &mut Vec<u8>, descriptor_type: u8, body: &[u8]) {
    let len = u8::try_from(body.len() + 2).unwrap_or_else(|_| {
        panic!(
            "descriptor body of {} bytes does not fit bLength",
            body.len()
        )
    });
    out.push(len);
    out.push(descriptor_type);
    out.extend_from_slice(body);
}

/// Read a little-endian u16 from two bytes.
pub(crate) fn le16(lo: u8, hi: u8) -> u16 {
    u16::from_le_bytes([lo, hi])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_good_run() {
        let bytes = [3, 0x24, 1, 2, 0x25];
        let all: Vec<_> = Descriptors::new(&bytes).collect();
        assert_eq!(all.len(), 2);
        let a = all[0].clone().unwrap();
        let b = all[1].clone().unwrap();
        assert_eq!(
            (a.offset(), a.descriptor_type(), a.body()),
            (0, 0x24, &[1][..])
        );
        assert_eq!(
            (b.offset(), b.descriptor_type(), b.body()),
            (3, 0x25, &[][..])
        );
        assert_eq!(b.to_raw_owned(), RawOwned::new(0x25, []));
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(Descriptors::new(&[]).count(), 0);
    }

    #[test]
    fn zero_and_one_length_end_with_one_error() {
        for b_length in [0u8, 1] {
            let bytes = [b_length, 4, 9, 4, 0, 0, 0, 0, 0, 0, 0];
            let all: Vec<_> = Descriptors::new(&bytes).collect();
            assert_eq!(
                all,
                vec![Err(DescriptorError::BadLength {
                    offset: 0,
                    b_length,
                    minimum: 2
                })]
            );
        }
    }

    #[test]
    fn running_past_end_is_truncated() {
        let bytes = [2, 1, 9, 4, 0];
        let all: Vec<_> = Descriptors::new(&bytes).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1],
            Err(DescriptorError::Truncated {
                offset: 2,
                needed: 9,
                available: 3
            })
        );
        // A single trailing byte cannot hold a header.
        let all: Vec<_> = Descriptors::new(&[2, 1, 7]).collect();
        assert_eq!(
            all[1],
            Err(DescriptorError::Truncated {
                offset: 2,
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn starting_at_past_end_is_empty() {
        assert_eq!(Descriptors::starting_at(&[2, 1], 5).count(), 0);
    }

    #[test]
    fn raw_owned_round_trip() {
        let raw = RawOwned::new(0x24, vec![6, 0, 1]);
        assert_eq!(raw.to_bytes(), vec![5, 0x24, 6, 0, 1]);
        assert_eq!(raw.descriptor_len(), 5);
        let view = RawDescriptor::new(&raw.to_bytes(), 0)
            .unwrap()
            .to_raw_owned();
        assert_eq!(view, raw);
    }

    #[test]
    fn checked_reports_wrong_type_first() {
        assert_eq!(
            checked::<9>(&[9, 4], 2),
            Err(DescriptorError::WrongType {
                offset: 0,
                expected: 2,
                found: 4
            })
        );
        assert!(matches!(
            checked::<9>(&[7, 2, 0, 0, 0, 0, 0], 2),
            Err(DescriptorError::BadLength {
                b_length: 7,
                minimum: 9,
                ..
            })
        ));
    }
}
