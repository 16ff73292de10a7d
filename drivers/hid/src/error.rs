//! The driver's error type.

use std::time::Duration;

use usbdf::descriptor::DescriptorError;

use crate::report::model::ReportKind;
use crate::report::parser::ParseError;

/// What can go wrong opening or using a HID interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HidError {
    /// The device is gone; every later call fails the same way.
    #[error("device disconnected")]
    Disconnected,
    /// A wait ran out of time (no input report, a control request or a
    /// write that did not finish).
    #[error("timed out")]
    TimedOut,
    /// The interface is not of class 3 (HID).
    #[error("interface {interface} has class {class:#04x}, not HID")]
    NotHid {
        /// Interface number.
        interface: u8,
        /// Its class.
        class: u8,
    },
    /// The interface has no HID descriptor (0x21) naming a report
    /// descriptor.
    #[error("interface {0} has no HID descriptor with a report descriptor")]
    NoHidDescriptor(u8),
    /// The HID descriptor is malformed.
    #[error("malformed HID descriptor")]
    HidDescriptor(#[source] DescriptorError),
    /// The interface has no interrupt IN endpoint.
    #[error("interface {0} has no interrupt IN endpoint")]
    NoInputEndpoint(u8),
    /// The report descriptor the device sent is malformed.
    #[error("malformed report descriptor")]
    ReportDescriptor(#[source] ParseError),
    /// The descriptor declares no report of this kind with this ID.
    #[error("no {kind:?} report with ID {id}")]
    UnknownReport {
        /// Kind asked for.
        kind: ReportKind,
        /// ID asked for.
        id: u8,
    },
    /// More data than the report holds.
    #[error("{kind:?} report {id} holds {max} data bytes, got {len}")]
    ReportTooLong {
        /// Kind.
        kind: ReportKind,
        /// ID.
        id: u8,
        /// Bytes given.
        len: usize,
        /// The report's data length.
        max: usize,
    },
    /// A report came back with another report ID first.
    #[error("expected report ID {expected}, the device answered {got:?}")]
    ReportIdMismatch {
        /// The ID asked for.
        expected: u8,
        /// The first byte received (`None`: nothing received).
        got: Option<u8>,
    },
    /// The input reader is not running ([`HidDevice::start`](crate::HidDevice::start)
    /// was not called, or it was stopped).
    #[error("the input reader is not running")]
    NotRunning,
    /// An idle duration above 1020 ms or not a multiple of 4 ms.
    #[error("idle duration {0:?} is not a multiple of 4 ms up to 1020 ms")]
    InvalidIdle(Duration),
    /// GET_PROTOCOL answered something other than 0 (boot) or 1 (report).
    #[error("GET_PROTOCOL answered {0}")]
    BadProtocol(u8),
    /// Any other framework error (claiming, transfers, a stall).
    #[error(transparent)]
    Usb(usbdf::Error),
}

impl From<usbdf::Error> for HidError {
    fn from(e: usbdf::Error) -> Self {
        match e {
            usbdf::Error::Disconnected | usbdf::Error::Transfer(usbdf::Status::Disconnected) => {
                HidError::Disconnected
            }
            usbdf::Error::TimedOut | usbdf::Error::Transfer(usbdf::Status::TimedOut) => {
                HidError::TimedOut
            }
            other => HidError::Usb(other),
        }
    }
}

impl From<usbdf::Status> for HidError {
    fn from(status: usbdf::Status) -> Self {
        usbdf::Error::Transfer(status).into()
    }
}

impl HidError {
    /// Whether the device is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, HidError::Disconnected)
    }

    /// The closest framework error, for [`Driver::probe`](usbdf::driver::Driver::probe),
    /// whose signature has no room for a driver's own error (the cause is
    /// logged with `tracing` first).
    pub fn into_usbdf(self) -> usbdf::Error {
        match self {
            HidError::Usb(e) => e,
            HidError::Disconnected => usbdf::Error::Disconnected,
            HidError::TimedOut => usbdf::Error::TimedOut,
            HidError::HidDescriptor(e) => usbdf::Error::Descriptor(e),
            other => {
                tracing::warn!(error = %other, source = ?std::error::Error::source(&other), "HID probe failed");
                usbdf::Error::InvalidArgument(match other {
                    HidError::ReportDescriptor(_) => "malformed HID report descriptor",
                    HidError::NoInputEndpoint(_) => {
                        "HID interface without an interrupt IN endpoint"
                    }
                    HidError::NoHidDescriptor(_) => "HID interface without a HID descriptor",
                    HidError::NotHid { .. } => "not a HID interface",
                    _ => "HID request failed",
                })
            }
        }
    }
}
