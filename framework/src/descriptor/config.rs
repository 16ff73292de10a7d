//! Configuration descriptor (type 2) with everything under it.

use std::num::NonZeroU8;

use super::device::index;
use super::iter::write_descriptor;
use super::{
    Anomaly, EndpointDescriptor, InterfaceAssociation, InterfaceDescriptor, InterfaceSettings,
    RawOwned, CONFIGURATION,
};

/// A parsed configuration: its header fields, interfaces (each with its alternate settings and
/// their endpoints), interface associations, and the descriptors kept raw.
///
/// KMDF: the `USB_CONFIGURATION_DESCRIPTOR` a `WDFUSBDEVICE` selects, already walked.
///
/// `bNumInterfaces` and `wTotalLength` are not stored: [`to_bytes`](Self::to_bytes) computes
/// them. What [`parse`](Self::parse) tolerated is in [`anomalies`](Self::anomalies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationDescriptor {
    /// `bConfigurationValue`: the value `SET_CONFIGURATION` takes.
    pub value: u8,
    /// `iConfiguration` (`None` for index 0).
    pub string_index: Option<NonZeroU8>,
    /// `bmAttributes`: bit 7 reserved (set), bit 6 self-powered, bit 5 remote wakeup.
    pub attributes: u8,
    /// `bMaxPower`, in units of 2 mA (USB 2.0) or 8 mA (SuperSpeed); see
    /// [`max_power_ma`](Self::max_power_ma).
    pub max_power: u8,
    /// Interfaces by number, in order of first appearance.
    pub interfaces: Vec<InterfaceSettings>,
    /// Interface association descriptors, in the order [`to_bytes`](Self::to_bytes) writes
    /// them: those whose first interface is absent, then by interface (parse sorts them so).
    pub associations: Vec<InterfaceAssociation>,
    /// Descriptors before the first interface that are not interface associations (OTG,
    /// vendor, stray endpoints, …), kept raw.
    pub extra: Vec<RawOwned>,
    /// What the parser tolerated. Empty for a well-formed descriptor and for built values.
    pub anomalies: Vec<Anomaly>,
}

impl ConfigurationDescriptor {
    /// Size of the configuration descriptor header.
    pub const HEADER_LEN: usize = 9;

