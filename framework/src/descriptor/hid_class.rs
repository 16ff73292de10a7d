//! The HID class descriptor (type 0x21) found in a HID interface's class-specific descriptors.
//!
//! Only this small descriptor is parsed here; the report descriptor it points to is not.

use super::iter::{checked, le16, write_descriptor, RawDescriptor};
use super::{DescriptorError, RawOwned, HID, HID_REPORT};

/// One class descriptor a HID descriptor names: its type (0x22 report, 0x23 physical) and
/// length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HidClassDescriptor {
    /// `bDescriptorType` of the named descriptor.
    pub descriptor_type: u8,
    /// `wDescriptorLength`: its length in bytes (what to request with `GET_DESCRIPTOR`).
    pub length: u16,
}

/// A parsed HID descriptor (type 0x21).
///
/// ```
/// use usbdf::descriptor::HidDescriptor;
///
/// let hid = HidDescriptor::parse(&[9, 0x21, 0x11, 0x01, 0, 1, 0x22, 0x34, 0x00])?;
/// assert_eq!(hid.hid_version, 0x0111);
/// assert_eq!(hid.report_descriptor_length(), Some(52));
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidDescriptor {
    /// `bcdHID`: HID specification release, BCD.
    pub hid_version: u16,
    /// `bCountryCode` (0: not localized).
    pub country_code: u8,
    /// The class descriptors listed, in order (normally one report descriptor).
    /// `bNumDescriptors` is `descriptors.len()` when written.
    pub descriptors: Vec<HidClassDescriptor>,
}

impl HidDescriptor {
    /// A HID 1.11 descriptor, not localized, naming one report descriptor of `report_length`
    /// bytes.
    pub fn new(report_length: u16) -> Self {
        HidDescriptor {
            hid_version: 0x0111,
            country_code: 0,
            descriptors: vec![HidClassDescriptor {
                descriptor_type: HID_REPORT,
                length: report_length,
            }],
        }
    }

    /// Parse a HID descriptor from the start of `buf`.
    ///
    /// Leniency: if `bNumDescriptors` names more entries than `bLength` holds, the entries
    /// that fit are returned; a partial entry at the end is ignored.
    ///
    /// # Errors
    /// [`DescriptorError::WrongType`] unless the type is 0x21, [`DescriptorError::BadLength`]
    /// if `bLength < 6`, [`DescriptorError::Truncated`] if `buf` is shorter than `bLength`.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (raw, _) = checked::<6>(buf, HID)?;
        Self::from_raw(&raw)
    }

    /// Parse from a descriptor kept raw by the configuration parser (an entry of
    /// [`InterfaceDescriptor::class_specific`](super::InterfaceDescriptor::class_specific)).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn from_raw_owned(raw: &RawOwned) -> Result<Self, DescriptorError> {
        Self::parse(&raw.to_bytes_checked()?)
    }

    fn from_raw(raw: &RawDescriptor<'_>) -> Result<Self, DescriptorError> {
        let b = raw.fields::<6>(HID)?;
        let declared = usize::from(b[5]);
        let entries = raw.as_bytes().get(6..).unwrap_or(&[]);
        let descriptors = entries
            .chunks_exact(3)
            .take(declared)
            .filter_map(|e| match *e {
                [descriptor_type, lo, hi] => Some(HidClassDescriptor {
                    descriptor_type,
                    length: le16(lo, hi),
                }),
                _ => None, // chunks_exact yields only 3-byte chunks
            })
            .collect();
        Ok(HidDescriptor {
            hid_version: le16(b[2], b[3]),
            country_code: b[4],
            descriptors,
        })
    }

    /// The length of the first report descriptor (type 0x22) listed.
    pub fn report_descriptor_length(&self) -> Option<u16> {
        self.descriptors
            .iter()
            .find(|d| d.descriptor_type == HID_REPORT)
            .map(|d| d.length)
    }

    /// The descriptor as a [`RawOwned`], to add to a configuration (see
    /// [`ConfigBuilder::raw`](super::ConfigBuilder::raw)).
    ///
    /// # Panics
    /// If more than 83 class descriptors are listed (the descriptor would exceed 255 bytes).
    pub fn to_raw_owned(&self) -> RawOwned {
        let count = u8::try_from(self.descriptors.len()).unwrap_or(u8::MAX);
        let [lo, hi] = self.hid_version.to_le_bytes();
        let mut body = vec![lo, hi, self.country_code, count];
        for d in &self.descriptors {
            let [lo, hi] = d.length.to_le_bytes();
            body.extend_from_slice(&[d.descriptor_type, lo, hi]);
        }
        assert!(body.len() <= 253, "HID descriptor too long");
        RawOwned::new(HID, body)
    }

    /// The descriptor bytes.
    ///
    /// # Panics
    /// As [`to_raw_owned`](Self::to_raw_owned).
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw = self.to_raw_owned();
        let mut out = Vec::new();
        write_descriptor(&mut out, raw.descriptor_type, &raw.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUSE: [u8; 9] = [9, 0x21, 0x11, 0x01, 0, 1, 0x22, 0x34, 0x00];

    #[test]
    fn parses_and_round_trips() {
        let hid = HidDescriptor::parse(&MOUSE).unwrap();
        assert_eq!(hid, HidDescriptor::new(52));
        assert_eq!(hid.to_bytes(), MOUSE);
        assert_eq!(HidDescriptor::from_raw_owned(&hid.to_raw_owned()), Ok(hid));
    }

    #[test]
    fn lenient_count() {
        // Claims 3 descriptors, holds one and a half.
        let b = [11, 0x21, 0x11, 0x01, 0, 3, 0x22, 0x34, 0x00, 0x23, 0x10];
        let hid = HidDescriptor::parse(&b).unwrap();
        assert_eq!(hid.descriptors.len(), 1);
        // Claims 0: lists none even if bytes follow.
        let b = [9, 0x21, 0x11, 0x01, 0, 0, 0x22, 0x34, 0x00];
        assert_eq!(
            HidDescriptor::parse(&b).unwrap().report_descriptor_length(),
            None
        );
    }

    #[test]
    fn malformed() {
        for n in 0..MOUSE.len() {
            assert!(HidDescriptor::parse(&MOUSE[..n]).is_err());
        }
        assert!(HidDescriptor::from_raw_owned(&RawOwned::new(HID, vec![0; 300])).is_err());
        assert!(matches!(
            HidDescriptor::from_raw_owned(&RawOwned::new(0x24, [0; 7])),
            Err(DescriptorError::WrongType { .. })
        ));
    }
}
