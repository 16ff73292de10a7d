//! [`ConfigBuilder`]: write a configuration descriptor in the order its bytes go.

use std::num::NonZeroU8;

use super::{
    ConfigurationDescriptor, EndpointDescriptor, InterfaceAssociation, InterfaceDescriptor,
    InterfaceSettings, RawOwned, SsEndpointCompanion,
};

/// Builds a [`ConfigurationDescriptor`] (and so its bytes) for device models and tests.
///
/// Calls follow the order of the descriptor bytes: the configuration, then for each function
/// an optional [`association`](Self::association), an [`interface`](Self::interface) or
/// [`alt_setting`](Self::alt_setting), its class-specific descriptors, its
/// [`endpoint`](Self::endpoint)s. [`class_specific`](Self::class_specific) attaches to what was
/// added last: the last endpoint, else the last interface, else the configuration.
/// `wTotalLength`, `bNumInterfaces` and `bNumEndpoints` are computed when the bytes are written.
///
/// Defaults: bus-powered (`bmAttributes` 0x80), 100 mA, no string.
///
/// ```
/// use usbdf::descriptor::{
///     class, ConfigBuilder, ConfigurationDescriptor, EndpointDescriptor, HidDescriptor,
///     InterfaceAssociation, CS_INTERFACE,
/// };
///
/// // A CDC-ACM serial port: IAD, communication interface with functional descriptors and a
/// // notification endpoint, data interface with two bulk endpoints.
/// let acm = ConfigBuilder::new(1)
///     .max_power_ma(100)
///     .association(InterfaceAssociation::new(0, 2, class::CDC, 2, 0))
///     .interface(0, class::CDC, 2, 0)
///     .class_specific(CS_INTERFACE, [0x00, 0x20, 0x01]) // header, CDC 1.20
///     .class_specific(CS_INTERFACE, [0x01, 0x00, 0x01]) // call management, data interface 1
///     .class_specific(CS_INTERFACE, [0x02, 0x02]) // ACM: line coding and state
///     .class_specific(CS_INTERFACE, [0x06, 0x00, 0x01]) // union: control 0, data 1
///     .endpoint(EndpointDescriptor::interrupt(0x81, 8, 16))
///     .interface(1, class::CDC_DATA, 0, 0)
///     .endpoint(EndpointDescriptor::bulk(0x02, 64))
///     .endpoint(EndpointDescriptor::bulk(0x82, 64))
///     .build();
/// assert_eq!(acm.to_bytes().len(), 75);
/// assert_eq!(ConfigurationDescriptor::parse(&acm.to_bytes())?, acm);
///
/// // A HID boot mouse with a 52-byte report descriptor.
/// let mouse = ConfigBuilder::new(1)
///     .remote_wakeup()
///     .interface(0, class::HID, 1, 2)
///     .raw(HidDescriptor::new(52).to_raw_owned())
///     .endpoint(EndpointDescriptor::interrupt(0x81, 4, 10))
///     .to_bytes();
/// assert_eq!(mouse.len(), 34);
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a builder does nothing until `build` or `to_bytes`"]
pub struct ConfigBuilder {
    config: ConfigurationDescriptor,
    /// Index of the interface group and setting added last.
    last_setting: Option<(usize, usize)>,
    /// Whether an endpoint was added after that setting.
    after_endpoint: bool,
}

impl ConfigBuilder {
    /// Start configuration `value` (`bConfigurationValue`, normally 1).
    pub fn new(value: u8) -> Self {
        ConfigBuilder {
            config: ConfigurationDescriptor {
                value,
                string_index: None,
                attributes: 0x80,
                max_power: 50,
                interfaces: Vec::new(),
                associations: Vec::new(),
                extra: Vec::new(),
                anomalies: Vec::new(),
            },
            last_setting: None,
            after_endpoint: false,
        }
    }

    /// Mark the configuration self-powered (`bmAttributes` bit 6).
    pub fn self_powered(mut self) -> Self {
        self.config.attributes |= 0x40;
        self
    }

    /// Mark the configuration as supporting remote wakeup (`bmAttributes` bit 5).
    pub fn remote_wakeup(mut self) -> Self {
        self.config.attributes |= 0x20;
        self
    }

    /// Set the maximum power in mA, in USB 2.0 units of 2 mA (rounded up, at most 510 mA).
    pub fn max_power_ma(mut self, ma: u16) -> Self {
        self.config.max_power = u8::try_from(ma.div_ceil(2)).unwrap_or(u8::MAX);
        self
    }

    /// Set `bMaxPower` directly (units of 2 mA, or 8 mA for SuperSpeed).
    pub fn max_power_raw(mut self, max_power: u8) -> Self {
        self.config.max_power = max_power;
        self
    }

