//! The device side of the simulator: the [`DeviceModel`] trait a simulated
//! device implements, and what it answers with.

use std::sync::atomic::Ordering;
use std::sync::Weak;

use crate::control::SetupPacket;
use crate::descriptor::{DeviceDescriptor, EndpointDescriptor, SsEndpointCompanion};
use crate::target::Speed;

use super::conn::Conn;

/// Everything a model tells the host at enumeration: the device
/// descriptor, the configuration descriptors (raw bytes, as
/// [`ConfigBuilder::to_bytes`](crate::descriptor::ConfigBuilder::to_bytes)
/// writes them) and the strings.
///
/// The simulator answers `GET_DESCRIPTOR` for the device, configuration and
/// string descriptors from this; any other descriptor request (HID report
/// descriptors, BOS, device qualifier) goes to [`DeviceModel::control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDescriptors {
    /// The device descriptor.
    pub device: DeviceDescriptor,
    /// Configuration descriptors in index order (`GET_DESCRIPTOR(CONFIG, i)`).
    pub configurations: Vec<Vec<u8>>,
    /// String descriptors by index (index 0, the language table, is built
    /// from [`languages`](Self::languages)).
    pub strings: Vec<(u8, String)>,
    /// LANGIDs of string descriptor 0 (normally `[0x0409]`, US English).
    pub languages: Vec<u16>,
}

impl ModelDescriptors {
    /// Descriptors with US English strings.
    pub fn new(device: DeviceDescriptor, configurations: Vec<Vec<u8>>) -> Self {
        ModelDescriptors {
            device,
            configurations,
            strings: Vec::new(),
            languages: vec![crate::descriptor::LANGID_EN_US],
        }
    }

    /// Add string `index` (and point nothing at it: set the descriptor's
    /// string index fields yourself, or use [`with_standard_strings`](Self::with_standard_strings)).
    pub fn with_string(mut self, index: u8, text: impl Into<String>) -> Self {
        self.strings.retain(|(i, _)| *i != index);
        self.strings.push((index, text.into()));
        self
    }

    /// Set manufacturer (string 1), product (2) and serial number (3), and
    /// point the device descriptor at them.
    pub fn with_standard_strings(
        mut self,
        manufacturer: &str,
        product: &str,
        serial: &str,
    ) -> Self {
        self.device.manufacturer_string_index = std::num::NonZeroU8::new(1);
        self.device.product_string_index = std::num::NonZeroU8::new(2);
        self.device.serial_number_string_index = std::num::NonZeroU8::new(3);
        self.with_string(1, manufacturer)
            .with_string(2, product)
            .with_string(3, serial)
    }

    /// The text of string `index`, if the model has one.
    pub fn string(&self, index: u8) -> Option<&str> {
        self.strings
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s.as_str())
    }
}

/// A model's answer to a control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    /// IN request: these bytes are the data stage (cut to `wLength`).
    Data(Vec<u8>),
    /// OUT request (or no data stage): accepted.
    Ack,
    /// Refuse the request: the host sees `Status::Stall`.
    Stall,
    /// Not ready: the simulator asks again later (after
    /// [`Notifier::notify`], or on its poll timer) until the request's
    /// timeout, when it completes `TimedOut`.
    Nak,
}

/// A model's answer to one OUT data packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutReply {
    /// The packet was accepted.
    Ack,
    /// Not now (buffers full): the packet is offered again later.
    Nak,
    /// The endpoint is halted: this and every later transfer on it fail
    /// with `Stall` until the host clears the halt.
    Stall,
}

/// A model's answer to one IN token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InReply {
    /// The model wrote `n` bytes at the start of the packet buffer
    /// (`n` < max packet size ends the host's transfer: a short packet;
    /// `Data(0)` is a zero-length packet).
    Data(usize),
    /// Nothing to send now: the token is retried later.
    Nak,
    /// The endpoint is halted (as [`OutReply::Stall`]).
    Stall,
    /// The device sent more than the packet could hold (babble): the host
    /// transfer ends with `Status::Overflow`.
    Babble,
}

/// How device-side activity reaches the simulated host controller.
///
/// A model gets one in [`DeviceModel::attach`] at every plug. Call
/// [`notify`](Self::notify) whenever something the model NAKed may now
/// succeed (data arrived for an IN endpoint, buffer space freed for OUT,
/// a control answer became ready). Cheap, non-blocking, callable from any
/// thread, and a no-op once the device is unplugged.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub(crate) conn: Weak<Conn>,
    pub(crate) speed: Speed,
}

