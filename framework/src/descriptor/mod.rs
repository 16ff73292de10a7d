//! USB descriptor parsing and building.
//!
//! Everything here is pure: byte slices in, typed values out (and back). Nothing talks to a
//! device, so the parsers can be tested, fuzzed and reused by the simulator.
//!
//! # A short guide
//!
//! Bytes from a device are untrusted. Each parser first checks the framing (`bLength`,
//! `bDescriptorType`, `wTotalLength`) and only then builds a typed value, so malformed input
//! gives a [`DescriptorError`], never a panic or an endless loop.
//!
//! | bytes | parse with | gives |
//! |---|---|---|
//! | any run of descriptors | [`Descriptors::new`] | checked [`RawDescriptor`] views |
//! | device descriptor (18 bytes) | [`DeviceDescriptor::parse`] | vendor/product IDs, class, … |
//! | configuration descriptor (`wTotalLength` bytes) | [`ConfigurationDescriptor::parse`] (or [`parse_lenient`](ConfigurationDescriptor::parse_lenient) for damaged ones) | interfaces → alternate settings → endpoints |
//! | BOS descriptor | [`BosDescriptor::parse`] | device capabilities (LPM, SuperSpeed, …) |
//! | string descriptor | [`parse_string`], [`parse_language_ids`] | `String`, LANGIDs |
//! | HID class descriptor (0x21) | [`HidDescriptor::parse`] | report descriptor length |
//!
//! The typed values turn back into bytes with `to_bytes()`. To describe a device model (for the
//! simulator or tests), write the configuration with [`ConfigBuilder`]:
//!
//! ```
//! use usbdf::descriptor::{ConfigBuilder, ConfigurationDescriptor, EndpointDescriptor};
//!
//! // Gadget zero's source/sink function: one vendor interface, two bulk endpoints.
//! let config = ConfigBuilder::new(1)
//!     .interface(0, 0xFF, 0, 0)
//!     .endpoint(EndpointDescriptor::bulk(0x81, 512))
//!     .endpoint(EndpointDescriptor::bulk(0x01, 512))
//!     .build();
//! let bytes = config.to_bytes();
//! assert_eq!(bytes.len(), 32); // wTotalLength, computed
//!
//! let parsed = ConfigurationDescriptor::parse(&bytes)?;
//! assert_eq!(parsed, config);
//! assert_eq!(parsed.find_endpoint(0x81).map(|(_, ep)| ep.max_packet_size), Some(512));
//! # Ok::<(), usbdf::descriptor::DescriptorError>(())
//! ```
//!
//! Descriptors that nusb hands out parse the same way, e.g.
//! `ConfigurationDescriptor::parse(nusb_config.as_bytes())`.
//!
//! # Leniency
//!
//! Real devices get some fields wrong. Parsers reject what makes the bytes unreadable (a
//! `bLength` of 0 or 1, a descriptor that runs past the data, a `wTotalLength` larger than the
//! data) and tolerate what does not: a wrong `bNumInterfaces`, `bNumEndpoints` or
//! `bNumDeviceCaps`, or a descriptor in an unexpected place, is recorded as an [`Anomaly`] on the
//! parsed value. [`ConfigurationDescriptor::parse_lenient`] goes further and salvages what it
//! can from damaged bytes, as Linux does. Each parser documents its own rules.

mod bos;
mod builder;
mod config;
mod config_parse;
mod device;
mod endpoint;
mod error;
mod hid_class;
mod interface;
mod iter;
mod string;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;

