//! Setup errors and send errors.

use std::fmt;

use crate::backend::{BackendError, BackendErrorKind};
use crate::descriptor::{DescriptorError, Direction, TransferType};
use crate::request::Request;
use crate::status::Status;

/// An error from a setup-time operation: opening, claiming, selecting,
/// resetting, synchronous control transfers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device is gone; every later call fails the same way.
    #[error("device disconnected")]
    Disconnected,
    /// No device matched.
    #[error("no matching device found")]
    DeviceNotFound,
    /// The interface (or device) is held by another driver or process.
    /// [`InterfaceClaim::detach_kernel_driver`](crate::InterfaceClaim) is the opt-in way past a kernel driver.
    #[error("interface {interface} is busy (held by another driver)")]
    Busy {
        /// The interface number.
        interface: u8,
        /// What the OS said.
        #[source]
        source: BackendError,
    },
    /// The OS refused access.
    #[error("permission denied")]
    PermissionDenied(#[source] BackendError),
    /// No configuration with this `bConfigurationValue`.
    #[error("no configuration with value {0}")]
    NoSuchConfiguration(u8),
    /// No interface with this number in the active configuration.
    #[error("no interface {0} in the active configuration")]
    NoSuchInterface(u8),
    /// No such alternate setting.
    #[error("interface {interface} has no alternate setting {alt}")]
    NoSuchAltSetting {
        /// Interface number.
        interface: u8,
        /// The setting asked for.
        alt: u8,
    },
    /// No endpoint with this address in the interface's current setting.
    #[error("no endpoint {0:#04x} in the current alternate setting")]
    NoSuchEndpoint(u8),
    /// The endpoint exists but is of another transfer type.
    #[error("endpoint {address:#04x} is {found:?}, not {expected:?}")]
    WrongPipeType {
        /// Endpoint address.
        address: u8,
        /// The type the pipe was opened as.
        expected: TransferType,
        /// The type the descriptor declares.
        found: TransferType,
    },
    /// The endpoint exists but points the other way.
    #[error("endpoint {address:#04x} is {found:?}, not {expected:?}")]
    WrongDirection {
        /// Endpoint address.
        address: u8,
        /// The direction the pipe was opened as.
        expected: Direction,
        /// The direction of the address.
        found: Direction,
    },
    /// The endpoint is already open as a pipe.
    #[error("endpoint {0:#04x} is already open")]
    PipeAlreadyOpen(u8),
    /// Pipes of the interface are still open (changing the alternate
    /// setting would pull endpoints out from under them).
    #[error("interface {0} still has open pipes")]
    PipesOpen(u8),
    /// Interfaces are still claimed (changing the configuration would pull
    /// them out from under their users).
    #[error("interfaces are still claimed")]
    InterfacesClaimed,
    /// The operation needs a pipe with nothing in flight (e.g. reset with
    /// transfers pending); abort or stop the pipe first.
    #[error("{0} requests still in flight on the pipe")]
    RequestsPending(usize),
    /// A synchronous wait was given a zero timeout.
    #[error("a zero timeout is not allowed for a synchronous wait")]
    ZeroTimeout,
    /// A wait ran out of time.
    #[error("timed out")]
    TimedOut,
    /// A control request, or the operation, ended with a transfer status.
    #[error("control transfer ended with {0}")]
    Transfer(#[source] Status),
    /// The device sent a descriptor usbdf could not parse.
    #[error("malformed descriptor from the device")]
    Descriptor(#[from] DescriptorError),
    /// An argument was out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The operation is not supported on this backend or OS.
    #[error("not supported")]
    Unsupported(#[source] BackendError),
    /// Any other OS error, with its cause.
    #[error("USB backend error")]
    Backend(#[source] BackendError),
    /// A driver's own error (from `probe` or `start`), with its cause.
    #[error("driver error")]
    Driver(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wrap a driver's own error, keeping it as the cause.
    pub fn driver(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Driver(Box::new(e))
    }
}

impl Error {
    pub(crate) fn from_backend(e: BackendError, interface: Option<u8>) -> Error {
        match e.kind {
            BackendErrorKind::Disconnected => Error::Disconnected,
            BackendErrorKind::Busy => Error::Busy {
                interface: interface.unwrap_or(0),
                source: e,
            },
            BackendErrorKind::PermissionDenied => Error::PermissionDenied(e),
            BackendErrorKind::Stall => Error::Transfer(Status::Stall),
            BackendErrorKind::TimedOut => Error::TimedOut,
            BackendErrorKind::Unsupported => Error::Unsupported(e),
            BackendErrorKind::NotFound | BackendErrorKind::Other => Error::Backend(e),
        }
    }
}

/// Why a send was refused. The request was not sent and comes back inside
/// the [`SendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The device is gone.
    Disconnected,
    /// The pipe's I/O target is stopped.
    TargetStopped,
    /// An earlier transfer failed with this status and halted the pipe;
    /// [`Pipe::reset`](crate::Pipe::reset) resumes it.
    Halted(Status),
    /// An IN request of zero bytes.
    ZeroLengthIn,
    /// An IN length that is not a multiple of the max packet size while
    /// the pipe enforces the check.
    NotMultipleOfMaxPacket {
        /// Requested length.
        len: usize,
        /// The endpoint's max packet size.
        max_packet_size: usize,
    },
    /// The request's buffer cannot hold the transfer.
    BufferTooSmall {
        /// Bytes needed.
        len: usize,
        /// The buffer's capacity.
        capacity: usize,
    },
    /// Longer than the pipe accepts in one transfer.
    TooLarge {
        /// Requested length.
        len: usize,
        /// The pipe's `max_transfer`.
        max: usize,
    },
    /// The pipe already has `max_in_flight` requests.
    QueueFull,
    /// A zero timeout in the send options.
    ZeroTimeout,
}

impl fmt::Display for SendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendErrorKind::Disconnected => write!(f, "device disconnected"),
            SendErrorKind::TargetStopped => write!(f, "I/O target is stopped"),
            SendErrorKind::Halted(s) => write!(f, "pipe halted after {s}; reset it"),
            SendErrorKind::ZeroLengthIn => write!(f, "zero-length IN request"),
            SendErrorKind::NotMultipleOfMaxPacket {
                len,
                max_packet_size,
            } => write!(
                f,
                "IN length {len} is not a multiple of the max packet size {max_packet_size}"
            ),
            SendErrorKind::BufferTooSmall { len, capacity } => {
                write!(
                    f,
                    "transfer of {len} bytes does not fit the buffer of {capacity}"
                )
            }
            SendErrorKind::TooLarge { len, max } => {
                write!(
                    f,
                    "transfer of {len} bytes exceeds the pipe maximum of {max}"
                )
            }
            SendErrorKind::QueueFull => write!(f, "too many requests in flight on the pipe"),
            SendErrorKind::ZeroTimeout => write!(f, "zero timeout in send options"),
        }
    }
}

/// A refused send: why, and the request, untouched, for the next try.
#[derive(thiserror::Error)]
#[error("send refused: {kind}")]
pub struct SendError {
    kind: SendErrorKind,
    request: Request,
}

impl SendError {
    pub(crate) fn new(kind: SendErrorKind, request: Request) -> SendError {
        SendError { kind, request }
    }

    /// Why the send was refused.
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }

    /// The request, to send again or drop.
    pub fn into_request(self) -> Request {
        self.request
    }

    /// The request, for inspection.
    pub fn request(&self) -> &Request {
        &self.request
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .field("request", &self.request.id())
            .finish()
    }
}
