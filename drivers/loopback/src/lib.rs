#![doc = include_str!("../README.md")]
//!
//! ## Modules of this crate, by I/O path
//! * `loopback`: [`Loopback`] and its [`LoopbackDriver`] (echo);
//! * `sourcesink`: [`SourceSink`] and its [`SourceSinkDriver`] (patterns, vendor requests);
//! * `pattern`: [`Pattern`], pure code;
//! * `stream`: [`StreamConfig`], [`Throughput`]: N requests in flight from a pool.
#![warn(missing_docs)]

mod loopback;
mod pattern;
mod sourcesink;
mod stream;

pub use loopback::{Loopback, LoopbackDriver};
pub use pattern::{Mismatch, Pattern};
pub use sourcesink::{SourceSink, SourceSinkDriver};
pub use stream::{StreamConfig, Throughput};

use usbdf::driver::DeviceMatch;
use usbdf::{SendError, SendErrorKind, Status};

/// Gadget zero's vendor ID (NetChip).
pub const VENDOR_ID: u16 = 0x0525;
/// The Loopback gadget's product ID.
pub const LOOPBACK_PRODUCT_ID: u16 = 0xa4a9;
/// The SourceSink gadget's product ID (gadget zero's, what `usbtest.ko` binds).
pub const SOURCESINK_PRODUCT_ID: u16 = 0xa4a0;
/// Vendor request: write the ep0 buffer (`bmRequestType` 0x40).
pub const REQUEST_WRITE_BUFFER: u8 = 0x5b;
/// Vendor request: read the ep0 buffer back (`bmRequestType` 0xC0).
pub const REQUEST_READ_BUFFER: u8 = 0x5c;

/// [`LoopbackDriver`]'s ID table.
pub static LOOPBACK_IDS: [DeviceMatch; 1] =
    [DeviceMatch::id(VENDOR_ID, LOOPBACK_PRODUCT_ID).on_interface(0)];
/// [`SourceSinkDriver`]'s ID table.
pub static SOURCESINK_IDS: [DeviceMatch; 1] =
    [DeviceMatch::id(VENDOR_ID, SOURCESINK_PRODUCT_ID).on_interface(0)];

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// A setup-time error from usbdf (open, claim, control request, …).
    #[error(transparent)]
    Usb(#[from] usbdf::Error),
    /// usbdf refused to send a request.
    #[error("send refused: {0}")]
    Send(SendErrorKind),
    /// A transfer ended with this status.
    #[error("transfer ended with {0}")]
    Transfer(#[source] Status),
    /// Received data differs from the pattern (or from what was sent).
    #[error("data check failed")]
    Mismatch(#[from] Mismatch),
    /// Fewer bytes than expected came back.
    #[error("got {got} of {expected} bytes")]
    Short {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// An argument this function cannot work with.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The operation did not finish in time (its requests were cancelled).
    #[error("timed out")]
    TimedOut,
}

impl From<SendError> for LoopbackError {
    fn from(e: SendError) -> Self {
        LoopbackError::Send(e.kind())
    }
}

/// A completion status as a result.
pub(crate) fn check(status: Status) -> Result<(), LoopbackError> {
    match status {
        Status::Success => Ok(()),
        Status::TimedOut => Err(LoopbackError::TimedOut),
        s => Err(LoopbackError::Transfer(s)),
    }
}

/// The bulk IN and OUT endpoint addresses of an interface's current setting.
pub(crate) fn bulk_pair(iface: &usbdf::Interface) -> Result<(u8, u8), LoopbackError> {
    use usbdf::descriptor::TransferType;
    let setting = iface.descriptor().ok_or(LoopbackError::InvalidArgument(
        "interface has no descriptor",
    ))?;
    let find = |dir_in: bool| {
        setting
            .endpoints
            .iter()
            .find(|e| e.transfer_type() == TransferType::Bulk && (e.address & 0x80 != 0) == dir_in)
            .map(|e| e.address)
    };
    match (find(true), find(false)) {
        (Some(i), Some(o)) => Ok((i, o)),
        _ => Err(LoopbackError::InvalidArgument(
            "interface lacks a bulk IN/OUT pair",
        )),
    }
}

/// `deadline - now` as a timeout (at least 1 ms: usbdf refuses zero).
pub(crate) fn left(deadline: Option<std::time::Instant>) -> usbdf::Timeout {
    match deadline {
        None => usbdf::Timeout::Infinite,
        Some(d) => usbdf::Timeout::After(
            d.saturating_duration_since(std::time::Instant::now())
                .max(std::time::Duration::from_millis(1)),
        ),
    }
}

/// The deadline of a timeout starting now.
pub(crate) fn deadline(t: usbdf::Timeout) -> Option<std::time::Instant> {
    t.duration()
        .and_then(|d| std::time::Instant::now().checked_add(d))
}
