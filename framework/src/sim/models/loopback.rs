//! [`Loopback`]: Linux's `f_loopback` gadget function.

use std::collections::VecDeque;

use crate::descriptor::{class, ConfigBuilder};
use crate::sim::model::{
    bulk_endpoint, bulk_max_packet_size, device_descriptor, DeviceModel, InReply, ModelDescriptors,
    OutReply,
};
use crate::target::Speed;

/// Bulk OUT endpoint of the loopback function.
pub const LOOPBACK_OUT: u8 = 0x01;
/// Bulk IN endpoint of the loopback function.
pub const LOOPBACK_IN: u8 = 0x81;

/// Bulk OUT data comes back on bulk IN, exactly as Linux's `f_loopback`
/// gadget function does it (IDs `0525:a4a9`, the VM suite's loopback
/// gadget; one vendor-specific interface 0 with bulk OUT `0x01` and bulk
/// IN `0x81`).
///
/// The gadget owns `qlen` buffers of `bulk_buflen` bytes. Each is queued as
/// an OUT request; an OUT request completes on a full `bulk_buflen` or on a
/// short packet (or ZLP), and only then is queued back as one IN request of
/// the bytes it received. So:
///
/// * a host write shorter than `bulk_buflen` that ends on a full packet
///   (and without a ZLP) is **not echoed** until more data arrives;
/// * the echo of a request that was short but a whole number of packets
///   ends with a ZLP (`f_loopback` sets `req->zero` when `actual < length`);
///   the echo of a full `bulk_buflen` request has no short packet, so a host
///   IN transfer continues into the next echoed request;
/// * when all `qlen` buffers wait to be read back, OUT NAKs (flow control).
///
/// Buffers are allocated once, when the model is built.
#[derive(Debug)]
pub struct Loopback {
    qlen: usize,
    buflen: usize,
    ids: (u16, u16),
    mps: usize,
    /// Idle gadget buffers.
    free: Vec<Vec<u8>>,
    /// The OUT request being filled.
    filling: Option<Vec<u8>>,
    /// OUT requests waiting to go back as IN requests.
    echo: VecDeque<Echo>,
}

#[derive(Debug)]
struct Echo {
    data: Vec<u8>,
    sent: usize,
    /// Send a ZLP after a whole number of packets.
    zero: bool,
    /// The last packet (short or ZLP) went out.
    ended: bool,
}

impl Default for Loopback {
    /// `qlen` 32, `bulk_buflen` 4096: the kernel's defaults.
    fn default() -> Self {
        Self::new(32, 4096)
    }
}

impl Loopback {
    /// A loopback function with `qlen` buffers of `bulk_buflen` bytes.
    ///
    /// # Panics
    /// If either is 0.
    pub fn new(qlen: usize, bulk_buflen: usize) -> Self {
        assert!(
            qlen > 0 && bulk_buflen > 0,
            "qlen and bulk_buflen must be > 0"
        );
        Loopback {
            qlen,
            buflen: bulk_buflen,
            ids: (0x0525, 0xa4a9),
            mps: 512,
            free: (0..qlen).map(|_| Vec::with_capacity(bulk_buflen)).collect(),
            filling: None,
            echo: VecDeque::with_capacity(qlen),
        }
    }

    /// Use other vendor and product IDs.
    pub fn with_ids(mut self, vendor_id: u16, product_id: u16) -> Self {
        self.ids = (vendor_id, product_id);
        self
    }

    /// `qlen`: gadget buffers.
    pub fn qlen(&self) -> usize {
        self.qlen
    }

    /// `bulk_buflen`: bytes per gadget buffer.
    pub fn bulk_buflen(&self) -> usize {
        self.buflen
    }

    fn complete_out(&mut self) {
        if let Some(data) = self.filling.take() {
            let zero = data.len() < self.buflen;
            self.echo.push_back(Echo {
                data,
                sent: 0,
                zero,
                ended: false,
            });
        }
    }

    fn reset(&mut self) {
        if let Some(mut b) = self.filling.take() {
            b.clear();
            self.free.push(b);
        }
        while let Some(mut e) = self.echo.pop_front() {
            e.data.clear();
            self.free.push(e.data);
        }
    }
}

impl DeviceModel for Loopback {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let config = ConfigBuilder::new(1)
            .interface(0, class::VENDOR_SPECIFIC, 0, 0)
            .endpoint(bulk_endpoint(LOOPBACK_IN, speed))
            .endpoint(bulk_endpoint(LOOPBACK_OUT, speed))
            .to_bytes();
        let mut device = device_descriptor(self.ids.0, self.ids.1, speed);
        device.class = class::VENDOR_SPECIFIC;
        ModelDescriptors::new(device, vec![config]).with_standard_strings(
            "usbdf",
            "usbdf Loopback",
            "usbdf-lb",
        )
    }

    fn attach(&mut self, notifier: crate::sim::Notifier) {
        self.mps = usize::from(bulk_max_packet_size(notifier.speed()));
        self.reset();
    }

    fn set_configuration(&mut self, _value: u8) {
        self.reset();
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        if endpoint != LOOPBACK_OUT {
            return OutReply::Stall;
        }
        if self.filling.is_none() {
            match self.free.pop() {
                Some(b) => self.filling = Some(b),
                None => return OutReply::Nak,
            }
        }
        let buflen = self.buflen;
        if let Some(buf) = self.filling.as_mut() {
            let room = buflen - buf.len();
            buf.extend_from_slice(&data[..data.len().min(room)]);
            if data.len() < self.mps || buf.len() >= buflen {
                self.complete_out();
            }
        }
        OutReply::Ack
    }

    fn in_packet(&mut self, endpoint: u8, packet: &mut [u8]) -> InReply {
        if endpoint != LOOPBACK_IN {
            return InReply::Stall;
        }
        let mps = packet.len();
        let Some(e) = self.echo.front_mut() else {
            return InReply::Nak;
        };
        let n = (e.data.len() - e.sent).min(mps);
        packet[..n].copy_from_slice(&e.data[e.sent..e.sent + n]);
        e.sent += n;
        if n < mps {
            e.ended = true;
        }
        let done = e.sent == e.data.len() && (e.ended || !e.zero);
        if done {
            if let Some(mut e) = self.echo.pop_front() {
                e.data.clear();
                self.free.push(e.data);
            }
        }
        InReply::Data(n)
    }

    fn clear_halt(&mut self, _endpoint: u8) {}
}
