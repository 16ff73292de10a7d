//! Send options, timeouts and pipe policies.

use std::time::{Duration, Instant};

/// How long a blocking wait or a send may take.
///
/// There is no default: a synchronous wait must say how long it may block,
/// and waiting forever has to be written out as [`Timeout::Infinite`]
/// (KMDF's SyncReqSend rule, so a device that never answers cannot hang a
/// thread by accident). A zero duration is rejected where it would make a
/// send meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// Give up after this long.
    After(Duration),
    /// Wait for as long as it takes.
    Infinite,
}

impl Timeout {
    /// `Timeout::After(d)`.
    pub const fn after(d: Duration) -> Timeout {
        Timeout::After(d)
    }

    /// `Timeout::After` a number of milliseconds.
    pub const fn millis(ms: u64) -> Timeout {
        Timeout::After(Duration::from_millis(ms))
    }

    /// True for a finite zero duration.
    pub fn is_zero(self) -> bool {
        matches!(self, Timeout::After(d) if d.is_zero())
    }

    /// The finite duration, if any.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Timeout::After(d) => Some(d),
            Timeout::Infinite => None,
        }
    }

    pub(crate) fn deadline_from(self, now: Instant) -> Option<Instant> {
        match self {
            // A deadline too far away to represent is the same as none.
            Timeout::After(d) => now.checked_add(d),
            Timeout::Infinite => None,
        }
    }
}

/// Options for one send.
///
/// `SendOptions::new()` sends with no timeout of its own (the request stays
/// pending until the device answers, it is cancelled, or the pipe is
/// stopped), honouring the I/O target's state.
///
/// KMDF: `WDF_REQUEST_SEND_OPTIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) ignore_target_state: bool,
}

impl SendOptions {
    /// No timeout, target state honoured.
    pub const fn new() -> SendOptions {
        SendOptions {
            timeout: None,
            ignore_target_state: false,
        }
    }

    /// Complete the request with [`Status::TimedOut`](crate::Status::TimedOut)
    /// if it has not finished `timeout` after it was sent (unless the device
    /// completes it first). A zero timeout is a send error.
    ///
    /// KMDF: `WDF_REQUEST_SEND_OPTION_TIMEOUT`.
    pub const fn timeout(mut self, timeout: Duration) -> SendOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Send even when the pipe's I/O target is stopped (for a driver's own
    /// recovery traffic).
    ///
    /// KMDF: `WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE`.
    pub const fn ignore_target_state(mut self) -> SendOptions {
        self.ignore_target_state = true;
        self
    }

    /// The timeout set, if any.
    pub const fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// What an IN pipe does with a transfer that ends on a short packet.
///
/// KMDF: the `USBD_SHORT_TRANSFER_OK` flag of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShortPacket {
    /// A short packet ends the transfer successfully (the usual case).
    #[default]
    Ok,
    /// A short packet ends the transfer with
    /// [`Status::ShortPacket`](crate::Status::ShortPacket); the bytes that
    /// arrived are kept.
    NotOk,
}

/// Whether an OUT pipe ends a transfer whose length is a multiple of the
/// max packet size with a zero-length packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Zlp {
    /// Send a ZLP after such a transfer (bulk OUT default), so the device
    /// sees where it ends.
    #[default]
    Auto,
    /// Never add one.
    Never,
}

/// Whether IN lengths must be a multiple of the max packet size.
///
/// KMDF: `WdfUsbTargetPipeSetNoMaximumPacketSizeCheck`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PacketSizeCheck {
    /// Reject IN requests that are not a multiple (a send error).
    #[default]
    Enforce,
    /// Accept any IN length: the transfer asks the device for the length
    /// rounded up to a whole packet (the buffer must have room), and data
    /// past the requested length is reported as
    /// [`Status::Overflow`](crate::Status::Overflow).
    None,
}

/// A pipe's policies, set when it is opened and changeable later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipePolicy {
    /// Short-packet handling for IN pipes.
    pub short_packet: ShortPacket,
    /// Automatic ZLPs for OUT pipes.
    pub zlp: Zlp,
    /// The IN length check.
    pub packet_size_check: PacketSizeCheck,
    /// Requests that may be in flight at once; sends past it fail with
    /// [`SendErrorKind::QueueFull`](crate::SendErrorKind::QueueFull).
    pub max_in_flight: usize,
    /// The largest single transfer accepted, in bytes.
    pub max_transfer: usize,
}

impl Default for PipePolicy {
    fn default() -> Self {
        PipePolicy {
            short_packet: ShortPacket::Ok,
            zlp: Zlp::Auto,
            packet_size_check: PacketSizeCheck::Enforce,
            max_in_flight: 64,
            max_transfer: 4 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_infinite() {
        assert!(Timeout::millis(0).is_zero());
        assert!(!Timeout::Infinite.is_zero());
        assert_eq!(Timeout::Infinite.deadline_from(Instant::now()), None);
        assert_eq!(
            Timeout::After(Duration::MAX).deadline_from(Instant::now()),
            None
        );
    }

    #[test]
    fn options_builder() {
        let o = SendOptions::new()
            .timeout(Duration::from_millis(5))
            .ignore_target_state();
        assert_eq!(o.get_timeout(), Some(Duration::from_millis(5)));
        assert!(o.ignore_target_state);
        assert_eq!(SendOptions::default(), SendOptions::new());
    }
}
