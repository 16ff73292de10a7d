//! The private seam between usbdf's engine and the USB stacks it runs on.
//!
//! Two implementations live behind it: [`nusb`](self::nusb_host) (real devices
//! through the OS, usbfs on Linux) and the in-process simulator in
//! [`crate::sim`]. The engine above this seam owns every guarantee usbdf makes
//! (per-request cancel, timeouts, exactly-once completion, ZLPs); a backend
//! only has to behave like nusb 0.2 does:
//!
//! * transfers on one endpoint complete in submission order (FIFO);
//! * the only cancel is [`BackendEndpoint::cancel_all`], which cancels every
//!   pending transfer; each still comes back from
//!   [`BackendEndpoint::poll_next_complete`] with the bytes it moved;
//! * the waker handed to `poll_next_complete` may be called from any thread,
//!   including synchronously from inside `submit` (nusb does that when the
//!   OS rejects a submission), so the engine never assumes it is not
//!   holding its own lock when woken;
//! * IN transfers must request a non-zero multiple of the max packet size,
//!   otherwise they complete with [`RawStatus::InvalidArgument`].

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) use ::nusb::transfer::Buffer;

use crate::control::SetupPacket;

pub(crate) mod nusb_host;

/// Status of one backend transfer, before the engine interprets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawStatus {
    /// The transfer was cancelled by `cancel_all` (or timed out inside the OS).
    Cancelled,
    /// The endpoint stalled.
    Stall,
    /// The device is gone.
    Disconnected,
    /// A protocol error (EPROTO/EILSEQ/ETIME on Linux): may mean unplug.
    Fault,
    /// The device sent more data than requested (babble).
    Overflow,
    /// The submission was rejected as invalid.
    InvalidArgument,
    /// usbfs ran out of memory for URBs (ENOMEM), a retryable condition.
    NoResources,
    /// Any other OS status, kept raw.
    Os(u32),
}

/// One finished backend transfer.
pub(crate) struct RawCompletion {
    /// The buffer handed to `submit`, with `len` set to the bytes received
    /// for IN transfers.
    pub buffer: Buffer,
    /// Bytes moved on the bus.
    pub actual_len: usize,
    /// How it ended.
    pub status: Result<(), RawStatus>,
}

/// The kind of error the USB stack reported for a setup-time operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The device is gone.
    Disconnected,
    /// Held by another driver or process.
    Busy,
    /// The OS refused access.
    PermissionDenied,
    /// Not found.
    NotFound,
    /// Not supported here.
    Unsupported,
    /// The device stalled the request.
    Stall,
    /// The operation timed out.
    TimedOut,
    /// Anything else.
    Other,
}

/// The cause kept inside an [`Error`](crate::Error): what the USB stack
/// (nusb and the OS, or the simulator) said, with the OS error code when
/// there is one.
#[derive(Debug, Clone)]
pub struct BackendError {
    pub(crate) kind: BackendErrorKind,
    pub(crate) message: &'static str,
    pub(crate) os_code: Option<u32>,
}

impl BackendError {
    /// What kind of failure.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The OS error code (errno on Linux), if any.
    pub fn os_code(&self) -> Option<u32> {
        self.os_code
    }
}

impl BackendError {
    pub(crate) fn new(kind: BackendErrorKind, message: &'static str) -> Self {
        BackendError {
            kind,
            message,
            os_code: None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)?;
        if let Some(code) = self.os_code {
            write!(f, " (os error {code})")?;
        }
        Ok(())
    }
}

impl std::error::Error for BackendError {}

/// Identity of a device on a bus, as listed before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackendDeviceInfo {
    pub bus_id: String,
    pub address: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    /// Interfaces as (number, class, subclass, protocol) of the active configuration.
    pub interfaces: Vec<(u8, u8, u8, u8)>,
    /// An opaque key naming this device while it is connected (stable
    /// between `list` and the watch's events; a reconnected device gets a
    /// new one, except when the OS reuses its address).
    pub key: u64,
}

/// The result of a control transfer: IN data, or the OUT byte count.
pub(crate) type ControlResult = Result<ControlData, RawStatus>;

/// What a finished control transfer moved.
#[derive(Debug)]
pub(crate) enum ControlData {
    In(Vec<u8>),
    Out(usize),
}

/// One control transfer in flight. Dropping it cancels the transfer.
pub(crate) trait BackendControl: Send {
    /// Poll for completion; the waker may be called from any thread.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ControlResult>;
}

