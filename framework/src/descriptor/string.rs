//! String descriptors (type 3): UTF-16LE text, and the LANGID list at index 0.

use super::iter::{checked, write_descriptor};
use super::{DescriptorError, STRING};

/// LANGID of US English, the language most devices offer.
pub const LANGID_EN_US: u16 = 0x0409;

/// The UTF-16 code units of the string descriptor at the start of `buf`.
fn code_units(buf: &[u8]) -> Result<impl Iterator<Item = u16> + '_, DescriptorError> {
    let (raw, &[b_length, _]) = checked::<2>(buf, STRING)?;
    if b_length % 2 != 0 {
        return Err(DescriptorError::BadString {
            offset: 0,
            b_length,
        });
    }
    Ok(raw
        .body()
        .chunks_exact(2)
        .filter_map(|c| c.first_chunk::<2>().map(|&u| u16::from_le_bytes(u))))
}

/// Decode a string descriptor (`GET_DESCRIPTOR(STRING, index > 0)`) into a `String`.
///
/// Unpaired surrogates become U+FFFD (lossy, never a panic); NULs are kept. Bytes after
/// `bLength` are ignored.
///
/// # Errors
/// [`DescriptorError::WrongType`] unless the type is 3, [`DescriptorError::BadLength`] if
/// `bLength < 2`, [`DescriptorError::Truncated`] if `buf` is shorter than `bLength`,
/// [`DescriptorError::BadString`] if `bLength` is odd.
///
/// ```
/// use usbdf::descriptor::{encode_string, parse_string};
///
/// assert_eq!(parse_string(&[8, 3, b'U', 0, b'S', 0, b'B', 0])?, "USB");
/// assert_eq!(parse_string(&encode_string("Gadget ⚙"))?, "Gadget ⚙");
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
pub fn parse_string(buf: &[u8]) -> Result<String, DescriptorError> {
    Ok(char::decode_utf16(code_units(buf)?)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

/// Decode string descriptor 0: the list of LANGIDs the device's strings come in.
///
/// # Errors
/// As [`parse_string`].
///
/// ```
/// use usbdf::descriptor::{parse_language_ids, LANGID_EN_US};
///
/// assert_eq!(parse_language_ids(&[4, 3, 0x09, 0x04])?, vec![LANGID_EN_US]);
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
pub fn parse_language_ids(buf: &[u8]) -> Result<Vec<u16>, DescriptorError> {
    Ok(code_units(buf)?.collect())
}

/// Encode `s` as a string descriptor (for device models).
///
/// A descriptor holds at most 126 UTF-16 code units; longer text is cut at a character
/// boundary (a surrogate pair is never split).
pub fn encode_string(s: &str) -> Vec<u8> {
    let mut units: Vec<u16> = Vec::new();
    for c in s.chars() {
        let mut buf = [0u16; 2];
        let encoded = c.encode_utf16(&mut buf);
        if units.len() + encoded.len() > 126 {
            break;
        }
        units.extend_from_slice(encoded);
    }
    encode_units(&units)
}

/// Encode string descriptor 0 from a list of LANGIDs (at most 126 are kept).
pub fn encode_language_ids(language_ids: &[u16]) -> Vec<u8> {
    encode_units(language_ids.get(..126).unwrap_or(language_ids))
}

fn encode_units(units: &[u16]) -> Vec<u8> {
    let body: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
    let mut out = Vec::with_capacity(body.len() + 2);
    write_descriptor(&mut out, STRING, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text() {
        let b = [0x0C, 3, b'F', 0, b'T', 0, b'2', 0, b'3', 0, b'2', 0];
        assert_eq!(parse_string(&b).unwrap(), "FT232");
        assert_eq!(parse_string(&[2, 3]).unwrap(), "");
        // Trailing bytes after bLength are ignored.
        assert_eq!(parse_string(&[4, 3, b'A', 0, b'B', 0]).unwrap(), "A");
    }

    #[test]
    fn surrogates() {
        // U+1F600 as a pair, then an unpaired high surrogate, then 'x'.
        let b = [10, 3, 0x3D, 0xD8, 0x00, 0xDE, 0x3D, 0xD8, b'x', 0];
        assert_eq!(parse_string(&b).unwrap(), "😀\u{FFFD}x");
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse_string(&[5, 3, b'A', 0, 0]),
            Err(DescriptorError::BadString {
                offset: 0,
                b_length: 5
            })
        );
        assert_eq!(
            parse_language_ids(&[3, 3, 9]),
            Err(DescriptorError::BadString {
                offset: 0,
                b_length: 3
            })
        );
        assert!(matches!(
            parse_string(&[4, 2, 0, 0]),
            Err(DescriptorError::WrongType { .. })
        ));
        assert!(matches!(
            parse_string(&[0, 3]),
            Err(DescriptorError::BadLength { .. })
        ));
        assert!(matches!(
            parse_string(&[1, 3]),
            Err(DescriptorError::BadLength { .. })
        ));
        let good = encode_string("hello");
        for n in 0..good.len() {
            assert!(parse_string(&good[..n]).is_err());
        }
    }

    #[test]
    fn langids() {
        let b = [6, 3, 0x09, 0x04, 0x07, 0x04];
        assert_eq!(parse_language_ids(&b).unwrap(), vec![0x0409, 0x0407]);
        assert_eq!(encode_language_ids(&[0x0409, 0x0407]), b);
        assert_eq!(encode_language_ids(&[1; 200]).len(), 254);
    }

    #[test]
    fn encode_limits() {
        let long = "a".repeat(300);
        let b = encode_string(&long);
        assert_eq!(b.len(), 254);
        assert_eq!(parse_string(&b).unwrap().len(), 126);
        // 125 units of 'a' then an emoji (2 units) does not fit: cut before it.
        let s = format!("{}😀", "a".repeat(125));
        assert_eq!(parse_string(&encode_string(&s)).unwrap(), "a".repeat(125));
    }
}
