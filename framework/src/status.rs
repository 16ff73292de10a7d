//! How a sent request ended.

use crate::backend::RawStatus;

/// The completion status of a request: success, or why it ended early.
///
/// Small and `Copy`; it travels inside every [`Completion`](crate::Completion).
/// `Cancelled` and `TimedOut` are outcomes a driver asked for, not failures:
/// check [`Status::is_error`] before logging anything as an error.
///
/// KMDF: the `NTSTATUS` of `WdfRequestGetStatus` plus `USBD_STATUS` of
/// `WDF_USB_REQUEST_COMPLETION_PARAMS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Status {
    /// Every requested byte moved (OUT), or the device ended the IN transfer
    /// with a full length or a short packet.
    #[error("success")]
    Success,
    /// The request was cancelled (cancel handle, abort, stop, drop of a
    /// future) before it finished; `bytes` says what moved first.
    #[error("cancelled")]
    Cancelled,
    /// The request's timeout expired before it finished; `bytes` says what
    /// moved first. Never reported as `Cancelled`.
    #[error("timed out")]
    TimedOut,
    /// The endpoint (or the control request) stalled. Bulk/interrupt pipes
    /// need [`reset`](crate::Pipe::reset) before data flows again.
    #[error("endpoint stalled")]
    Stall,
    /// The device is gone. Reported consistently for every unplug, whatever
    /// the OS said (Linux reports EPROTO or ESHUTDOWN at random).
    #[error("device disconnected")]
    Disconnected,
    /// The device sent more data than the request had room for (babble).
    #[error("device sent more data than requested (overflow)")]
    Overflow,
    /// An IN transfer ended on a short packet while the pipe's short-packet
    /// policy was [`ShortPacket::NotOk`](crate::ShortPacket::NotOk).
    #[error("short packet with short-not-ok policy")]
    ShortPacket,
    /// A protocol error on the bus (CRC, bit stuffing, no response) with the
    /// device still present.
    #[error("bus protocol error")]
    Fault,
    /// The OS ran out of transfer memory (usbfs_memory_mb on Linux).
    /// Retryable: send the request again once others have completed.
    #[error("out of OS transfer resources")]
    NoResources,
    /// The OS rejected the transfer as invalid.
    #[error("transfer rejected by the OS as invalid")]
    InvalidArgument,
    /// Any other OS status, kept raw.
    #[error("OS transfer error {0}")]
    Os(u32),
}

impl Status {
    /// True for [`Status::Success`].
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Success)
    }

    /// True for outcomes that indicate something went wrong, that is, not
    /// success and not a cancel or timeout the driver asked for.
    pub const fn is_error(self) -> bool {
        !matches!(self, Status::Success | Status::Cancelled | Status::TimedOut)
    }

    /// Whether this status halts a bulk/interrupt pipe until it is reset.
    pub(crate) const fn halts_pipe(self) -> bool {
        matches!(self, Status::Stall | Status::Overflow | Status::Fault)
    }

    pub(crate) fn from_raw(raw: RawStatus) -> Status {
        match raw {
            RawStatus::Cancelled => Status::Cancelled,
            RawStatus::Stall => Status::Stall,
            RawStatus::Disconnected => Status::Disconnected,
            RawStatus::Fault => Status::Fault,
            RawStatus::Overflow => Status::Overflow,
            RawStatus::InvalidArgument => Status::InvalidArgument,
            RawStatus::NoResources => Status::NoResources,
            RawStatus::Os(code) => Status::Os(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_is_not_an_error() {
        assert!(!Status::Cancelled.is_error());
        assert!(!Status::TimedOut.is_error());
        assert!(!Status::Success.is_error());
        assert!(Status::Stall.is_error());
        assert!(Status::Disconnected.is_error());
    }

    #[test]
    fn raw_maps_one_to_one() {
        assert_eq!(Status::from_raw(RawStatus::Os(71)), Status::Os(71));
        assert_eq!(Status::from_raw(RawStatus::Stall), Status::Stall);
    }
}
