//! The SourceSink function: a pattern source on bulk IN, a checking sink
//! on bulk OUT, and an ep0 buffer behind vendor requests.

use usbdf::control::{ControlDirection, Recipient, RequestKind, SetupPacket};
use usbdf::driver::{DeviceMatch, Driver, Probe, ProbeContext};
use usbdf::{
    Bulk, Device, DeviceSelector, Host, In, Interface, Out, Pipe, Request, Status, Timeout,
};

use crate::stream::{self, StreamConfig, Throughput};
use crate::{check, LoopbackError, Pattern, SOURCESINK_IDS};

/// A bound SourceSink function (gadget zero's `f_sourcesink`).
///
/// The source sends `bulk_buflen`-byte gadget requests of the pattern
/// forever; the sink checks what it receives and **halts its OUT
/// endpoint** on a mismatch ([`reset_out`](Self::reset_out) recovers).
#[derive(Debug)]
pub struct SourceSink {
    device: Device,
    iface: Interface,
    out: Pipe<Bulk, Out>,
    inp: Pipe<Bulk, In>,
    pattern: Pattern,
}

impl SourceSink {
    /// Open the first `0525:a4a0` device on `host`, claim interface 0,
    /// and expect [`Pattern::Mod63`] (`pattern=1`).
    ///
    /// # Errors
    /// [`usbdf::Error::DeviceNotFound`], or as [`from_interface`](Self::from_interface).
    pub fn open(host: &Host) -> Result<SourceSink, LoopbackError> {
        let d = host.open(&DeviceSelector::id(
            crate::VENDOR_ID,
            crate::SOURCESINK_PRODUCT_ID,
        ))?;
        Self::from_interface(&d, d.claim_interface(0)?, Pattern::Mod63)
    }

    /// Open the bulk pipes of a claimed SourceSink interface of `device`.
    ///
    /// # Errors
    /// [`LoopbackError::InvalidArgument`] without a bulk IN/OUT pair; the
    /// pipe-open error.
    pub fn from_interface(
        device: &Device,
        iface: Interface,
        pattern: Pattern,
    ) -> Result<SourceSink, LoopbackError> {
        let (i, o) = crate::bulk_pair(&iface)?;
        Ok(SourceSink {
            device: device.clone(),
            out: iface.open_pipe(o)?,
            inp: iface.open_pipe(i)?,
            iface,
            pattern,
        })
    }

    /// The pattern the gadget is expected to use.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The claimed interface.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The bulk IN (source) pipe.
    pub fn in_pipe(&self) -> &Pipe<Bulk, In> {
        &self.inp
    }

    /// The bulk OUT (sink) pipe.
    pub fn out_pipe(&self) -> &Pipe<Bulk, Out> {
        &self.out
    }

    /// Read `len` bytes (a multiple of the max packet size) from the source
    /// and check them against the pattern.
    ///
    /// # Errors
    /// [`LoopbackError::InvalidArgument`] for a bad length; a send or
    /// transfer error; [`LoopbackError::Short`];
    /// [`LoopbackError::Mismatch`].
    pub fn read_checked(&self, len: usize, timeout: Timeout) -> Result<Vec<u8>, LoopbackError> {
        let mps = self.inp.info().max_packet_size.max(1);
        if len == 0 || len % mps != 0 {
            return Err(LoopbackError::InvalidArgument(
                "length must be a non-zero multiple of the max packet size",
            ));
        }
        let c = self
            .inp
            .read_sync(Request::with_capacity(len), len, timeout)?;
        check(c.status())?;
        self.pattern.check(c.data(), mps)?;
        if c.bytes() != len {
            return Err(LoopbackError::Short {
                expected: len,
                got: c.bytes(),
            });
        }
        Ok(c.data().to_vec())
    }

    /// Write `len` bytes of the pattern to the sink (which checks them).
    ///
    /// # Errors
    /// A send or transfer error ([`Status::Stall`] once the sink halted).
    pub fn write_pattern(&self, len: usize, timeout: Timeout) -> Result<(), LoopbackError> {
        let mps = self.out.info().max_packet_size;
        self.write(&self.pattern.generate(len, mps), timeout)
            .map(drop)
    }

