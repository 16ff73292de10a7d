//! Interface descriptors (type 4), their grouping into interfaces, and interface association
//! descriptors (type 0x0B).

use std::num::NonZeroU8;

use super::device::index;
use super::iter::{checked, write_descriptor, RawDescriptor};
use super::{DescriptorError, EndpointDescriptor, RawOwned, INTERFACE, INTERFACE_ASSOCIATION};

/// One alternate setting of an interface: its descriptor, endpoints and class-specific
/// descriptors.
///
/// KMDF: a `WDF_USB_INTERFACE_SETTING`/`USB_INTERFACE_DESCRIPTOR` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDescriptor {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bAlternateSetting`.
    pub alternate_setting: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
    /// `iInterface` (`None` for index 0).
    pub string_index: Option<NonZeroU8>,
    /// The endpoint descriptors that followed, in order. `bNumEndpoints` is not stored: it is
    /// `endpoints.len()` when written (a parsed mismatch is an [`Anomaly`](super::Anomaly)).
    pub endpoints: Vec<EndpointDescriptor>,
    /// Descriptors between this interface descriptor and its first endpoint, kept raw: CDC
    /// functional descriptors, the HID descriptor (0x21), vendor descriptors, …
    pub class_specific: Vec<RawOwned>,
}

impl InterfaceDescriptor {
    /// Size of an interface descriptor.
    pub const LEN: usize = 9;

    /// An alternate setting with no endpoints and no class-specific descriptors.
    pub fn new(number: u8, alternate_setting: u8, class: u8, subclass: u8, protocol: u8) -> Self {
        InterfaceDescriptor {
            number,
            alternate_setting,
            class,
            subclass,
            protocol,
            string_index: None,
            endpoints: Vec::new(),
            class_specific: Vec::new(),
        }
    }

    /// Parse a standalone interface descriptor from the start of `buf` (no endpoints).
    /// Returns it with its `bNumEndpoints`.
    ///
    /// # Errors
    /// [`DescriptorError::WrongType`] unless the type is 4, [`DescriptorError::BadLength`] if
    /// `bLength < 9`, [`DescriptorError::Truncated`] if `buf` is shorter than `bLength`.
    pub fn parse(buf: &[u8]) -> Result<(Self, u8), DescriptorError> {
        let (raw, _) = checked::<9>(buf, INTERFACE)?;
        Self::from_raw(&raw)
    }

    pub(crate) fn from_raw(raw: &RawDescriptor<'_>) -> Result<(Self, u8), DescriptorError> {
        let b = raw.fields::<9>(INTERFACE)?;
        let mut d = Self::new(b[2], b[3], b[5], b[6], b[7]);
        d.string_index = NonZeroU8::new(b[8]);
        Ok((d, b[4]))
    }

    /// The endpoint with address `address` in this setting.
    pub fn endpoint(&self, address: u8) -> Option<&EndpointDescriptor> {
        self.endpoints.iter().find(|e| e.address == address)
    }

    /// The class-specific descriptors of type `descriptor_type`.
    pub fn class_specific_of_type(&self, descriptor_type: u8) -> impl Iterator<Item = &RawOwned> {
        self.class_specific
            .iter()
            .filter(move |d| d.descriptor_type == descriptor_type)
    }

    /// Append this setting (interface descriptor, class-specific descriptors, endpoints) to
    /// `out`. `bNumEndpoints` is `endpoints.len()` (saturating at 255).
    ///
    /// # Panics
    /// If a raw descriptor body is longer than 253 bytes (parsed values never are).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let num_endpoints = u8::try_from(self.endpoints.len()).unwrap_or(u8::MAX);
        write_descriptor(
            out,
            INTERFACE,
            &[
                self.number,
                self.alternate_setting,
                num_endpoints,
                self.class,
                self.subclass,
                self.protocol,
                index(self.string_index),
            ],
        );
        for raw in &self.class_specific {
            write_descriptor(out, raw.descriptor_type, &raw.body);
        }
        for ep in &self.endpoints {
            ep.write_to(out);
        }
    }
}

/// All alternate settings of one interface number.
///
/// KMDF: `WDFUSBINTERFACE` (the settings it can select).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSettings {
    /// `bInterfaceNumber` shared by all settings.
    pub number: u8,
    /// The settings, in the order they appeared (normally alternate setting 0 first).
    pub alt_settings: Vec<InterfaceDescriptor>,
}

impl InterfaceSettings {
    /// The setting with `bAlternateSetting == alternate_setting` (the first, if repeated).
    pub fn alt(&self, alternate_setting: u8) -> Option<&InterfaceDescriptor> {
        self.alt_settings
            .iter()
            .find(|s| s.alternate_setting == alternate_setting)
    }