    /// Set `iConfiguration` (0 for none).
    pub fn configuration_string(mut self, index: u8) -> Self {
        self.config.string_index = NonZeroU8::new(index);
        self
    }

    /// Add an interface association descriptor. It is written just before the interface it
    /// names as `first_interface`.
    pub fn association(mut self, association: InterfaceAssociation) -> Self {
        self.config.associations.push(association);
        self
    }

    /// Start alternate setting 0 of interface `number`.
    pub fn interface(self, number: u8, class: u8, subclass: u8, protocol: u8) -> Self {
        self.alt_setting(number, 0, class, subclass, protocol)
    }

    /// Start alternate setting `alternate_setting` of interface `number`.
    pub fn alt_setting(
        self,
        number: u8,
        alternate_setting: u8,
        class: u8,
        subclass: u8,
        protocol: u8,
    ) -> Self {
        self.setting(InterfaceDescriptor::new(
            number,
            alternate_setting,
            class,
            subclass,
            protocol,
        ))
    }

    /// Add a whole alternate setting (it may already hold endpoints and class-specific
    /// descriptors); later calls add to it.
    pub fn setting(mut self, setting: InterfaceDescriptor) -> Self {
        let interfaces = &mut self.config.interfaces;
        let group = match interfaces.iter().position(|i| i.number == setting.number) {
            Some(g) => g,
            None => {
                interfaces.push(InterfaceSettings {
                    number: setting.number,
                    alt_settings: Vec::new(),
                });
                interfaces.len() - 1
            }
        };
        let alts = &mut interfaces[group].alt_settings;
        alts.push(setting);
        self.last_setting = Some((group, alts.len() - 1));
        self.after_endpoint = false;
        self
    }

    /// Set `iInterface` of the current alternate setting (0 for none).
    ///
    /// # Panics
    /// If no interface was added yet.
    pub fn interface_string(mut self, index: u8) -> Self {
        self.current_setting("interface_string").string_index = NonZeroU8::new(index);
        self
    }

    /// Add an endpoint to the current alternate setting.
    ///
    /// # Panics
    /// If no interface was added yet.
    pub fn endpoint(mut self, endpoint: EndpointDescriptor) -> Self {
        self.current_setting("endpoint").endpoints.push(endpoint);
        self.after_endpoint = true;
        self
    }

    /// Give the last endpoint a SuperSpeed companion.
    ///
    /// # Panics
    /// If no endpoint was added to the current alternate setting.
    pub fn companion(mut self, companion: SsEndpointCompanion) -> Self {
        let setting = self.current_setting("companion");
        match setting.endpoints.last_mut() {
            Some(ep) => ep.companion = Some(companion),
            None => panic!("ConfigBuilder::companion called before any endpoint"),
        }
        self
    }

    /// Add a class-specific (or any other) descriptor with type `descriptor_type` and the
    /// given body (the bytes after `bLength` and `bDescriptorType`). It attaches to the last
    /// endpoint added, else to the current interface, else to the configuration.
    ///
    /// # Panics
    /// If `body` is longer than 253 bytes.
    pub fn class_specific(self, descriptor_type: u8, body: impl Into<Vec<u8>>) -> Self {
        self.raw(RawOwned::new(descriptor_type, body))
    }

    /// Add a raw descriptor; see [`class_specific`](Self::class_specific).
    ///
    /// # Panics
    /// If its body is longer than 253 bytes.
    pub fn raw(mut self, descriptor: RawOwned) -> Self {
        assert!(
            descriptor.body.len() <= 253,
            "descriptor body of {} bytes does not fit bLength",
            descriptor.body.len()
        );
        let after_endpoint = self.after_endpoint;
        match self.current_setting_opt() {
            Some(setting) => match setting.endpoints.last_mut() {
                Some(ep) if after_endpoint => ep.extra.push(descriptor),
                _ => setting.class_specific.push(descriptor),
            },
            None => self.config.extra.push(descriptor),
        }
        self
    }

    /// Finish: the typed configuration. Its [`to_bytes`](ConfigurationDescriptor::to_bytes)
    /// parses back to an equal value.
    pub fn build(self) -> ConfigurationDescriptor {
        let mut config = self.config;
        config.order_associations();
        config
    }