    /// The descriptor bytes, with `wTotalLength` and `bNumInterfaces` computed.
    ///
    /// Layout: header, `extra`, associations whose first interface is absent, then each
    /// interface's settings in order, each preceded by the associations that start at it.
    /// Parsing the result gives back an equal value (without the anomalies of the original
    /// parse, apart from stray endpoints and companions, which stay where they were).
    ///
    /// # Panics
    /// If the result would exceed 65535 bytes, or a raw descriptor body exceeds 253 bytes.
    /// Values from [`parse`](Self::parse) never do.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let num_interfaces = u8::try_from(self.interfaces.len()).unwrap_or(u8::MAX);
        write_descriptor(
            &mut out,
            CONFIGURATION,
            &[
                0,
                0, // wTotalLength, patched below
                num_interfaces,
                self.value,
                index(self.string_index),
                self.attributes,
                self.max_power,
            ],
        );
        for raw in &self.extra {
            write_descriptor(&mut out, raw.descriptor_type, &raw.body);
        }
        for iad in self
            .associations
            .iter()
            .filter(|a| !self.has_interface(a.first_interface))
        {
            out.extend_from_slice(&iad.to_bytes());
        }
        for group in &self.interfaces {
            for iad in self
                .associations
                .iter()
                .filter(|a| a.first_interface == group.number)
            {
                out.extend_from_slice(&iad.to_bytes());
            }
            for setting in &group.alt_settings {
                setting.write_to(&mut out);
            }
        }
        let total = u16::try_from(out.len()).unwrap_or_else(|_| {
            panic!("configuration of {} bytes exceeds wTotalLength", out.len())
        });
        let [lo, hi] = total.to_le_bytes();
        if let Some(field) = out.get_mut(2..4) {
            field.copy_from_slice(&[lo, hi]);
        }
        out
    }

    /// Put `associations` in the order [`to_bytes`](Self::to_bytes) writes them, so that a
    /// parse of the bytes compares equal.
    pub(crate) fn order_associations(&mut self) {
        let mut ordered: Vec<InterfaceAssociation> = self
            .associations
            .iter()
            .filter(|a| !self.has_interface(a.first_interface))
            .cloned()
            .collect();
        for group in &self.interfaces {
            ordered.extend(
                self.associations
                    .iter()
                    .filter(|a| a.first_interface == group.number)
                    .cloned(),
            );
        }
        self.associations = ordered;
    }

    fn has_interface(&self, number: u8) -> bool {
        self.interfaces.iter().any(|i| i.number == number)
    }

    /// Whether the device is self-powered in this configuration (`bmAttributes` bit 6).
    pub fn self_powered(&self) -> bool {
        self.attributes & 0x40 != 0
    }

    /// Whether the device supports remote wakeup in this configuration (`bmAttributes` bit 5).
    pub fn remote_wakeup(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Maximum power in mA for a USB 2.0 (or slower) device: `bMaxPower` × 2.
    pub fn max_power_ma(&self) -> u16 {
        u16::from(self.max_power) * 2
    }

    /// Maximum power in mA for a SuperSpeed device: `bMaxPower` × 8.
    pub fn max_power_ma_superspeed(&self) -> u16 {
        u16::from(self.max_power) * 8
    }

    /// The interface with `bInterfaceNumber == number`.
    pub fn interface(&self, number: u8) -> Option<&InterfaceSettings> {
        self.interfaces.iter().find(|i| i.number == number)
    }

    /// Alternate setting `alternate_setting` of interface `number`.
    pub fn setting(&self, number: u8, alternate_setting: u8) -> Option<&InterfaceDescriptor> {
        self.interface(number)?.alt(alternate_setting)
    }

    /// Every alternate setting of every interface.
    pub fn settings(&self) -> impl Iterator<Item = &InterfaceDescriptor> {
        self.interfaces.iter().flat_map(|i| i.alt_settings.iter())
    }

    /// The first endpoint with address `address` in any setting, with the setting it is in.
    pub fn find_endpoint(
        &self,
        address: u8,
    ) -> Option<(&InterfaceDescriptor, &EndpointDescriptor)> {
        self.settings()
            .find_map(|s| s.endpoint(address).map(|e| (s, e)))
    }

    /// The interface association that interface `number` belongs to.
    pub fn association_of(&self, number: u8) -> Option<&InterfaceAssociation> {
        self.associations.iter().find(|a| a.contains(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::fixtures::*;
    use crate::descriptor::{Direction, HidDescriptor, TransferType, CS_INTERFACE, HID};

    #[test]
    fn gadget_zero_sourcesink() {
        let c = ConfigurationDescriptor::parse(CONFIG_SOURCESINK).unwrap();
        assert_eq!(c.value, 3);
        assert_eq!(c.string_index, NonZeroU8::new(4));
        assert!(c.self_powered() && !c.remote_wakeup());
        assert_eq!(c.max_power_ma(), 2);
        assert_eq!(c.interfaces.len(), 1);
        let s = c.setting(0, 0).unwrap();
        assert_eq!(s.class, 0xFF);
        assert_eq!(
            s.endpoints,
            vec![
                EndpointDescriptor::bulk(0x81, 512),
                EndpointDescriptor::bulk(0x01, 512)
            ]
        );
        let (owner, ep) = c.find_endpoint(0x01).unwrap();
        assert_eq!((owner.number, ep.direction()), (0, Direction::Out));
        assert!(c.find_endpoint(0x82).is_none());
        assert!(c.anomalies.is_empty());
        assert_eq!(c.to_bytes(), CONFIG_SOURCESINK);
    }

    #[test]
    fn cdc_acm_with_iad() {
        let c = ConfigurationDescriptor::parse(CONFIG_CDC_ACM).unwrap();
        assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
        assert_eq!(
            c.associations,
            vec![InterfaceAssociation::new(0, 2, 2, 2, 0)]
        );
        assert_eq!(c.association_of(1), c.associations.first());
        let comm = c.setting(0, 0).unwrap();
        assert_eq!((comm.class, comm.subclass), (2, 2));
        let functional: Vec<u8> = comm
            .class_specific_of_type(CS_INTERFACE)
            .filter_map(|d| d.body.first().copied())
            .collect();
        assert_eq!(functional, vec![0x00, 0x01, 0x02, 0x06]); // header, call mgmt, ACM, union
        assert_eq!(comm.endpoints[0].transfer_type(), TransferType::Interrupt);
        assert_eq!(comm.endpoints[0].interval, 16);
        let data = c.setting(1, 0).unwrap();
        assert_eq!(data.class, 0x0A);
        assert_eq!(data.endpoints.len(), 2);
        assert_eq!(c.to_bytes(), CONFIG_CDC_ACM);
    }

    #[test]
    fn hid_mouse() {
        let c = ConfigurationDescriptor::parse(CONFIG_HID_MOUSE).unwrap();
        assert!(c.remote_wakeup());
        let s = c.setting(0, 0).unwrap();
        let hid = s.class_specific_of_type(HID).next().unwrap();
        assert_eq!(
            HidDescriptor::from_raw_owned(hid)
                .unwrap()
                .report_descriptor_length(),
            Some(52)
        );
        assert_eq!(c.to_bytes(), CONFIG_HID_MOUSE);
    }

    #[test]
    fn superspeed_companions() {
        let c = ConfigurationDescriptor::parse(CONFIG_SUPERSPEED).unwrap();
        assert!(c.anomalies.is_empty());
        assert_eq!(c.max_power_ma_superspeed(), 896);
        for ep in &c.setting(0, 0).unwrap().endpoints {
            assert_eq!(ep.max_packet_size, 1024);
            assert_eq!(ep.companion.map(|c| c.max_burst), Some(15));
            assert!(ep.extra.is_empty());
        }
        assert_eq!(c.to_bytes(), CONFIG_SUPERSPEED);
    }

    #[test]
    fn alternate_settings_group_by_number() {
        // Interface 0 alt 0 (no endpoints), interface 1, then interface 0 alt 1 (iso endpoint).
        let mut b = vec![9, 2, 0, 0, 2, 1, 0, 0x80, 50];
        b.extend([9, 4, 0, 0, 0, 1, 2, 0, 0]);
        b.extend([9, 4, 1, 0, 0, 1, 1, 0, 0]);
        b.extend([9, 4, 0, 1, 1, 1, 2, 0, 0]);
        b.extend([7, 5, 0x83, 0x05, 0x00, 0x14, 1]);
        b.extend([7, 0x25, 1, 0, 0, 0, 0]); // class-specific endpoint descriptor
        b[2] = b.len() as u8;
        let c = ConfigurationDescriptor::parse(&b).unwrap();
        assert!(c.anomalies.is_empty());
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.interface(0).unwrap().alt_settings.len(), 2);
        let ep = &c.setting(0, 1).unwrap().endpoints[0];
        assert_eq!(ep.additional_transactions, 2);
        assert_eq!(ep.extra, vec![RawOwned::new(0x25, [1, 0, 0, 0, 0])]);
        // Re-written grouped by interface; parses back equal.
        assert_eq!(ConfigurationDescriptor::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn iad_order_on_write() {
        let mut c = ConfigurationDescriptor::parse(CONFIG_CDC_ACM).unwrap();
        c.associations
            .insert(0, InterfaceAssociation::new(1, 1, 0xFF, 0, 0));
        c.associations
            .push(InterfaceAssociation::new(9, 1, 0xFF, 0, 0)); // no interface 9
        c.order_associations();
        let firsts: Vec<u8> = c.associations.iter().map(|a| a.first_interface).collect();
        assert_eq!(firsts, vec![9, 0, 1]);
        assert_eq!(ConfigurationDescriptor::parse(&c.to_bytes()).unwrap(), c);
    }
}