    /// The first setting listed (the one active after `SET_CONFIGURATION`, normally alt 0).
    pub fn first(&self) -> Option<&InterfaceDescriptor> {
        self.alt_settings.first()
    }
}

/// An interface association descriptor (IAD): groups consecutive interfaces into one function
/// (e.g. the two interfaces of a CDC-ACM port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAssociation {
    /// `bFirstInterface`.
    pub first_interface: u8,
    /// `bInterfaceCount`.
    pub interface_count: u8,
    /// `bFunctionClass`.
    pub function_class: u8,
    /// `bFunctionSubClass`.
    pub function_subclass: u8,
    /// `bFunctionProtocol`.
    pub function_protocol: u8,
    /// `iFunction` (`None` for index 0).
    pub string_index: Option<NonZeroU8>,
}

impl InterfaceAssociation {
    /// Size of an interface association descriptor.
    pub const LEN: usize = 8;

    /// An association of `interface_count` interfaces from `first_interface`, with no string.
    pub fn new(
        first_interface: u8,
        interface_count: u8,
        function_class: u8,
        function_subclass: u8,
        function_protocol: u8,
    ) -> Self {
        InterfaceAssociation {
            first_interface,
            interface_count,
            function_class,
            function_subclass,
            function_protocol,
            string_index: None,
        }
    }

    /// Parse an IAD from the start of `buf`.
    ///
    /// # Errors
    /// As [`InterfaceDescriptor::parse`], with type 0x0B and a minimum `bLength` of 8.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (raw, _) = checked::<8>(buf, INTERFACE_ASSOCIATION)?;
        Self::from_raw(&raw)
    }

    pub(crate) fn from_raw(raw: &RawDescriptor<'_>) -> Result<Self, DescriptorError> {
        let b = raw.fields::<8>(INTERFACE_ASSOCIATION)?;
        Ok(InterfaceAssociation {
            first_interface: b[2],
            interface_count: b[3],
            function_class: b[4],
            function_subclass: b[5],
            function_protocol: b[6],
            string_index: NonZeroU8::new(b[7]),
        })
    }

    /// Whether interface `number` belongs to this function (computed without overflow).
    pub fn contains(&self, number: u8) -> bool {
        number >= self.first_interface
            && u16::from(number) < u16::from(self.first_interface) + u16::from(self.interface_count)
    }

    /// The 8 descriptor bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        [
            8,
            INTERFACE_ASSOCIATION,
            self.first_interface,
            self.interface_count,
            self.function_class,
            self.function_subclass,
            self.function_protocol,
            index(self.string_index),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_parse_and_write() {
        let bytes = [9, 4, 1, 2, 3, 0x0A, 0, 0, 5];
        let (d, n) = InterfaceDescriptor::parse(&bytes).unwrap();
        assert_eq!(n, 3);
        assert_eq!((d.number, d.alternate_setting, d.class), (1, 2, 0x0A));
        assert_eq!(d.string_index, NonZeroU8::new(5));
        let mut out = Vec::new();
        d.write_to(&mut out);
        assert_eq!(out, [9, 4, 1, 2, 0, 0x0A, 0, 0, 5]); // bNumEndpoints from endpoints.len()
        for n in 0..bytes.len() {
            assert!(InterfaceDescriptor::parse(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn iad() {
        let bytes = [8, 0x0B, 2, 2, 2, 2, 1, 0];
        let a = InterfaceAssociation::parse(&bytes).unwrap();
        assert_eq!(a, InterfaceAssociation::new(2, 2, 2, 2, 1));
        assert_eq!(a.to_bytes(), bytes);
        assert!(!a.contains(1) && a.contains(2) && a.contains(3) && !a.contains(4));
        assert!(InterfaceAssociation::new(255, 255, 0, 0, 0).contains(255));
        for n in 0..bytes.len() {
            assert!(InterfaceAssociation::parse(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn lookups() {
        let mut s0 = InterfaceDescriptor::new(0, 0, 0xFF, 0, 0);
        s0.endpoints.push(EndpointDescriptor::bulk(0x81, 64));
        s0.class_specific.push(RawOwned::new(0x24, [1]));
        s0.class_specific.push(RawOwned::new(0x21, [2]));
        let s1 = InterfaceDescriptor::new(0, 1, 0xFF, 0, 0);
        let i = InterfaceSettings {
            number: 0,
            alt_settings: vec![s0.clone(), s1.clone()],
        };
        assert_eq!(i.alt(1), Some(&s1));
        assert_eq!(i.first(), Some(&s0));
        assert_eq!(i.alt(2), None);
        assert_eq!(s0.endpoint(0x81).map(|e| e.max_packet_size), Some(64));
        assert_eq!(s0.class_specific_of_type(0x21).count(), 1);
    }
}
