//! ID tables.

use crate::descriptor::{DeviceDescriptor, InterfaceDescriptor};

/// One row of a driver's ID table: every field that is `Some` must match.
///
/// Rows are `const`, so a table is a `static`:
///
/// ```
/// use usbdf::driver::DeviceMatch;
/// static IDS: &[DeviceMatch] = &[
///     DeviceMatch::id(0x0525, 0xa4a9),
///     DeviceMatch::interface_class(0x02, 0x02, 0x01),
/// ];
/// assert_eq!(IDS.len(), 2);
/// ```
///
/// KMDF: an INF hardware ID; Linux: `struct usb_device_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeviceMatch {
    /// `idVendor`.
    pub vendor_id: Option<u16>,
    /// `idProduct`.
    pub product_id: Option<u16>,
    /// `bDeviceClass`.
    pub device_class: Option<u8>,
    /// `bDeviceSubClass`.
    pub device_subclass: Option<u8>,
    /// `bDeviceProtocol`.
    pub device_protocol: Option<u8>,
    /// `bInterfaceClass`.
    pub interface_class: Option<u8>,
    /// `bInterfaceSubClass`.
    pub interface_subclass: Option<u8>,
    /// `bInterfaceProtocol`.
    pub interface_protocol: Option<u8>,
    /// `bInterfaceNumber`.
    pub interface_number: Option<u8>,
}

impl DeviceMatch {
    /// Matches everything.
    pub const ANY: DeviceMatch = DeviceMatch {
        vendor_id: None,
        product_id: None,
        device_class: None,
        device_subclass: None,
        device_protocol: None,
        interface_class: None,
        interface_subclass: None,
        interface_protocol: None,
        interface_number: None,
    };

    /// Vendor and product (`USB_DEVICE`).
    pub const fn id(vendor_id: u16, product_id: u16) -> DeviceMatch {
        DeviceMatch {
            vendor_id: Some(vendor_id),
            product_id: Some(product_id),
            ..DeviceMatch::ANY
        }
    }

    /// Device class triple (`USB_DEVICE_INFO`).
    pub const fn device_class(class: u8, subclass: u8, protocol: u8) -> DeviceMatch {
        DeviceMatch {
            device_class: Some(class),
            device_subclass: Some(subclass),
            device_protocol: Some(protocol),
            ..DeviceMatch::ANY
        }
    }

    /// Interface class triple (`USB_INTERFACE_INFO`).
    pub const fn interface_class(class: u8, subclass: u8, protocol: u8) -> DeviceMatch {
        DeviceMatch {
            interface_class: Some(class),
            interface_subclass: Some(subclass),
            interface_protocol: Some(protocol),
            ..DeviceMatch::ANY
        }
    }

    /// Vendor/product plus an interface class (`USB_DEVICE_AND_INTERFACE_INFO`).
    pub const fn id_and_interface_class(
        vendor_id: u16,
        product_id: u16,
        class: u8,
        subclass: u8,
        protocol: u8,
    ) -> DeviceMatch {
        DeviceMatch {
            vendor_id: Some(vendor_id),
            product_id: Some(product_id),
            interface_class: Some(class),
            interface_subclass: Some(subclass),
            interface_protocol: Some(protocol),
            ..DeviceMatch::ANY
        }
    }

    /// Also require this interface number.
    pub const fn on_interface(mut self, number: u8) -> DeviceMatch {
        self.interface_number = Some(number);
        self
    }

    /// Only the interface class, any subclass and protocol.
    pub const fn any_subclass(mut self) -> DeviceMatch {
        self.interface_subclass = None;
        self.interface_protocol = None;
        self
    }

    /// Whether the row matches this device and interface.
    pub fn matches(&self, device: &DeviceDescriptor, interface: &InterfaceDescriptor) -> bool {
        fn eq<T: PartialEq>(want: Option<T>, have: T) -> bool {
            want.is_none_or(|w| w == have)
        }
        eq(self.vendor_id, device.vendor_id)
            && eq(self.product_id, device.product_id)
            && eq(self.device_class, device.class)
            && eq(self.device_subclass, device.subclass)
            && eq(self.device_protocol, device.protocol)
            && eq(self.interface_class, interface.class)
            && eq(self.interface_subclass, interface.subclass)
            && eq(self.interface_protocol, interface.protocol)
            && eq(self.interface_number, interface.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_on_what_they_name() {
        let dev = DeviceDescriptor::new(0x0525, 0xa4a7);
        let comm = InterfaceDescriptor::new(0, 0, 2, 2, 1);
        let data = InterfaceDescriptor::new(1, 0, 0x0a, 0, 0);
        assert!(DeviceMatch::ANY.matches(&dev, &data));
        assert!(DeviceMatch::id(0x0525, 0xa4a7).matches(&dev, &comm));
        assert!(!DeviceMatch::id(0x0525, 0xa4a0).matches(&dev, &comm));
        assert!(DeviceMatch::interface_class(2, 2, 1).matches(&dev, &comm));
        assert!(!DeviceMatch::interface_class(2, 2, 1).matches(&dev, &data));
        assert!(DeviceMatch::interface_class(2, 2, 0)
            .any_subclass()
            .matches(&dev, &comm));
        assert!(!DeviceMatch::id(0x0525, 0xa4a7)
            .on_interface(1)
            .matches(&dev, &comm));
        assert!(
            DeviceMatch::id_and_interface_class(0x0525, 0xa4a7, 0x0a, 0, 0).matches(&dev, &data)
        );
    }
}