impl Notifier {
    /// Ask the controller to retry NAKed packets and requests.
    pub fn notify(&self) {
        if let Some(c) = self.conn.upgrade() {
            c.signal.notify();
        }
    }

    /// Halt endpoint `address` from the device side (a function stalling
    /// its own endpoint, like f_sourcesink on a data mismatch): transfers
    /// on it fail with `Stall` and `GET_STATUS` reports it halted until
    /// the host clears the halt.
    pub fn set_halt(&self, address: u8) {
        if let Some(c) = self.conn.upgrade() {
            c.device_halts
                .fetch_or(1 << super::conn::ep_index(address), Ordering::AcqRel);
            c.signal.notify();
        }
    }

    /// The speed the device is connected at (what
    /// [`DeviceModel::descriptors`] was asked for).
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// A notifier connected to nothing (for unit-testing a model alone).
    pub fn detached(speed: Speed) -> Notifier {
        Notifier {
            conn: Weak::new(),
            speed,
        }
    }
}

/// A simulated USB device: its descriptors and how it answers the bus.
///
/// The simulator calls these methods on its controller thread, one at a
/// time (a model needs no locking of its own unless it shares state with a
/// device-side handle). Calls must not block: answer
/// [`Nak`](InReply::Nak) and call [`Notifier::notify`] later instead.
///
/// The simulator itself handles the standard requests that need no model
/// knowledge: `GET_DESCRIPTOR` for the device, configuration and string
/// descriptors, `GET_STATUS`, `SET/CLEAR_FEATURE(ENDPOINT_HALT)`,
/// `SET/GET_CONFIGURATION` and `SET/GET_INTERFACE` (it tells the model
/// through [`set_configuration`](Self::set_configuration) and
/// [`set_interface`](Self::set_interface)). Everything else reaches
/// [`control`](Self::control).
///
/// Data moves packet by packet: for every IN token the host controller
/// sends, [`in_packet`](Self::in_packet) fills one packet; every OUT packet
/// is offered to [`out_packet`](Self::out_packet). Packets are at most the
/// endpoint's max packet size from the active configuration's descriptor.
///
/// ```
/// use usbdf::descriptor::{ConfigBuilder, DeviceDescriptor, EndpointDescriptor};
/// use usbdf::sim::{DeviceModel, InReply, ModelDescriptors, OutReply};
/// use usbdf::Speed;
///
/// /// Answers every IN token with the bytes of the last OUT packet.
/// struct Parrot(Vec<u8>);
///
/// impl DeviceModel for Parrot {
///     fn descriptors(&self, speed: Speed) -> ModelDescriptors {
///         let mps = usbdf::sim::bulk_max_packet_size(speed);
///         let config = ConfigBuilder::new(1)
///             .interface(0, 0xFF, 0, 0)
///             .endpoint(EndpointDescriptor::bulk(0x01, mps))
///             .endpoint(EndpointDescriptor::bulk(0x81, mps))
///             .to_bytes();
///         ModelDescriptors::new(DeviceDescriptor::new(0x1234, 0x5678), vec![config])
///     }
///     fn out_packet(&mut self, _ep: u8, data: &[u8]) -> OutReply {
///         self.0.clear();
///         self.0.extend_from_slice(data);
///         OutReply::Ack
///     }
///     fn in_packet(&mut self, _ep: u8, buf: &mut [u8]) -> InReply {
///         let n = self.0.len().min(buf.len());
///         buf[..n].copy_from_slice(&self.0[..n]);
///         InReply::Data(n)
///     }
/// }
/// ```
pub trait DeviceModel: Send + 'static {
    /// The descriptors at this connection speed (bulk max packet size is
    /// 64 at full speed, 512 at high speed, 1024 at SuperSpeed: see
    /// [`bulk_max_packet_size`]).
    fn descriptors(&self, speed: Speed) -> ModelDescriptors;

    /// The device was plugged in; `notifier` reaches the controller until
    /// it is unplugged. Called before the host configures the device.
    fn attach(&mut self, notifier: Notifier) {
        let _ = notifier;
    }

    /// The device was unplugged (or its port reset).
    fn detach(&mut self) {}

    /// `SET_CONFIGURATION(value)` (0: deconfigured), already validated.
    fn set_configuration(&mut self, value: u8) {
        let _ = value;
    }

    /// `SET_INTERFACE(interface, alt_setting)`, already validated.
    fn set_interface(&mut self, interface: u8, alt_setting: u8) {
        let _ = (interface, alt_setting);
    }

    /// A control request the simulator does not handle itself: class and
    /// vendor requests, and standard ones such as `GET_DESCRIPTOR` of a HID
    /// report descriptor. `data` is the OUT data stage (empty for IN).
    /// The default stalls.
    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        let _ = (setup, data);
        ControlReply::Stall
    }

    /// One OUT packet on endpoint `endpoint` (`data` may be empty: a
    /// zero-length packet). The default stalls.
    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        let _ = (endpoint, data);
        OutReply::Stall
    }

    /// One IN token on endpoint `endpoint`: write up to `buf.len()` (the max
    /// packet size) bytes into `buf`. The default NAKs.
    fn in_packet(&mut self, endpoint: u8, buf: &mut [u8]) -> InReply {
        let _ = (endpoint, buf);
        InReply::Nak
    }

    /// The host cleared a halt on `endpoint` (`CLEAR_FEATURE(ENDPOINT_HALT)`);
    /// the data toggle is reset to DATA0.
    fn clear_halt(&mut self, endpoint: u8) {
        let _ = endpoint;
    }
}