    /// Write raw bytes to the sink; a mismatch halts it. Returns the bytes
    /// written.
    ///
    /// # Errors
    /// A send or transfer error.
    pub fn write(&self, data: &[u8], timeout: Timeout) -> Result<usize, LoopbackError> {
        let mut req = Request::with_capacity(data.len());
        req.memory_mut()
            .set(data)
            .map_err(|_| LoopbackError::InvalidArgument("data too large"))?;
        let c = self.out.write_sync(req, timeout)?;
        check(c.status())?;
        Ok(c.bytes())
    }

    /// Whether the sink's pipe is halted (after a mismatch), and with what.
    pub fn out_halted(&self) -> Option<Status> {
        self.out.halted()
    }

    /// Clear the sink's halt: abort what is in flight, then
    /// CLEAR_FEATURE(ENDPOINT_HALT).
    ///
    /// # Errors
    /// As [`Pipe::reset`].
    pub fn reset_out(&self) -> Result<(), LoopbackError> {
        self.out.abort(Timeout::millis(1000))?;
        Ok(self.out.reset()?)
    }

    /// Vendor request `0x5b`: write `data` (at most 4096 bytes) into the
    /// gadget's ep0 buffer.
    ///
    /// # Errors
    /// The control transfer's error.
    pub fn vendor_write(&self, data: &[u8], timeout: Timeout) -> Result<usize, LoopbackError> {
        let setup = SetupPacket::new(
            ControlDirection::Out,
            RequestKind::Vendor,
            Recipient::Device,
            crate::REQUEST_WRITE_BUFFER,
            0,
            0,
            0,
        );
        Ok(self.device.control_pipe().write(setup, data, timeout)?)
    }

    /// Vendor request `0x5c`: read `len` bytes of the ep0 buffer back.
    ///
    /// # Errors
    /// The control transfer's error.
    pub fn vendor_read(&self, len: u16, timeout: Timeout) -> Result<Vec<u8>, LoopbackError> {
        let setup = SetupPacket::new(
            ControlDirection::In,
            RequestKind::Vendor,
            Recipient::Device,
            crate::REQUEST_READ_BUFFER,
            0,
            0,
            len,
        );
        Ok(self.device.control_pipe().read(setup, timeout)?)
    }

    /// Read `cfg.total_bytes` from the source, `cfg.depth` requests in
    /// flight, checking every transfer against the pattern.
    ///
    /// # Errors
    /// As the requests fail; [`LoopbackError::Mismatch`];
    /// [`LoopbackError::TimedOut`].
    pub fn read_throughput(&self, cfg: &StreamConfig) -> Result<Throughput, LoopbackError> {
        stream::read(&self.inp, cfg, Some(self.pattern))?.wait()
    }

    /// Write `cfg.total_bytes` of the pattern to the sink, `cfg.depth`
    /// requests in flight.
    ///
    /// # Errors
    /// As the requests fail; [`LoopbackError::TimedOut`].
    pub fn write_throughput(&self, cfg: &StreamConfig) -> Result<Throughput, LoopbackError> {
        stream::write(&self.out, cfg, self.pattern)?.wait()
    }
}

/// The registry driver for [`SourceSink`] (`0525:a4a0`, interface 0),
/// expecting `pattern`.
///
/// KMDF: the driver object whose `EvtDriverDeviceAdd` creates the device.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceSinkDriver {
    /// The gadget's pattern.
    pub pattern: Pattern,
}

impl Driver for SourceSinkDriver {
    type Instance = SourceSink;

    fn name(&self) -> &'static str {
        "usbdf-sourcesink"
    }

    fn id_table(&self) -> &'static [DeviceMatch] {
        &SOURCESINK_IDS
    }

    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<SourceSink>, usbdf::Error> {
        match SourceSink::from_interface(ctx.device, ctx.claim()?, self.pattern) {
            Ok(ss) => Ok(Probe::Bound(ss)),
            Err(LoopbackError::Usb(e)) => Err(e),
            Err(_) => Ok(Probe::NotMine),
        }
    }

    fn stop(&self, ss: &mut SourceSink) {
        let _ = ss.inp.abort(Timeout::millis(1000));
        let _ = ss.out.abort(Timeout::millis(1000));
    }
}
