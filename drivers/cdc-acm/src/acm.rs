//! [`CdcAcm`]: a bound ACM function: its interfaces, typed pipes, class requests and
//! notifications.

use std::io;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use usbdf::control::{ControlDirection, Recipient, RequestKind};
use usbdf::{
    ContinuousReader, Device, Interface, InterfaceClaim, Interrupt, ReaderConfig, ReaderState,
    SetupPacket, StopAction, Timeout,
};

use crate::descriptors::{find_cdc_acm, find_cdc_acm_at, AcmInfo};
use crate::error::AcmError;
use crate::line::{ControlLines, LineCoding, SerialState};
use crate::notify::{Notification, NotificationCallback, NotifyShared};
use crate::port::{AcmReader, AcmWriter};

/// Class request `SET_LINE_CODING`.
pub const SET_LINE_CODING: u8 = 0x20;
/// Class request `GET_LINE_CODING`.
pub const GET_LINE_CODING: u8 = 0x21;
/// Class request `SET_CONTROL_LINE_STATE`.
pub const SET_CONTROL_LINE_STATE: u8 = 0x22;
/// Class request `SEND_BREAK`.
pub const SEND_BREAK: u8 = 0x23;

/// Interrupt reads kept pending for notifications.
const NOTIFY_PENDING_READS: usize = 2;

/// How to open a [`CdcAcm`].
///
/// Every blocking operation has a timeout, 1 s by default.
#[derive(Clone)]
pub struct AcmConfig {
    /// Timeout of each class request on the control pipe.
    pub control_timeout: Timeout,
    /// Initial timeout of blocking reads ([`CdcAcm::set_read_timeout`] changes it).
    pub read_timeout: Timeout,
    /// Initial timeout of blocking writes.
    pub write_timeout: Timeout,
    /// Length of each bulk IN transfer, in max-size packets (default 1). One packet per
    /// transfer means a read returns as soon as a packet arrives, also from devices that
    /// end a write of whole packets without a zero-length packet.
    pub read_packets: usize,
    /// The largest single bulk OUT transfer in bytes (default 16 KiB).
    pub max_write: usize,
    /// What to do when a kernel driver holds an interface (default: fail with `Busy`).
    pub claim: InterfaceClaim,
    /// Called with every notification, in device order, from usbdf's event context.
    pub on_notification: Option<NotificationCallback>,
}

impl Default for AcmConfig {
    fn default() -> Self {
        AcmConfig {
            control_timeout: Timeout::millis(1000),
            read_timeout: Timeout::millis(1000),
            write_timeout: Timeout::millis(1000),
            read_packets: 1,
            max_write: 16 * 1024,
            claim: InterfaceClaim::Normal,
            on_notification: None,
        }
    }
}

impl AcmConfig {
    /// Set the notification callback.
    pub fn on_notification(
        mut self,
        f: impl Fn(&Notification) + Send + Sync + 'static,
    ) -> AcmConfig {
        self.on_notification = Some(Arc::new(f));
        self
    }
}

impl std::fmt::Debug for AcmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmConfig")
            .field("control_timeout", &self.control_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("read_packets", &self.read_packets)
            .field("max_write", &self.max_write)
            .field("claim", &self.claim)
            .field("on_notification", &self.on_notification.is_some())
            .finish()
    }
}

/// A CDC-ACM serial port on a device: both interfaces claimed, the data pipes as
/// [`AcmReader`]/[`AcmWriter`] (and `Read`/`Write`/`AsyncRead`/`AsyncWrite` on this value
/// itself), the class requests, and the notifications.
///
/// Built by [`CdcAcm::open`] (or by [`CdcAcmDriver`](crate::CdcAcmDriver)'s probe). The data
/// pipes work at once; notifications flow after [`start`](Self::start). Dropping it stops
/// everything and releases both interfaces.
pub struct CdcAcm {
    info: AcmInfo,
    device: Device,
    control_timeout: Timeout,
    reader: AcmReader,
    writer: AcmWriter,
    notify_reader: Option<ContinuousReader<Interrupt>>,
    notify: Arc<NotifyShared>,
    // Declared last: released after the pipes above.
    // Released in field order: data first, then communication, so a kernel
    // driver detached on claim (cdc_acm) can bind both again (measured in
    // the VM: released communication-first, its probe fails).
    _data: Interface,
    _comm: Interface,
}

