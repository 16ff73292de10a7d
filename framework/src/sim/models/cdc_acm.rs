//! [`CdcAcm`]: a CDC-ACM serial port (Linux's `f_acm` with `u_serial`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::control::SetupPacket;
use crate::descriptor::{class, ConfigBuilder, InterfaceAssociation, CS_INTERFACE};
use crate::sim::model::{
    bulk_endpoint, device_descriptor, interrupt_endpoint, ControlReply, DeviceModel, InReply,
    ModelDescriptors, Notifier, OutReply,
};
use crate::target::Speed;

/// CDC class request SET_LINE_CODING.
pub const SET_LINE_CODING: u8 = 0x20;
/// CDC class request GET_LINE_CODING.
pub const GET_LINE_CODING: u8 = 0x21;
/// CDC class request SET_CONTROL_LINE_STATE.
pub const SET_CONTROL_LINE_STATE: u8 = 0x22;
/// CDC class request SEND_BREAK.
pub const SEND_BREAK: u8 = 0x23;
/// CDC notification SERIAL_STATE.
pub const SERIAL_STATE: u8 = 0x20;

/// The 7-byte CDC line coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineCoding {
    /// `dwDTERate`: bits per second.
    pub rate: u32,
    /// `bCharFormat`: 0 = 1 stop bit, 1 = 1.5, 2 = 2.
    pub stop_bits: u8,
    /// `bParityType`: 0 none, 1 odd, 2 even, 3 mark, 4 space.
    pub parity: u8,
    /// `bDataBits`: 5, 6, 7, 8 or 16.
    pub data_bits: u8,
}

impl Default for LineCoding {
    /// 9600 8N1 (what `u_serial` starts with).
    fn default() -> Self {
        LineCoding {
            rate: 9600,
            stop_bits: 0,
            parity: 0,
            data_bits: 8,
        }
    }
}

impl LineCoding {
    /// The wire form.
    pub fn to_bytes(self) -> [u8; 7] {
        let r = self.rate.to_le_bytes();
        [
            r[0],
            r[1],
            r[2],
            r[3],
            self.stop_bits,
            self.parity,
            self.data_bits,
        ]
    }

    /// Parse the wire form (`None` if shorter than 7 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<LineCoding> {
        let b: &[u8; 7] = b.get(..7)?.try_into().ok()?;
        Some(LineCoding {
            rate: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            stop_bits: b[4],
            parity: b[5],
            data_bits: b[6],
        })
    }
}

/// Where the function's interfaces and endpoints are (to place it in a
/// composite device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcmLayout {
    /// Communication interface number; the data interface is the next one.
    pub interface: u8,
    /// Interrupt IN notification endpoint.
    pub notify_in: u8,
    /// Bulk OUT data endpoint.
    pub data_out: u8,
    /// Bulk IN data endpoint.
    pub data_in: u8,
}

impl Default for AcmLayout {
    /// Interfaces 0 and 1, notification `0x83`, data OUT `0x02`, data IN `0x82`.
    fn default() -> Self {
        AcmLayout {
            interface: 0,
            notify_in: 0x83,
            data_out: 0x02,
            data_in: 0x82,
        }
    }
}

/// Notification endpoint max packet size.
const NOTIFY_MPS: u16 = 16;
/// Bytes the device buffers from the host before OUT NAKs.
const RX_LIMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct AcmShared {
    line_coding: LineCoding,
    control_lines: u16,
    breaks: Vec<u16>,
    /// Bytes from the host.
    rx: Vec<u8>,
    /// Writes to the host, each one gadget request.
    tx: VecDeque<(Vec<u8>, usize)>,
    notifications: VecDeque<[u8; 10]>,
    notifier: Option<Notifier>,
    /// The communication interface (wIndex of notifications).
    interface: u8,
}

/// A CDC-ACM serial port function (IDs `0525:a4a7`, Linux's serial gadget):
/// an interface association of a communication interface (class 2/2/1:
/// header, call management, ACM and union functional descriptors, interrupt
/// IN notification endpoint `0x83`, 16 bytes) and a data interface (class
/// 0x0A, bulk OUT `0x02`, bulk IN `0x82`).
///
/// It answers `SET_LINE_CODING`, `GET_LINE_CODING`,
/// `SET_CONTROL_LINE_STATE` and `SEND_BREAK`. The device side of the port
/// is an [`AcmPort`] (the test's `/dev/ttyGS0`).
#[derive(Debug)]
pub struct CdcAcm {
    layout: AcmLayout,
    ids: (u16, u16),
    shared: Arc<Mutex<AcmShared>>,
}

impl Default for CdcAcm {
    fn default() -> Self {
        Self::new()
    }
}

impl CdcAcm {
    /// A port with the default [`AcmLayout`].
    pub fn new() -> Self {
        CdcAcm {
            layout: AcmLayout::default(),
            ids: (0x0525, 0xa4a7),
            shared: Arc::default(),
        }
    }

    /// Place the function's interfaces and endpoints elsewhere.
    pub fn with_layout(mut self, layout: AcmLayout) -> Self {
        self.layout = layout;
        self.lock().interface = layout.interface;
        self
    }

    /// Use other vendor and product IDs.
    pub fn with_ids(mut self, vendor_id: u16, product_id: u16) -> Self {
        self.ids = (vendor_id, product_id);
        self
    }

