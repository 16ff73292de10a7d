//! The driver's error type.

use std::io;

use usbdf::{SendErrorKind, Status};

use crate::descriptors::FindError;
use crate::line::LineCodingError;

/// Everything that can go wrong in the CDC-ACM driver.
///
/// As an [`io::Error`] (from the `Read`/`Write` impls) it keeps this value as its inner
/// error ([`AcmError::from_io`] gets it back) and maps to these kinds:
///
/// | `AcmError` | `io::ErrorKind` |
/// |---|---|
/// | `Disconnected` | `NotConnected` |
/// | `TimedOut` | `TimedOut` |
/// | `Cancelled` | `Interrupted` |
/// | anything else | `Other` |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmError {
    /// The device is gone; every later call fails the same way, at once.
    #[error("CDC-ACM device disconnected")]
    Disconnected,
    /// The operation did not finish within its timeout (nothing was lost: see
    /// [`AcmReader`](crate::AcmReader)).
    #[error("CDC-ACM operation timed out")]
    TimedOut,
    /// The transfer was cancelled, e.g. by [`CdcAcm::stop`](crate::CdcAcm::stop).
    #[error("CDC-ACM transfer cancelled")]
    Cancelled,
    /// The data pipes are stopped ([`CdcAcm::stop`](crate::CdcAcm::stop));
    /// [`CdcAcm::start`](crate::CdcAcm::start) resumes them.
    #[error("CDC-ACM data pipes are stopped")]
    Stopped,
    /// The endpoint stalled. The driver has already cleared the halt, so the next call
    /// runs on a working pipe.
    #[error("endpoint {endpoint:#04x} stalled (halt cleared)")]
    Stall {
        /// The endpoint address.
        endpoint: u8,
    },
    /// A transfer ended with another failing status.
    #[error("transfer on endpoint {endpoint:#04x} failed")]
    Transfer {
        /// The endpoint address.
        endpoint: u8,
        /// How it ended.
        #[source]
        status: Status,
    },
    /// usbdf refused to send a transfer for a reason other than the ones above.
    #[error("endpoint {endpoint:#04x}: send refused: {kind}")]
    Send {
        /// The endpoint address.
        endpoint: u8,
        /// Why.
        kind: SendErrorKind,
    },
    /// The configuration has no usable ACM function.
    #[error("no usable CDC-ACM function")]
    NotAcm(#[from] FindError),
    /// `GET_LINE_CODING` returned fewer than 7 bytes.
    #[error("the device returned a short line coding")]
    LineCoding(#[from] LineCodingError),
    /// A usbdf setup operation or control request failed.
    #[error("USB operation failed")]
    Usb(#[source] usbdf::Error),
}

impl From<usbdf::Error> for AcmError {
    fn from(e: usbdf::Error) -> Self {
        match e {
            usbdf::Error::Disconnected => AcmError::Disconnected,
            usbdf::Error::TimedOut | usbdf::Error::Transfer(Status::TimedOut) => AcmError::TimedOut,
            other => AcmError::Usb(other),
        }
    }
}

impl AcmError {
    /// Whether the device is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, AcmError::Disconnected)
    }

    /// The `AcmError` inside an `io::Error` returned by this crate's `Read`/`Write`
    /// implementations.
    pub fn from_io(e: &io::Error) -> Option<&AcmError> {
        e.get_ref()?.downcast_ref::<AcmError>()
    }

    /// The error for a transfer status on `endpoint` (not for `Success`).
    pub(crate) fn from_status(endpoint: u8, status: Status) -> AcmError {
        match status {
            Status::Disconnected => AcmError::Disconnected,
            Status::TimedOut => AcmError::TimedOut,
            Status::Cancelled => AcmError::Cancelled,
            Status::Stall => AcmError::Stall { endpoint },
            other => AcmError::Transfer {
                endpoint,
                status: other,
            },
        }
    }

    /// The error for a refused send on `endpoint`.
    pub(crate) fn from_send(endpoint: u8, kind: SendErrorKind) -> AcmError {
        match kind {
            SendErrorKind::Disconnected => AcmError::Disconnected,
            SendErrorKind::TargetStopped => AcmError::Stopped,
            SendErrorKind::Halted(status) => AcmError::from_status(endpoint, status),
            other => AcmError::Send {
                endpoint,
                kind: other,
            },
        }
    }
}

impl From<AcmError> for io::Error {
    fn from(e: AcmError) -> io::Error {
        let kind = match e {
            AcmError::Disconnected => io::ErrorKind::NotConnected,
            AcmError::TimedOut => io::ErrorKind::TimedOut,
            AcmError::Cancelled => io::ErrorKind::Interrupted,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The driver's errors as usbdf's, for [`Driver`](usbdf::driver::Driver) methods (which
/// return [`usbdf::Error`]). The mapping keeps the kind; the CDC detail goes to the log.
pub(crate) fn to_usbdf(e: AcmError) -> usbdf::Error {
    use crate::descriptors::FunctionalError;
    use usbdf::descriptor::DescriptorError;
    match e {
        AcmError::Usb(e) => e,
        AcmError::Disconnected => usbdf::Error::Disconnected,
        AcmError::TimedOut => usbdf::Error::TimedOut,
        AcmError::Stall { .. } => usbdf::Error::Transfer(Status::Stall),
        AcmError::Transfer { status, .. } => usbdf::Error::Transfer(status),
        AcmError::NotAcm(FindError::Functional {
            source: FunctionalError::Framing(d),
            ..
        }) => usbdf::Error::Descriptor(d),
        AcmError::NotAcm(FindError::Functional {
            source: FunctionalError::Truncated {
                length, minimum, ..
            },
            ..
        }) => usbdf::Error::Descriptor(DescriptorError::BadLength {
            offset: 0,
            b_length: u8::try_from(length).unwrap_or(u8::MAX),
            minimum: u8::try_from(minimum).unwrap_or(u8::MAX),
        }),
        AcmError::NotAcm(FindError::NoDataInterface(n) | FindError::NoSuchInterface(n)) => {
            usbdf::Error::NoSuchInterface(n)
        }
        AcmError::NotAcm(_) => {
            usbdf::Error::InvalidArgument("not a usable CDC-ACM function (see the driver log)")
        }
        AcmError::Cancelled | AcmError::Stopped | AcmError::Send { .. } => {
            usbdf::Error::InvalidArgument("CDC-ACM transfer could not run")
        }
        AcmError::LineCoding(_) => {
            usbdf::Error::InvalidArgument("the device returned a short line coding")
        }
    }
}
