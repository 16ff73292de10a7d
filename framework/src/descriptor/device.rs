//! Device descriptor (type 1) and device qualifier descriptor (type 6).

use std::num::NonZeroU8;

use super::iter::{checked, le16};
use super::{DescriptorError, DEVICE, DEVICE_QUALIFIER};

/// A parsed device descriptor (`USB_DEVICE_DESCRIPTOR`).
///
/// String indices are `Option<NonZeroU8>`: index 0 means "no string", so `None`.
///
/// ```
/// use usbdf::descriptor::DeviceDescriptor;
///
/// // An FTDI FT232R.
/// let bytes = [
///     0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x03, 0x04,
///     0x01, 0x60, 0x00, 0x06, 0x01, 0x02, 0x03, 0x01,
/// ];
/// let dev = DeviceDescriptor::parse(&bytes)?;
/// assert_eq!((dev.vendor_id, dev.product_id), (0x0403, 0x6001));
/// assert_eq!(dev.to_bytes(), bytes);
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescriptor {
    /// `bcdUSB`: USB specification release, BCD (0x0200 is USB 2.0).
    pub usb_version: u16,
    /// `bDeviceClass` (0: defined per interface).
    pub class: u8,
    /// `bDeviceSubClass`.
    pub subclass: u8,
    /// `bDeviceProtocol`.
    pub protocol: u8,
    /// `bMaxPacketSize0`: max packet size of endpoint 0 (for SuperSpeed, an exponent: 9 = 512).
    pub max_packet_size_0: u8,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// `bcdDevice`: device release, BCD.
    pub device_version: u16,
    /// `iManufacturer`.
    pub manufacturer_string_index: Option<NonZeroU8>,
    /// `iProduct`.
    pub product_string_index: Option<NonZeroU8>,
    /// `iSerialNumber`.
    pub serial_number_string_index: Option<NonZeroU8>,
    /// `bNumConfigurations`.
    pub num_configurations: u8,
}

impl DeviceDescriptor {
    /// Size of a device descriptor.
    pub const LEN: usize = 18;

    /// A USB 2.0 device descriptor for a device model: class defined per interface, 64-byte
    /// endpoint 0, release 1.00, no strings, one configuration.
    pub fn new(vendor_id: u16, product_id: u16) -> Self {
        DeviceDescriptor {
            usb_version: 0x0200,
            class: 0,
            subclass: 0,
            protocol: 0,
            max_packet_size_0: 64,
            vendor_id,
            product_id,
            device_version: 0x0100,
            manufacturer_string_index: None,
            product_string_index: None,
            serial_number_string_index: None,
            num_configurations: 1,
        }
    }

    /// Parse a device descriptor from the start of `buf`. Bytes after `bLength` are ignored.
    ///
    /// # Errors
    /// [`DescriptorError::WrongType`] unless `bDescriptorType` is 1,
    /// [`DescriptorError::BadLength`] if `bLength < 18`, [`DescriptorError::Truncated`] if
    /// `buf` is shorter than `bLength` (e.g. only the first 8 bytes were read).
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (_, b) = checked::<18>(buf, DEVICE)?;
        Ok(DeviceDescriptor {
            usb_version: le16(b[2], b[3]),
            class: b[4],
            subclass: b[5],
            protocol: b[6],
            max_packet_size_0: b[7],
            vendor_id: le16(b[8], b[9]),
            product_id: le16(b[10], b[11]),
            device_version: le16(b[12], b[13]),
            manufacturer_string_index: NonZeroU8::new(b[14]),
            product_string_index: NonZeroU8::new(b[15]),
            serial_number_string_index: NonZeroU8::new(b[16]),
            num_configurations: b[17],
        })
    }

    /// The 18 descriptor bytes.
    pub fn to_bytes(&self) -> [u8; 18] {
        let [usb_lo, usb_hi] = self.usb_version.to_le_bytes();
        let [vid_lo, vid_hi] = self.vendor_id.to_le_bytes();
        let [pid_lo, pid_hi] = self.product_id.to_le_bytes();
        let [dev_lo, dev_hi] = self.device_version.to_le_bytes();
        [
            18,
            DEVICE,
            usb_lo,
            usb_hi,
            self.class,
            self.subclass,
            self.protocol,
            self.max_packet_size_0,
            vid_lo,
            vid_hi,
            pid_lo,
            pid_hi,
            dev_lo,
            dev_hi,
            index(self.manufacturer_string_index),
            index(self.product_string_index),
            index(self.serial_number_string_index),
            self.num_configurations,
        ]
    }
}

/// A parsed device qualifier descriptor: how a high-speed capable device would look at the
/// other speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceQualifierDescriptor {
    /// `bcdUSB`.
    pub usb_version: u16,
    /// `bDeviceClass`.
    pub class: u8,
    /// `bDeviceSubClass`.
    pub subclass: u8,
    /// `bDeviceProtocol`.
    pub protocol: u8,
    /// `bMaxPacketSize0` at the other speed.
    pub max_packet_size_0: u8,
    /// `bNumConfigurations` at the other speed.
    pub num_configurations: u8,
}

