//! The 8-byte SETUP packet of a control transfer.

use static_assertions::{assert_eq_align, assert_eq_size};

/// Direction of a control transfer's data stage (bit 7 of `bmRequestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlDirection {
    /// Host to device (or no data stage).
    Out,
    /// Device to host.
    In,
}

/// Who defines the request (bits 6..5 of `bmRequestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Defined by the USB specification, chapter 9.
    Standard,
    /// Defined by a class specification (CDC, HID, …).
    Class,
    /// Defined by the vendor.
    Vendor,
}

/// What the request is addressed to (bits 4..0 of `bmRequestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The device as a whole.
    Device,
    /// An interface; `wIndex` carries its number.
    Interface,
    /// An endpoint; `wIndex` carries its address.
    Endpoint,
    /// Something else (`bmRequestType` recipient 3).
    Other,
}

/// A SETUP packet, laid out exactly as on the wire (little-endian fields).
///
/// KMDF: `WDF_USB_CONTROL_SETUP_PACKET`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SetupPacket {
    /// `bmRequestType`: direction, kind and recipient.
    pub request_type: u8,
    /// `bRequest`.
    pub request: u8,
    /// `wValue`, little-endian on the wire.
    pub value: u16,
    /// `wIndex`, little-endian on the wire.
    pub index: u16,
    /// `wLength`: bytes in the data stage.
    pub length: u16,
}

assert_eq_size!(SetupPacket, [u8; 8]);
assert_eq_align!(SetupPacket, u16);

/// Standard request codes (USB 2.0 table 9-4).
pub mod standard {
    /// GET_STATUS.
    pub const GET_STATUS: u8 = 0x00;
    /// CLEAR_FEATURE.
    pub const CLEAR_FEATURE: u8 = 0x01;
    /// SET_FEATURE.
    pub const SET_FEATURE: u8 = 0x03;
    /// SET_ADDRESS.
    pub const SET_ADDRESS: u8 = 0x05;
    /// GET_DESCRIPTOR.
    pub const GET_DESCRIPTOR: u8 = 0x06;
    /// SET_DESCRIPTOR.
    pub const SET_DESCRIPTOR: u8 = 0x07;
    /// GET_CONFIGURATION.
    pub const GET_CONFIGURATION: u8 = 0x08;
    /// SET_CONFIGURATION.
    pub const SET_CONFIGURATION: u8 = 0x09;
    /// GET_INTERFACE.
    pub const GET_INTERFACE: u8 = 0x0A;
    /// SET_INTERFACE.
    pub const SET_INTERFACE: u8 = 0x0B;
    /// Feature selector ENDPOINT_HALT.
    pub const FEATURE_ENDPOINT_HALT: u16 = 0;
    /// Feature selector DEVICE_REMOTE_WAKEUP.
    pub const FEATURE_DEVICE_REMOTE_WAKEUP: u16 = 1;
}

impl SetupPacket {
    /// Build a SETUP packet from its parts.
    pub const fn new(
        direction: ControlDirection,
        kind: RequestKind,
        recipient: Recipient,
        request: u8,
        value: u16,
        index: u16,
        length: u16,
    ) -> Self {
        let dir = match direction {
            ControlDirection::Out => 0x00,
            ControlDirection::In => 0x80,
        };
        let kind = match kind {
            RequestKind::Standard => 0x00,
            RequestKind::Class => 0x20,
            RequestKind::Vendor => 0x40,
        };
        let rcpt = match recipient {
            Recipient::Device => 0,
            Recipient::Interface => 1,
            Recipient::Endpoint => 2,
            Recipient::Other => 3,
        };
        SetupPacket {
            request_type: dir | kind | rcpt,
            request,
            value,
            index,
            length,
        }
    }

    /// The direction of the data stage.
    pub const fn direction(&self) -> ControlDirection {
        if self.request_type & 0x80 != 0 {
            ControlDirection::In
        } else {
            ControlDirection::Out
        }
    }