    /// The device side of the port. Take it before plugging the model in.
    pub fn port(&self) -> AcmPort {
        AcmPort {
            shared: self.shared.clone(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> AcmLayout {
        self.layout
    }

    fn lock(&self) -> MutexGuard<'_, AcmShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add the function's descriptors to a configuration.
    pub(crate) fn add_to(&self, b: ConfigBuilder, speed: Speed) -> ConfigBuilder {
        let l = self.layout;
        let data = l.interface + 1;
        b.association(InterfaceAssociation::new(l.interface, 2, class::CDC, 2, 1))
            .interface(l.interface, class::CDC, 2, 1)
            .class_specific(CS_INTERFACE, [0x00, 0x10, 0x01])
            .class_specific(CS_INTERFACE, [0x01, 0x00, data])
            .class_specific(CS_INTERFACE, [0x02, 0x02])
            .class_specific(CS_INTERFACE, [0x06, l.interface, data])
            .endpoint(interrupt_endpoint(l.notify_in, NOTIFY_MPS, 32, speed))
            .interface(data, class::CDC_DATA, 0, 0)
            .endpoint(bulk_endpoint(l.data_in, speed))
            .endpoint(bulk_endpoint(l.data_out, speed))
    }
}

impl DeviceModel for CdcAcm {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let config = self.add_to(ConfigBuilder::new(1), speed).to_bytes();
        let mut device = device_descriptor(self.ids.0, self.ids.1, speed);
        (device.class, device.subclass, device.protocol) = (class::MISCELLANEOUS, 0x02, 0x01);
        ModelDescriptors::new(device, vec![config]).with_standard_strings(
            "usbdf",
            "usbdf CDC-ACM",
            "usbdf-acm",
        )
    }

    fn attach(&mut self, notifier: Notifier) {
        self.lock().notifier = Some(notifier);
    }

    fn detach(&mut self) {
        self.lock().notifier = None;
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        // Class requests to the communication interface.
        if setup.request_type & 0x7f != 0x21 || setup.index != u16::from(self.layout.interface) {
            return ControlReply::Stall;
        }
        let mut s = self.lock();
        match setup.request {
            SET_LINE_CODING => match LineCoding::from_bytes(data) {
                Some(lc) => {
                    s.line_coding = lc;
                    ControlReply::Ack
                }
                None => ControlReply::Stall,
            },
            GET_LINE_CODING => ControlReply::Data(s.line_coding.to_bytes().to_vec()),
            SET_CONTROL_LINE_STATE => {
                s.control_lines = setup.value;
                ControlReply::Ack
            }
            SEND_BREAK => {
                s.breaks.push(setup.value);
                ControlReply::Ack
            }
            _ => ControlReply::Stall,
        }
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        if endpoint != self.layout.data_out {
            return OutReply::Stall;
        }
        let mut s = self.lock();
        if s.rx.len() + data.len() > RX_LIMIT {
            return OutReply::Nak;
        }
        s.rx.extend_from_slice(data);
        OutReply::Ack
    }

    fn in_packet(&mut self, endpoint: u8, packet: &mut [u8]) -> InReply {
        let mut s = self.lock();
        let mps = packet.len();
        if endpoint == self.layout.notify_in {
            return match s.notifications.pop_front() {
                Some(n) => {
                    let k = n.len().min(mps);
                    packet[..k].copy_from_slice(&n[..k]);
                    InReply::Data(k)
                }
                None => InReply::Nak,
            };
        }
        if endpoint != self.layout.data_in {
            return InReply::Stall;
        }
        let Some((chunk, sent)) = s.tx.front_mut() else {
            return InReply::Nak;
        };
        let n = (chunk.len() - *sent).min(mps);
        packet[..n].copy_from_slice(&chunk[*sent..*sent + n]);
        *sent += n;
        // A write that is a whole number of packets ends with a ZLP.
        if n < mps {
            s.tx.pop_front();
        }
        InReply::Data(n)
    }
}

/// The device side of a [`CdcAcm`] port (what a program on the gadget
/// would see as `/dev/ttyGS0`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct AcmPort {
    shared: Arc<Mutex<AcmShared>>,
}

impl AcmPort {
    fn lock(&self) -> MutexGuard<'_, AcmShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(s: &AcmShared) {
        if let Some(n) = &s.notifier {
            n.notify();
        }
    }

    /// Send bytes to the host (they arrive on bulk IN). Each call is one
    /// gadget request: it ends with a short packet, or a ZLP when it is a
    /// whole number of packets.
    pub fn write(&self, data: &[u8]) {
        let mut s = self.lock();
        s.tx.push_back((data.to_vec(), 0));
        Self::notify(&s);
    }

    /// Take the bytes the host sent so far.
    pub fn read(&self) -> Vec<u8> {
        let mut s = self.lock();
        let data = std::mem::take(&mut s.rx);
        Self::notify(&s);
        data
    }

    /// The line coding the host set.
    pub fn line_coding(&self) -> LineCoding {
        self.lock().line_coding
    }

    /// The control line state the host set (bit 0 DTR, bit 1 RTS).
    pub fn control_lines(&self) -> u16 {
        self.lock().control_lines
    }

    /// Break durations the host asked for (`SEND_BREAK` `wValue`s), in order.
    pub fn breaks(&self) -> Vec<u16> {
        self.lock().breaks.clone()
    }

    /// Queue a SERIAL_STATE notification with `bits` (bit 0 DCD, 1 DSR,
    /// 2 break, 3 ring, 4 framing, 5 parity, 6 overrun) on the interrupt IN
    /// endpoint.
    pub fn notify_serial_state(&self, bits: u16) {
        let mut s = self.lock();
        let [lo, hi] = bits.to_le_bytes();
        let iface = s.interface;
        s.notifications
            .push_back([0xA1, SERIAL_STATE, 0, 0, iface, 0, 2, 0, lo, hi]);
        Self::notify(&s);
    }
}