/// An opened device.
pub(crate) trait BackendDevice: Send + Sync {
    /// The 18-byte device descriptor as the OS cached it.
    fn device_descriptor(&self) -> Vec<u8>;
    /// The raw bytes of every configuration descriptor (with its
    /// interfaces and endpoints), index order.
    fn configuration_descriptors(&self) -> Vec<Vec<u8>>;
    /// `bConfigurationValue` of the active configuration (0: unconfigured).
    fn active_configuration(&self) -> Result<u8, BackendError>;
    /// SET_CONFIGURATION, blocking.
    fn set_configuration(&self, value: u8) -> Result<(), BackendError>;
    /// Claim an interface; with `detach` the OS driver holding it is detached first.
    fn claim_interface(
        &self,
        number: u8,
        detach: bool,
    ) -> Result<Box<dyn BackendInterface>, BackendError>;
    /// Start a control transfer on endpoint 0. `data` is the OUT data
    /// stage (empty for IN requests or no data stage).
    fn submit_control(
        &self,
        setup: SetupPacket,
        data: &[u8],
        timeout: Duration,
    ) -> Box<dyn BackendControl>;
    /// The connection speed, if known.
    fn speed(&self) -> Option<crate::target::Speed>;
    /// Reset the port (the device re-enumerates).
    fn reset(&self) -> Result<(), BackendError>;
}

/// A claimed interface.
pub(crate) trait BackendInterface: Send + Sync {
    /// SET_INTERFACE, blocking.
    fn set_alt_setting(&self, alt: u8) -> Result<(), BackendError>;
    /// The alternate setting currently selected.
    fn alt_setting(&self) -> u8;
    /// Open an endpoint of the current alternate setting. The engine has
    /// already checked type and direction against the descriptor.
    fn open_endpoint(
        &self,
        address: u8,
        transfer_type: crate::descriptor::TransferType,
    ) -> Result<Box<dyn BackendEndpoint>, BackendError>;
}

/// An opened bulk or interrupt endpoint with nusb's queue semantics.
pub(crate) trait BackendEndpoint: Send {
    /// The endpoint address (bit 7 set for IN).
    #[allow(dead_code)]
    fn address(&self) -> u8;
    /// The max packet size in bytes.
    fn max_packet_size(&self) -> usize;
    /// A buffer suited to this endpoint (zero-copy where the OS supports it).
    fn allocate(&self, len: usize) -> Buffer;
    /// Queue a transfer. OUT sends `buf[..buf.len()]`; IN asks for
    /// `buf.requested_len()` bytes.
    fn submit(&mut self, buf: Buffer);
    /// Transfers submitted and not yet returned by `poll_next_complete`.
    #[allow(dead_code)]
    fn pending(&self) -> usize;
    /// Cancel every pending transfer; each still completes.
    fn cancel_all(&mut self);
    /// The oldest finished transfer, if the oldest one has finished.
    fn poll_next_complete(&mut self, cx: &mut Context<'_>) -> Poll<RawCompletion>;
    /// CLEAR_FEATURE(ENDPOINT_HALT) and host toggle reset, blocking.
    fn clear_halt(&mut self) -> Result<(), BackendError>;
}

/// A bus: how devices are found and opened.
pub(crate) trait BackendBus: Send + Sync {
    /// Devices present now.
    fn list(&self) -> Result<Vec<BackendDeviceInfo>, BackendError>;
    /// Open one of the devices `list` returned.
    fn open(&self, info: &BackendDeviceInfo) -> Result<Box<dyn BackendDevice>, BackendError>;
    /// Follow arrivals and departures from now on. Create the watch
    /// *before* listing, so no device falls between the list and the first
    /// event (an arrival may then be seen twice: dedupe by `key`).
    fn watch(&self) -> Result<Box<dyn BackendWatch>, BackendError>;
}

/// An arrival or a departure on a bus.
#[derive(Debug, Clone)]
pub(crate) enum BusEvent {
    /// A device was connected (it may still be enumerating: its
    /// `interfaces` can be empty until it is configured).
    Arrived(BackendDeviceInfo),
    /// The device with this `BackendDeviceInfo::key` left.
    Left(u64),
}

/// A stream of [`BusEvent`]s.
pub(crate) trait BackendWatch: Send {
    /// The next event, or `Pending` (the waker is called, from any thread,
    /// when one may be ready). `Ready(None)`: the watch has ended.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<BusEvent>>;
}