    /// The request kind, or `None` for the reserved value 3.
    pub const fn kind(&self) -> Option<RequestKind> {
        match (self.request_type >> 5) & 3 {
            0 => Some(RequestKind::Standard),
            1 => Some(RequestKind::Class),
            2 => Some(RequestKind::Vendor),
            _ => None,
        }
    }

    /// The recipient, or `None` for reserved values.
    pub const fn recipient(&self) -> Option<Recipient> {
        match self.request_type & 0x1f {
            0 => Some(Recipient::Device),
            1 => Some(Recipient::Interface),
            2 => Some(Recipient::Endpoint),
            3 => Some(Recipient::Other),
            _ => None,
        }
    }

    /// The packet as the 8 bytes sent on the wire.
    pub const fn to_bytes(&self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [
            self.request_type,
            self.request,
            v[0],
            v[1],
            i[0],
            i[1],
            l[0],
            l[1],
        ]
    }

    /// Parse the 8 wire bytes.
    pub const fn from_bytes(b: [u8; 8]) -> Self {
        SetupPacket {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// GET_DESCRIPTOR(type, index) for `length` bytes, to the device.
    pub const fn get_descriptor(descriptor_type: u8, index: u8, lang: u16, length: u16) -> Self {
        SetupPacket::new(
            ControlDirection::In,
            RequestKind::Standard,
            Recipient::Device,
            standard::GET_DESCRIPTOR,
            ((descriptor_type as u16) << 8) | index as u16,
            lang,
            length,
        )
    }

    /// GET_STATUS to a device, interface or endpoint (2 bytes back).
    pub const fn get_status(recipient: Recipient, index: u16) -> Self {
        SetupPacket::new(
            ControlDirection::In,
            RequestKind::Standard,
            recipient,
            standard::GET_STATUS,
            0,
            index,
            2,
        )
    }

    /// SET_FEATURE(selector) to a recipient.
    pub const fn set_feature(recipient: Recipient, selector: u16, index: u16) -> Self {
        SetupPacket::new(
            ControlDirection::Out,
            RequestKind::Standard,
            recipient,
            standard::SET_FEATURE,
            selector,
            index,
            0,
        )
    }

    /// CLEAR_FEATURE(selector) to a recipient.
    pub const fn clear_feature(recipient: Recipient, selector: u16, index: u16) -> Self {
        SetupPacket::new(
            ControlDirection::Out,
            RequestKind::Standard,
            recipient,
            standard::CLEAR_FEATURE,
            selector,
            index,
            0,
        )
    }
}

impl core::fmt::Debug for SetupPacket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Setup {{ bmRequestType: {:#04x}, bRequest: {:#04x}, wValue: {:#06x}, wIndex: {:#06x}, wLength: {} }}",
            self.request_type, self.request, self.value, self.index, self.length
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vendor_in_request_type() {
        let s = SetupPacket::new(
            ControlDirection::In,
            RequestKind::Vendor,
            Recipient::Device,
            0x5c,
            0,
            0,
            64,
        );
        assert_eq!(s.request_type, 0xC0);
        assert_eq!(s.to_bytes(), [0xC0, 0x5c, 0, 0, 0, 0, 64, 0]);
        assert_eq!(s.direction(), ControlDirection::In);
        assert_eq!(s.kind(), Some(RequestKind::Vendor));
        assert_eq!(s.recipient(), Some(Recipient::Device));
    }

    #[test]
    fn set_halt_on_endpoint() {
        let s =
            SetupPacket::set_feature(Recipient::Endpoint, standard::FEATURE_ENDPOINT_HALT, 0x81);
        assert_eq!(s.to_bytes(), [0x02, 0x03, 0, 0, 0x81, 0, 0, 0]);
    }

    #[test]
    fn reserved_fields_are_none() {
        let s = SetupPacket::from_bytes([0x7f, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.kind(), None);
        assert_eq!(s.recipient(), None);
    }

    proptest! {
        #[test]
        fn bytes_round_trip(b in any::<[u8; 8]>()) {
            prop_assert_eq!(SetupPacket::from_bytes(b).to_bytes(), b);
        }
    }
}
