//! The Loopback function: what goes out on bulk OUT comes back on bulk IN.

use usbdf::driver::{DeviceMatch, Driver, Probe, ProbeContext};
use usbdf::{
    Bulk, Device, DeviceSelector, Host, In, Interface, Out, Pipe, Request, SendOptions, Timeout,
};

use crate::stream::{self, StreamConfig, Throughput};
use crate::{check, LoopbackError, Mismatch, Pattern, LOOPBACK_IDS};

/// A bound Loopback function (gadget zero's `f_loopback`): its interface
/// and typed bulk pipes.
///
/// The gadget queues each OUT request it receives (complete on a full
/// `bulk_buflen` or a short packet) as one IN transfer. usbdf adds a ZLP
/// after writes that end on a full packet ([`usbdf::Zlp::Auto`]), so any
/// write is echoed.
#[derive(Debug)]
pub struct Loopback {
    iface: Interface,
    out: Pipe<Bulk, Out>,
    inp: Pipe<Bulk, In>,
}

impl Loopback {
    /// Open the first `0525:a4a9` device on `host` and claim interface 0.
    ///
    /// # Errors
    /// [`usbdf::Error::DeviceNotFound`], or as [`from_interface`](Self::from_interface).
    pub fn open(host: &Host) -> Result<Loopback, LoopbackError> {
        let d = host.open(&DeviceSelector::id(
            crate::VENDOR_ID,
            crate::LOOPBACK_PRODUCT_ID,
        ))?;
        Self::from_device(&d)
    }

    /// Claim interface 0 of an opened device.
    ///
    /// # Errors
    /// The claim error, or as [`from_interface`](Self::from_interface).
    pub fn from_device(device: &Device) -> Result<Loopback, LoopbackError> {
        Self::from_interface(device.claim_interface(0)?)
    }

    /// Open the bulk pipes of a claimed Loopback interface.
    ///
    /// # Errors
    /// [`LoopbackError::InvalidArgument`] without a bulk IN/OUT pair; the
    /// pipe-open error.
    pub fn from_interface(iface: Interface) -> Result<Loopback, LoopbackError> {
        let (i, o) = crate::bulk_pair(&iface)?;
        Ok(Loopback {
            out: iface.open_pipe(o)?,
            inp: iface.open_pipe(i)?,
            iface,
        })
    }

    /// The claimed interface.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The bulk OUT pipe.
    pub fn out_pipe(&self) -> &Pipe<Bulk, Out> {
        &self.out
    }

    /// The bulk IN pipe.
    pub fn in_pipe(&self) -> &Pipe<Bulk, In> {
        &self.inp
    }