impl CdcAcm {
    /// Open the first ACM function of the device's active configuration.
    ///
    /// # Errors
    /// [`AcmError::NotAcm`] when there is none usable; [`AcmError::Usb`] when claiming or
    /// opening fails (e.g. `Busy`); [`AcmError::Disconnected`].
    pub fn open(device: &Device, config: AcmConfig) -> Result<CdcAcm, AcmError> {
        let info = find_cdc_acm(device.active_configuration()?)?;
        Self::with_info(device, info, config)
    }

    /// Open the ACM function whose communication interface is `comm_interface`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_at(
        device: &Device,
        comm_interface: u8,
        config: AcmConfig,
    ) -> Result<CdcAcm, AcmError> {
        let info = find_cdc_acm_at(device.active_configuration()?, comm_interface)?;
        Self::with_info(device, info, config)
    }

    /// Claim and open what `info` describes.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn with_info(
        device: &Device,
        info: AcmInfo,
        config: AcmConfig,
    ) -> Result<CdcAcm, AcmError> {
        let comm = device.claim_interface_with(info.comm_interface, config.claim)?;
        let data = device.claim_interface_with(info.data_interface, config.claim)?;
        if data.current_setting() != info.data_alt_setting {
            data.select_setting(info.data_alt_setting)?;
        }
        let reader = AcmReader::new(
            data.open_pipe(info.data_in.address)?,
            config.read_packets,
            config.read_timeout,
        );
        let writer = AcmWriter::new(
            data.open_pipe(info.data_out.address)?,
            config.max_write,
            config.write_timeout,
        );
        let notify = NotifyShared::new(config.on_notification.clone());
        let notify_reader = match info.notify_in {
            Some(ep) => {
                let pipe = comm.open_pipe::<Interrupt, usbdf::In>(ep.address)?;
                let len = pipe.info().max_packet_size;
                let shared = Arc::downgrade(&notify);
                let reader_config = ReaderConfig::new(
                    len,
                    Arc::new(move |data: &[u8]| {
                        if let Some(s) = shared.upgrade() {
                            s.on_transfer(data, len);
                        }
                    }),
                )
                .pending_reads(NOTIFY_PENDING_READS);
                Some(pipe.continuous_reader(reader_config)?)
            }
            None => None,
        };
        tracing::debug!(?info, "cdc-acm: opened");
        Ok(CdcAcm {
            info,
            device: device.clone(),
            control_timeout: config.control_timeout,
            reader,
            writer,
            notify_reader,
            notify,
            _comm: comm,
            _data: data,
        })
    }

    /// What the descriptors said: interfaces, endpoints, functional descriptors.
    pub fn info(&self) -> &AcmInfo {
        &self.info
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Start I/O: the data pipes' I/O targets (after a [`stop`](Self::stop)) and the
    /// notification reader.
    ///
    /// # Errors
    /// [`AcmError::Disconnected`]; [`AcmError::Usb`] when the reader cannot send.
    pub fn start(&self) -> Result<(), AcmError> {
        self.reader.pipe().start()?;
        self.writer.pipe().start()?;
        if let Some(r) = &self.notify_reader {
            r.start()?;
        }
        Ok(())
    }

    /// Stop I/O: the notification reader, and the data pipes with their transfers
    /// cancelled (a blocking read in another thread returns the bytes it had, or
    /// [`AcmError::Cancelled`]; later ones fail with [`AcmError::Stopped`] until
    /// [`start`](Self::start)). Waits at most `timeout` for each.
    pub fn stop(&self, timeout: Timeout) {
        if let Some(r) = &self.notify_reader {
            if let Err(e) = r.stop(timeout) {
                tracing::debug!(error = %e, "cdc-acm: stopping the notification reader");
            }
        }
        for r in [
            self.reader.pipe().stop(StopAction::CancelSentIo, timeout),
            self.writer.pipe().stop(StopAction::CancelSentIo, timeout),
        ] {
            if let Err(e) = r {
                tracing::debug!(error = %e, "cdc-acm: stopping a data pipe");
            }
        }
    }

    /// The state of the notification reader (`None` without a notification endpoint).
    pub fn notification_reader_state(&self) -> Option<ReaderState> {
        self.notify_reader.as_ref().map(|r| r.state())
    }

    fn setup(
        &self,
        direction: ControlDirection,
        request: u8,
        value: u16,
        length: u16,
    ) -> SetupPacket {
        SetupPacket::new(
            direction,
            RequestKind::Class,
            Recipient::Interface,
            request,
            value,
            u16::from(self.info.comm_interface),
            length,
        )
    }

    /// `SET_LINE_CODING`: rate, stop bits, parity, data bits.
    ///
    /// # Errors
    /// [`AcmError::Usb`] with the transfer status (a device that does not support it
    /// stalls); [`AcmError::TimedOut`]; [`AcmError::Disconnected`].
    pub fn set_line_coding(&self, coding: &LineCoding) -> Result<(), AcmError> {
        let setup = self.setup(ControlDirection::Out, SET_LINE_CODING, 0, 7);
        self.device
            .control_pipe()
            .write(setup, &coding.to_bytes(), self.control_timeout)?;
        Ok(())
    }

    /// `GET_LINE_CODING`.
    ///
    /// # Errors
    /// As [`set_line_coding`](Self::set_line_coding); [`AcmError::LineCoding`] when the
    /// device sent fewer than 7 bytes. Values CDC does not define are returned as they
    /// came (see [`LineCoding`]).
    pub fn line_coding(&self) -> Result<LineCoding, AcmError> {
        let setup = self.setup(ControlDirection::In, GET_LINE_CODING, 0, 7);
        let bytes = self
            .device
            .control_pipe()
            .read(setup, self.control_timeout)?;
        Ok(LineCoding::from_bytes(&bytes)?)
    }

    /// `SET_CONTROL_LINE_STATE`: DTR and RTS.
    ///
    /// # Errors
    /// As [`set_line_coding`](Self::set_line_coding).
    pub fn set_control_lines(&self, lines: ControlLines) -> Result<(), AcmError> {
        let setup = self.setup(
            ControlDirection::Out,
            SET_CONTROL_LINE_STATE,
            lines.bits(),
            0,
        );
        self.device
            .control_pipe()
            .write(setup, &[], self.control_timeout)?;
        Ok(())
    }

    /// `SEND_BREAK` for `duration_ms` milliseconds (0 ends a break, 0xFFFF holds it until
    /// the next `SEND_BREAK`). Sent whatever the ACM descriptor's `bmCapabilities` say
    /// ([`AcmCapabilities::send_break`](crate::AcmCapabilities::send_break)); a device
    /// without it stalls.
    ///
    /// # Errors
    /// As [`set_line_coding`](Self::set_line_coding).
    pub fn send_break(&self, duration_ms: u16) -> Result<(), AcmError> {
        let setup = self.setup(ControlDirection::Out, SEND_BREAK, duration_ms, 0);
        self.device
            .control_pipe()
            .write(setup, &[], self.control_timeout)?;
        Ok(())
    }

    /// A handle on the read half (shares the stream with this value and other clones).
    pub fn reader(&self) -> AcmReader {
        self.reader.clone()
    }

    /// A handle on the write half.
    pub fn writer(&self) -> AcmWriter {
        self.writer.clone()
    }

    /// Set the timeout of blocking reads.
    pub fn set_read_timeout(&self, timeout: Timeout) {
        self.reader.set_timeout(timeout);
    }

    /// Set the timeout of blocking writes.
    pub fn set_write_timeout(&self, timeout: Timeout) {
        self.writer.set_timeout(timeout);
    }

    /// A channel that receives every notification from now on, in device order
    /// (unbounded: drain it, or drop it to unsubscribe). Subscribe before
    /// [`start`](Self::start) to see everything.
    pub fn subscribe(&self) -> mpsc::Receiver<Notification> {
        self.notify.subscribe()
    }

    /// The last `SERIAL_STATE` the device sent, if any.
    pub fn latest_serial_state(&self) -> Option<SerialState> {
        self.notify.latest()
    }

    /// Notifications received so far.
    pub fn notifications_received(&self) -> u64 {
        self.notify.received()
    }

    /// Malformed notifications dropped so far.
    pub fn notifications_malformed(&self) -> u64 {
        self.notify.malformed()
    }
}

impl Drop for CdcAcm {
    fn drop(&mut self) {
        if let Some(r) = &self.notify_reader {
            let _ = r.stop(Timeout::millis(1000));
        }
    }
}

impl std::fmt::Debug for CdcAcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdcAcm")
            .field("device", &self.device)
            .field("comm_interface", &self.info.comm_interface)
            .field("data_interface", &self.info.data_interface)
            .finish()
    }
}

impl io::Read for CdcAcm {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut &self.reader, buf)
    }
}

impl io::Write for CdcAcm {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &self.writer, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut &self.writer)
    }
}

impl AsyncRead for CdcAcm {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for CdcAcm {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