impl DeviceModel for Box<dyn DeviceModel> {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        (**self).descriptors(speed)
    }
    fn attach(&mut self, notifier: Notifier) {
        (**self).attach(notifier)
    }
    fn detach(&mut self) {
        (**self).detach()
    }
    fn set_configuration(&mut self, value: u8) {
        (**self).set_configuration(value)
    }
    fn set_interface(&mut self, interface: u8, alt_setting: u8) {
        (**self).set_interface(interface, alt_setting)
    }
    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        (**self).control(setup, data)
    }
    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        (**self).out_packet(endpoint, data)
    }
    fn in_packet(&mut self, endpoint: u8, buf: &mut [u8]) -> InReply {
        (**self).in_packet(endpoint, buf)
    }
    fn clear_halt(&mut self, endpoint: u8) {
        (**self).clear_halt(endpoint)
    }
}

/// The bulk max packet size at `speed`: 64 (full), 512 (high), 1024
/// (SuperSpeed and faster); 8 at low speed, which has no bulk endpoints.
pub fn bulk_max_packet_size(speed: Speed) -> u16 {
    match speed {
        Speed::Low => 8,
        Speed::Full => 64,
        Speed::High => 512,
        _ => 1024,
    }
}

/// A bulk endpoint descriptor right for `speed` (with a SuperSpeed
/// companion descriptor at SuperSpeed).
pub fn bulk_endpoint(address: u8, speed: Speed) -> EndpointDescriptor {
    let ep = EndpointDescriptor::bulk(address, bulk_max_packet_size(speed));
    if speed >= Speed::Super {
        ep.with_companion(SsEndpointCompanion {
            max_burst: 0,
            attributes: 0,
            bytes_per_interval: 0,
        })
    } else {
        ep
    }
}

/// An interrupt endpoint descriptor for `speed`, polled every
/// `interval_ms` milliseconds (`bInterval` encoded for the speed), with a
/// SuperSpeed companion at SuperSpeed.
pub fn interrupt_endpoint(
    address: u8,
    max_packet_size: u16,
    interval_ms: u8,
    speed: Speed,
) -> EndpointDescriptor {
    let interval = if speed >= Speed::High {
        // 2^(bInterval-1) microframes of 125 µs.
        let micro = u32::from(interval_ms.max(1)) * 8;
        (32 - micro.leading_zeros()).clamp(1, 16) as u8
    } else {
        interval_ms.max(1)
    };
    let ep = EndpointDescriptor::interrupt(address, max_packet_size, interval);
    if speed >= Speed::Super {
        ep.with_companion(SsEndpointCompanion {
            max_burst: 0,
            attributes: 0,
            bytes_per_interval: max_packet_size,
        })
    } else {
        ep
    }
}

/// A device descriptor for `speed`: USB 2.0 (`bcdUSB` 0x0200, 64-byte
/// endpoint 0), or USB 3.2 at SuperSpeed (`bcdUSB` 0x0320, 512-byte
/// endpoint 0 written as exponent 9).
pub fn device_descriptor(vendor_id: u16, product_id: u16, speed: Speed) -> DeviceDescriptor {
    let mut d = DeviceDescriptor::new(vendor_id, product_id);
    match speed {
        Speed::Low => d.max_packet_size_0 = 8,
        Speed::Full | Speed::High => {}
        _ => {
            d.usb_version = 0x0320;
            d.max_packet_size_0 = 9;
        }
    }
    d
}