    /// Send `data` and read the echo, within `timeout` in all. The write
    /// is in flight while the echo is read, so `data` may be larger than
    /// the gadget's buffers. Zero-length reads (a ZLP left over from an
    /// earlier echo) are skipped, and the ZLP that ends the echo of a
    /// whole-packet write is read, so the pipe is left clean.
    ///
    /// # Errors
    /// [`LoopbackError::InvalidArgument`] for empty data; a send or
    /// transfer error; [`LoopbackError::TimedOut`];
    /// [`LoopbackError::Mismatch`] when the echo differs.
    pub fn echo(&self, data: &[u8], timeout: Timeout) -> Result<Vec<u8>, LoopbackError> {
        if data.is_empty() {
            return Err(LoopbackError::InvalidArgument("nothing to echo"));
        }
        let deadline = crate::deadline(timeout);
        let mps = self.inp.info().max_packet_size.max(1);
        let mut req = Request::with_capacity(data.len());
        req.memory_mut()
            .set(data)
            .map_err(|_| LoopbackError::InvalidArgument("data too large"))?;
        let opts = match timeout {
            Timeout::After(d) => SendOptions::new().timeout(d),
            Timeout::Infinite => SendOptions::new(),
        };
        let write = self.out.write(req, &opts)?;
        let mut got = Vec::with_capacity(data.len());
        let mut buf = Some(Request::with_capacity(data.len().div_ceil(mps) * mps));
        while got.len() < data.len() {
            let want = (data.len() - got.len()).div_ceil(mps) * mps;
            let mut r = buf.take().unwrap_or_else(|| Request::with_capacity(want));
            r.reuse();
            let c = self.inp.read_sync(r, want, crate::left(deadline))?;
            if let Err(e) = check(c.status()) {
                // Do not leave the write behind.
                write.cancel_handle().cancel();
                drop(write.wait(Timeout::millis(1000)));
                return Err(e);
            }
            got.extend_from_slice(c.data());
            buf = Some(c.into_request());
        }
        check(write.wait(crate::left(deadline)).status())?;
        if data.len() % mps == 0 {
            // A write of whole packets went out with a ZLP, so the echo ends
            // with one (after a short gadget request, or as the echo of the
            // ZLP itself): take it, or the next reader gets 0 bytes.
            let r = buf.take().unwrap_or_else(|| Request::with_capacity(mps));
            let c = self.inp.read_sync(r, mps, crate::left(deadline))?;
            check(c.status())?;
            got.extend_from_slice(c.data());
        }
        if let Some(offset) = got.iter().zip(data).position(|(a, b)| a != b) {
            return Err(Mismatch {
                offset,
                expected: data[offset],
                found: got[offset],
            }
            .into());
        }
        if got.len() != data.len() {
            return Err(LoopbackError::Short {
                expected: data.len(),
                got: got.len(),
            });
        }
        Ok(got)
    }

    /// Write `cfg.total_bytes` of pattern 1 and read them back, `cfg.depth`
    /// requests in flight each way, checking the echo. `transfer_len` must
    /// be a multiple of the gadget's `bulk_buflen` (4096 by default; the
    /// writes carry no ZLP, so a smaller one is not echoed) and divide
    /// `total_bytes`.
    ///
    /// # Errors
    /// As the stream's requests fail; [`LoopbackError::TimedOut`].
    pub fn throughput(&self, cfg: &StreamConfig) -> Result<Throughput, LoopbackError> {
        let mps = self.out.info().max_packet_size.max(1);
        if cfg.transfer_len % mps != 0 || cfg.total_bytes % cfg.transfer_len.max(1) != 0 {
            return Err(LoopbackError::InvalidArgument(
                "loopback streams need whole packets and whole transfers",
            ));
        }
        // Full gadget buffers need no ZLP; one after every write would end
        // a read early and leave the last one behind in the gadget.
        let policy = self.out.policy();
        self.out.set_policy(usbdf::PipePolicy {
            zlp: usbdf::Zlp::Never,
            ..policy
        });
        let result = (|| {
            let reads = stream::read(&self.inp, cfg, Some(Pattern::Mod63))?;
            let writes = stream::write(&self.out, cfg, Pattern::Mod63)?;
            let w = writes.wait();
            let r = reads.wait()?;
            w?;
            Ok(r)
        })();
        self.out.set_policy(policy);
        result
    }
}

/// The registry driver for [`Loopback`] (`0525:a4a9`, interface 0).
///
/// KMDF: the driver object whose `EvtDriverDeviceAdd` creates the device.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoopbackDriver;

impl Driver for LoopbackDriver {
    type Instance = Loopback;

    fn name(&self) -> &'static str {
        "usbdf-loopback"
    }

    fn id_table(&self) -> &'static [DeviceMatch] {
        &LOOPBACK_IDS
    }

    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<Loopback>, usbdf::Error> {
        let iface = ctx.claim()?;
        match Loopback::from_interface(iface) {
            Ok(lb) => Ok(Probe::Bound(lb)),
            Err(LoopbackError::Usb(e)) => Err(e),
            Err(_) => Ok(Probe::NotMine),
        }
    }

    fn stop(&self, lb: &mut Loopback) {
        let _ = lb.inp.abort(Timeout::millis(1000));
        let _ = lb.out.abort(Timeout::millis(1000));
    }
}