    /// Finish: the configuration descriptor bytes.
    ///
    /// # Panics
    /// If they would exceed 65535 bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        self.build().to_bytes()
    }

    fn current_setting_opt(&mut self) -> Option<&mut InterfaceDescriptor> {
        let (g, s) = self.last_setting?;
        self.config.interfaces.get_mut(g)?.alt_settings.get_mut(s)
    }

    fn current_setting(&mut self, what: &str) -> &mut InterfaceDescriptor {
        match self.current_setting_opt() {
            Some(s) => s,
            None => panic!("ConfigBuilder::{what} called before any interface"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::fixtures::*;
    use crate::descriptor::{class, HidDescriptor, CS_INTERFACE};

    #[test]
    fn builds_sourcesink_bytes() {
        let bytes = ConfigBuilder::new(3)
            .self_powered()
            .max_power_raw(1)
            .configuration_string(4)
            .interface(0, class::VENDOR_SPECIFIC, 0, 0)
            .endpoint(EndpointDescriptor::bulk(0x81, 512))
            .endpoint(EndpointDescriptor::bulk(0x01, 512))
            .to_bytes();
        assert_eq!(bytes, CONFIG_SOURCESINK);
    }

    #[test]
    fn builds_cdc_acm_bytes() {
        let bytes = ConfigBuilder::new(1)
            .max_power_ma(100)
            .association(InterfaceAssociation::new(0, 2, 2, 2, 0))
            .interface(0, 2, 2, 0)
            .interface_string(4)
            .class_specific(CS_INTERFACE, [0x00, 0x20, 0x01])
            .class_specific(CS_INTERFACE, [0x01, 0x00, 0x01])
            .class_specific(CS_INTERFACE, [0x02, 0x02])
            .class_specific(CS_INTERFACE, [0x06, 0x00, 0x01])
            .endpoint(EndpointDescriptor::interrupt(0x81, 8, 16))
            .interface(1, class::CDC_DATA, 0, 0)
            .endpoint(EndpointDescriptor::bulk(0x02, 64))
            .endpoint(EndpointDescriptor::bulk(0x82, 64))
            .to_bytes();
        assert_eq!(bytes, CONFIG_CDC_ACM);
    }

    #[test]
    fn builds_hid_and_superspeed_bytes() {
        let hid = ConfigBuilder::new(1)
            .remote_wakeup()
            .interface(0, class::HID, 1, 2)
            .raw(HidDescriptor::new(52).to_raw_owned())
            .endpoint(EndpointDescriptor::interrupt(0x81, 4, 10))
            .to_bytes();
        assert_eq!(hid, CONFIG_HID_MOUSE);

        let companion = SsEndpointCompanion {
            max_burst: 15,
            attributes: 0,
            bytes_per_interval: 0,
        };
        let ss = ConfigBuilder::new(1)
            .max_power_raw(112)
            .interface(0, class::VENDOR_SPECIFIC, 0, 0)
            .endpoint(EndpointDescriptor::bulk(0x81, 1024))
            .companion(companion)
            .endpoint(EndpointDescriptor::bulk(0x01, 1024).with_companion(companion))
            .to_bytes();
        assert_eq!(ss, CONFIG_SUPERSPEED);
    }

    #[test]
    fn class_specific_attaches_to_what_came_last() {
        let c = ConfigBuilder::new(1)
            .class_specific(0x09, [3]) // OTG descriptor: configuration
            .interface(0, 1, 2, 0)
            .class_specific(CS_INTERFACE, [1]) // interface
            .endpoint(EndpointDescriptor::isochronous(0x01, 192, 1))
            .class_specific(0x25, [1, 0, 0, 0, 0]) // endpoint
            .alt_setting(0, 1, 1, 2, 0)
            .class_specific(CS_INTERFACE, [2]) // new setting
            .build();
        assert_eq!(c.extra, vec![RawOwned::new(0x09, [3])]);
        let s0 = c.setting(0, 0).unwrap();
        assert_eq!(s0.class_specific, vec![RawOwned::new(CS_INTERFACE, [1])]);
        assert_eq!(
            s0.endpoints[0].extra,
            vec![RawOwned::new(0x25, [1, 0, 0, 0, 0])]
        );
        assert_eq!(
            c.setting(0, 1).unwrap().class_specific,
            vec![RawOwned::new(CS_INTERFACE, [2])]
        );
        assert_eq!(ConfigurationDescriptor::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn max_power_rounds_and_saturates() {
        assert_eq!(
            ConfigBuilder::new(1).max_power_ma(101).build().max_power,
            51
        );
        assert_eq!(
            ConfigBuilder::new(1).max_power_ma(2000).build().max_power,
            255
        );
    }

    #[test]
    #[should_panic(expected = "before any interface")]
    fn endpoint_without_interface_panics() {
        let _ = ConfigBuilder::new(1).endpoint(EndpointDescriptor::bulk(0x81, 64));
    }
}