pub use bos::{
    BosDescriptor, DeviceCapability, PlatformCapability, SuperSpeedCapability, Usb2Extension,
    CAPABILITY_CONTAINER_ID, CAPABILITY_PLATFORM, CAPABILITY_SUPERSPEED,
    CAPABILITY_SUPERSPEED_PLUS, CAPABILITY_USB2_EXTENSION,
};
pub use builder::ConfigBuilder;
pub use config::ConfigurationDescriptor;
pub use device::{DeviceDescriptor, DeviceQualifierDescriptor};
pub use endpoint::{Direction, EndpointDescriptor, SsEndpointCompanion, TransferType};
pub use error::{Anomaly, DescriptorError};
pub use hid_class::{HidClassDescriptor, HidDescriptor};
pub use interface::{InterfaceAssociation, InterfaceDescriptor, InterfaceSettings};
pub use iter::{Descriptors, RawDescriptor, RawOwned};
pub use string::{
    encode_language_ids, encode_string, parse_language_ids, parse_string, LANGID_EN_US,
};

/// `bDescriptorType` of a device descriptor.
pub const DEVICE: u8 = 0x01;
/// `bDescriptorType` of a configuration descriptor.
pub const CONFIGURATION: u8 = 0x02;
/// `bDescriptorType` of a string descriptor.
pub const STRING: u8 = 0x03;
/// `bDescriptorType` of an interface descriptor.
pub const INTERFACE: u8 = 0x04;
/// `bDescriptorType` of an endpoint descriptor.
pub const ENDPOINT: u8 = 0x05;
/// `bDescriptorType` of a device qualifier descriptor (high-speed capable devices).
pub const DEVICE_QUALIFIER: u8 = 0x06;
/// `bDescriptorType` of an other-speed configuration descriptor.
pub const OTHER_SPEED_CONFIGURATION: u8 = 0x07;
/// `bDescriptorType` of an interface association descriptor (IAD).
pub const INTERFACE_ASSOCIATION: u8 = 0x0B;
/// `bDescriptorType` of a binary device object store (BOS) descriptor.
pub const BOS: u8 = 0x0F;
/// `bDescriptorType` of a device capability descriptor (inside a BOS).
pub const DEVICE_CAPABILITY: u8 = 0x10;
/// `bDescriptorType` of a HID class descriptor.
pub const HID: u8 = 0x21;
/// `bDescriptorType` of a HID report descriptor (named in a HID class descriptor).
pub const HID_REPORT: u8 = 0x22;
/// `bDescriptorType` of a class-specific interface descriptor (e.g. CDC functional descriptors).
pub const CS_INTERFACE: u8 = 0x24;
/// `bDescriptorType` of a class-specific endpoint descriptor.
pub const CS_ENDPOINT: u8 = 0x25;
/// `bDescriptorType` of a SuperSpeed endpoint companion descriptor.
pub const SS_ENDPOINT_COMPANION: u8 = 0x30;

/// Class codes used in device, interface and interface association descriptors.
pub mod class {
    /// Class defined per interface (device descriptor only).
    pub const PER_INTERFACE: u8 = 0x00;
    /// Audio.
    pub const AUDIO: u8 = 0x01;
    /// Communications device class, control interface (CDC).
    pub const CDC: u8 = 0x02;
    /// Human interface device (HID).
    pub const HID: u8 = 0x03;
    /// Mass storage.
    pub const MASS_STORAGE: u8 = 0x08;
    /// Hub.
    pub const HUB: u8 = 0x09;
    /// CDC data interface.
    pub const CDC_DATA: u8 = 0x0A;
    /// Video.
    pub const VIDEO: u8 = 0x0E;
    /// Miscellaneous (used with interface association descriptors).
    pub const MISCELLANEOUS: u8 = 0xEF;
    /// Application specific.
    pub const APPLICATION_SPECIFIC: u8 = 0xFE;
    /// Vendor specific.
    pub const VENDOR_SPECIFIC: u8 = 0xFF;
}

static_assertions::assert_impl_all!(ConfigurationDescriptor: Send, Sync);
static_assertions::assert_impl_all!(BosDescriptor: Send, Sync);
static_assertions::assert_impl_all!(DescriptorError: Send, Sync, std::error::Error);
static_assertions::assert_impl_all!(Descriptors<'static>: Send, Sync);
