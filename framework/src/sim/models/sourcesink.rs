//! [`SourceSink`]: Linux's `f_sourcesink` gadget function (gadget zero).

use crate::control::SetupPacket;
use crate::descriptor::{class, ConfigBuilder};
use crate::sim::model::{
    bulk_endpoint, bulk_max_packet_size, device_descriptor, ControlReply, DeviceModel, InReply,
    ModelDescriptors, Notifier, OutReply,
};
use crate::target::Speed;

/// Bulk IN endpoint (source).
pub const SOURCESINK_IN: u8 = 0x81;
/// Bulk OUT endpoint (sink).
pub const SOURCESINK_OUT: u8 = 0x01;
/// Vendor request: write the ep0 test buffer (`bmRequestType` 0x40).
pub const REQUEST_WRITE_BUFFER: u8 = 0x5b;
/// Vendor request: read the ep0 test buffer back (`bmRequestType` 0xC0).
pub const REQUEST_READ_BUFFER: u8 = 0x5c;
/// Size of the ep0 test buffer (`USB_COMP_EP0_BUFSIZ`).
pub const EP0_BUFFER_LEN: usize = 4096;

/// The data pattern of a [`SourceSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `pattern=0`: all zeros.
    Zeros,
    /// `pattern=1`: byte `i` of each gadget request is `(i % maxpacket) % 63`.
    Mod63,
    /// `pattern=2`: anything; the sink checks nothing (the source sends zeros).
    None,
}

impl Pattern {
    /// Byte `i` of a gadget request.
    pub fn byte(self, i: usize, max_packet: usize) -> u8 {
        match self {
            Pattern::Mod63 => ((i % max_packet.max(1)) % 63) as u8,
            Pattern::Zeros | Pattern::None => 0,
        }
    }
}

/// Gadget zero's source/sink function (IDs `0525:a4a0`, one vendor-specific
/// interface 0 with bulk IN `0x81` and bulk OUT `0x01`), as Linux's
/// `f_sourcesink` does it:
///
/// * the **source** (IN) sends gadget requests of `bulk_buflen` bytes of the
///   pattern, forever (a request ends without a short packet when
///   `bulk_buflen` is a whole number of packets);
/// * the **sink** (OUT) checks every gadget request (complete on a full
///   `bulk_buflen` or a short packet) against the pattern; on a mismatch the
///   gadget **halts its OUT endpoint**: later OUT transfers stall until the
///   host clears the halt;
/// * vendor request `0x5b` (OUT, `bmRequestType` 0x40, `wValue` and `wIndex`
///   0, up to 4096 bytes) fills the ep0 buffer, and `0x5c` (IN, 0xC0) reads
///   it back.
#[derive(Debug)]
pub struct SourceSink {
    pattern: Pattern,
    buflen: usize,
    ids: (u16, u16),
    mps: usize,
    /// Offset of the next IN byte within the current source request.
    in_offset: usize,
    /// Offset of the next OUT byte within the current sink request.
    out_offset: usize,
    notifier: Option<Notifier>,
    ep0: Box<[u8; EP0_BUFFER_LEN]>,
    mismatches: usize,
}

impl Default for SourceSink {
    /// Pattern 1, `bulk_buflen` 4096 (the VM suite's gadget).
    fn default() -> Self {
        Self::new(Pattern::Mod63, 4096)
    }
}

impl SourceSink {
    /// A source/sink with `pattern` and gadget requests of `bulk_buflen` bytes.
    ///
    /// # Panics
    /// If `bulk_buflen` is 0.
    pub fn new(pattern: Pattern, bulk_buflen: usize) -> Self {
        assert!(bulk_buflen > 0, "bulk_buflen must be > 0");
        SourceSink {
            pattern,
            buflen: bulk_buflen,
            ids: (0x0525, 0xa4a0),
            mps: 512,
            in_offset: 0,
            out_offset: 0,
            notifier: None,
            ep0: Box::new([0; EP0_BUFFER_LEN]),
            mismatches: 0,
        }
    }

    /// Use other vendor and product IDs.
    pub fn with_ids(mut self, vendor_id: u16, product_id: u16) -> Self {
        self.ids = (vendor_id, product_id);
        self
    }

    /// The pattern.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }
}

impl DeviceModel for SourceSink {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let config = ConfigBuilder::new(1)
            .interface(0, class::VENDOR_SPECIFIC, 0, 0)
            .endpoint(bulk_endpoint(SOURCESINK_IN, speed))
            .endpoint(bulk_endpoint(SOURCESINK_OUT, speed))
            .to_bytes();
        let mut device = device_descriptor(self.ids.0, self.ids.1, speed);
        device.class = class::VENDOR_SPECIFIC;
        ModelDescriptors::new(device, vec![config]).with_standard_strings(
            "usbdf",
            "usbdf SourceSink",
            "usbdf-ss",
        )
    }

    fn attach(&mut self, notifier: Notifier) {
        self.mps = usize::from(bulk_max_packet_size(notifier.speed()));
        self.notifier = Some(notifier);
        self.in_offset = 0;
        self.out_offset = 0;
    }

    fn set_configuration(&mut self, _value: u8) {
        self.in_offset = 0;
        self.out_offset = 0;
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        let len = usize::from(setup.length);
        let plain = setup.value == 0 && setup.index == 0 && len <= EP0_BUFFER_LEN;
        match (setup.request, setup.request_type) {
            (REQUEST_WRITE_BUFFER, 0x40) if plain => {
                let n = data.len().min(len);
                self.ep0[..n].copy_from_slice(&data[..n]);
                ControlReply::Ack
            }
            (REQUEST_READ_BUFFER, 0xC0) if plain => ControlReply::Data(self.ep0[..len].to_vec()),
            _ => ControlReply::Stall,
        }
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        if endpoint != SOURCESINK_OUT {
            return OutReply::Stall;
        }
        let mut ok = true;
        if self.pattern != Pattern::None {
            for (k, &b) in data.iter().enumerate() {
                if b != self.pattern.byte(self.out_offset + k, self.mps) {
                    ok = false;
                    break;
                }
            }
        }
        self.out_offset += data.len();
        let request_done = data.len() < self.mps || self.out_offset >= self.buflen;
        if !ok {
            self.mismatches += 1;
        }
        if request_done {
            self.out_offset = 0;
            // f_sourcesink checks a request when it completes and halts
            // the endpoint on a mismatch: this packet was already ACKed.
            if self.mismatches > 0 {
                self.mismatches = 0;
                if let Some(n) = &self.notifier {
                    n.set_halt(SOURCESINK_OUT);
                }
            }
        }
        OutReply::Ack
    }

    fn in_packet(&mut self, endpoint: u8, packet: &mut [u8]) -> InReply {
        if endpoint != SOURCESINK_IN {
            return InReply::Stall;
        }
        let mps = packet.len();
        let n = (self.buflen - self.in_offset).min(mps);
        for (k, b) in packet[..n].iter_mut().enumerate() {
            *b = self.pattern.byte(self.in_offset + k, mps);
        }
        self.in_offset += n;
        if self.in_offset >= self.buflen {
            self.in_offset = 0;
        }
        InReply::Data(n)
    }

    fn clear_halt(&mut self, endpoint: u8) {
        if endpoint == SOURCESINK_OUT {
            self.out_offset = 0;
            self.mismatches = 0;
        }
    }
}