impl DeviceQualifierDescriptor {
    /// Size of a device qualifier descriptor.
    pub const LEN: usize = 10;

    /// Parse a device qualifier descriptor from the start of `buf` (the reserved byte is
    /// ignored).
    ///
    /// # Errors
    /// As [`DeviceDescriptor::parse`], with type 6 and a minimum `bLength` of 10.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (_, b) = checked::<10>(buf, DEVICE_QUALIFIER)?;
        Ok(DeviceQualifierDescriptor {
            usb_version: le16(b[2], b[3]),
            class: b[4],
            subclass: b[5],
            protocol: b[6],
            max_packet_size_0: b[7],
            num_configurations: b[8],
        })
    }

    /// The 10 descriptor bytes (reserved byte 0).
    pub fn to_bytes(&self) -> [u8; 10] {
        let [lo, hi] = self.usb_version.to_le_bytes();
        [
            10,
            DEVICE_QUALIFIER,
            lo,
            hi,
            self.class,
            self.subclass,
            self.protocol,
            self.max_packet_size_0,
            self.num_configurations,
            0,
        ]
    }
}

pub(crate) fn index(i: Option<NonZeroU8>) -> u8 {
    i.map_or(0, NonZeroU8::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::fixtures::{DEVICE_FT232R, DEVICE_ROOT_HUB};

    #[test]
    fn parses_real_devices() {
        let d = DeviceDescriptor::parse(DEVICE_FT232R).unwrap();
        assert_eq!(
            d,
            DeviceDescriptor {
                usb_version: 0x0200,
                class: 0,
                subclass: 0,
                protocol: 0,
                max_packet_size_0: 8,
                vendor_id: 0x0403,
                product_id: 0x6001,
                device_version: 0x0600,
                manufacturer_string_index: NonZeroU8::new(1),
                product_string_index: NonZeroU8::new(2),
                serial_number_string_index: NonZeroU8::new(3),
                num_configurations: 1,
            }
        );
        assert_eq!(&d.to_bytes()[..], DEVICE_FT232R);

        let hub = DeviceDescriptor::parse(DEVICE_ROOT_HUB).unwrap();
        assert_eq!((hub.class, hub.protocol, hub.vendor_id), (9, 1, 0x1d6b));
        assert_eq!(hub.serial_number_string_index, NonZeroU8::new(1));
        assert_eq!(&hub.to_bytes()[..], DEVICE_ROOT_HUB);
    }

    #[test]
    fn first_eight_bytes_are_truncated() {
        assert_eq!(
            DeviceDescriptor::parse(&DEVICE_FT232R[..8]),
            Err(DescriptorError::Truncated {
                offset: 0,
                needed: 18,
                available: 8
            })
        );
    }

    #[test]
    fn every_prefix_is_an_error() {
        for n in 0..DEVICE_FT232R.len() {
            assert!(
                DeviceDescriptor::parse(&DEVICE_FT232R[..n]).is_err(),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let mut b = DEVICE_FT232R.to_vec();
        b[1] = 2;
        assert!(matches!(
            DeviceDescriptor::parse(&b),
            Err(DescriptorError::WrongType { found: 2, .. })
        ));
        for len in [0u8, 1, 17] {
            b = DEVICE_FT232R.to_vec();
            b[0] = len;
            assert!(matches!(
                DeviceDescriptor::parse(&b),
                Err(DescriptorError::BadLength { b_length, .. }) if b_length == len
            ));
        }
    }

    #[test]
    fn longer_blength_and_trailing_bytes_are_ignored() {
        let mut b = DEVICE_FT232R.to_vec();
        b[0] = 20;
        b.extend([0xAA, 0xBB, 0xCC]);
        assert_eq!(DeviceDescriptor::parse(&b).unwrap().vendor_id, 0x0403);
    }

    #[test]
    fn new_round_trips() {
        let d = DeviceDescriptor::new(0x1209, 0x0001);
        assert_eq!(DeviceDescriptor::parse(&d.to_bytes()), Ok(d));
    }

    #[test]
    fn qualifier() {
        let bytes = [10, 6, 0x00, 0x02, 0xFF, 0, 0, 64, 1, 0];
        let q = DeviceQualifierDescriptor::parse(&bytes).unwrap();
        assert_eq!(
            (
                q.usb_version,
                q.class,
                q.max_packet_size_0,
                q.num_configurations
            ),
            (0x0200, 0xFF, 64, 1)
        );
        assert_eq!(q.to_bytes(), bytes);
        for n in 0..bytes.len() {
            assert!(DeviceQualifierDescriptor::parse(&bytes[..n]).is_err());
        }
    }
}
