//! Notifications on the interrupt IN endpoint: the pure parser and reassembler, and the
//! delivery to the driver's user (latest serial state, subscribers, a callback).
//!
//! # Ordering
//! The continuous reader hands usbdf's completions over in the order the device sent them,
//! one at a time; everything below runs inside that callback, so every notification
//! reaches the latest-state cell, the callback and every subscriber in device order, and
//! none is dropped (subscriber channels are unbounded).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use crate::line::SerialState;

/// `bmRequestType` of a CDC notification (device to host, class, interface).
pub const NOTIFICATION_REQUEST_TYPE: u8 = 0xA1;
/// `NETWORK_CONNECTION` notification code.
pub const NETWORK_CONNECTION: u8 = 0x00;
/// `RESPONSE_AVAILABLE` notification code.
pub const RESPONSE_AVAILABLE: u8 = 0x01;
/// `SERIAL_STATE` notification code.
pub const SERIAL_STATE: u8 = 0x20;
/// Size of the notification header (a SETUP-packet-like 8 bytes).
pub const HEADER_LEN: usize = 8;
/// The largest `wLength` accepted; longer notifications are malformed for ACM.
pub const MAX_DATA_LEN: usize = 64;

/// A notification from the communication interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Notification {
    /// `SERIAL_STATE`: the UART state bitmap.
    SerialState(SerialState),
    /// `NETWORK_CONNECTION`: connected or not.
    NetworkConnection(bool),
    /// `RESPONSE_AVAILABLE`: an encapsulated response is ready.
    ResponseAvailable,
    /// Any other notification, kept as it came.
    Other {
        /// `bNotification`.
        code: u8,
        /// `wValue`.
        value: u16,
        /// The data stage.
        data: Vec<u8>,
    },
}

/// Why notification bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// The bytes end before the header or before `wLength` data bytes.
    #[error("notification needs {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the notification needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// `bmRequestType` is not 0xA1.
    #[error("notification bmRequestType {0:#04x}, expected 0xa1")]
    RequestType(u8),
    /// `wLength` above [`MAX_DATA_LEN`].
    #[error("notification wLength {0} exceeds {MAX_DATA_LEN}")]
    TooLong(u16),
    /// A `SERIAL_STATE` with fewer than 2 data bytes.
    #[error("SERIAL_STATE with {0} data bytes, expected 2")]
    ShortSerialState(u16),
}

impl Notification {
    /// Parse one notification from the start of `bytes`; returns it and the bytes it used.
    ///
    /// # Errors
    /// [`NotificationError`]; `Truncated` means more bytes may complete it.
    pub fn parse(bytes: &[u8]) -> Result<(Notification, usize), NotificationError> {
        let &[request_type, code, v0, v1, _i0, _i1, l0, l1] = bytes
            .first_chunk::<HEADER_LEN>()
            .ok_or(NotificationError::Truncated {
                needed: HEADER_LEN,
                available: bytes.len(),
            })?;
        if request_type != NOTIFICATION_REQUEST_TYPE {
            return Err(NotificationError::RequestType(request_type));
        }
        let w_length = u16::from_le_bytes([l0, l1]);
        if usize::from(w_length) > MAX_DATA_LEN {
            return Err(NotificationError::TooLong(w_length));
        }
        let total = HEADER_LEN + usize::from(w_length);
        let data = bytes
            .get(HEADER_LEN..total)
            .ok_or(NotificationError::Truncated {
                needed: total,
                available: bytes.len(),
            })?;
        let value = u16::from_le_bytes([v0, v1]);
        let n = match code {
            SERIAL_STATE => match data {
                &[lo, hi, ..] => {
                    Notification::SerialState(SerialState(u16::from_le_bytes([lo, hi])))
                }
                _ => return Err(NotificationError::ShortSerialState(w_length)),
            },
            NETWORK_CONNECTION => Notification::NetworkConnection(value != 0),
            RESPONSE_AVAILABLE => Notification::ResponseAvailable,
            _ => Notification::Other {
                code,
                value,
                data: data.to_vec(),
            },
        };
        Ok((n, total))
    }
}

/// Reassembles notifications from interrupt transfers.
///
/// A notification longer than the endpoint's max packet size arrives in several
/// transfers: a transfer that filled its whole length may continue in the next one, a
/// short one ends what it carries. Whatever a short transfer leaves incomplete is
/// malformed and dropped, so one bad notification cannot misalign the ones after it.
#[derive(Debug, Clone, Default)]
pub struct Assembler {
    buf: Vec<u8>,
}

impl Assembler {
    /// An empty assembler.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Feed one transfer's data; `full` says whether it filled the transfer length (more
    /// of the same notification may follow). Every complete notification, and every error,
    /// is passed to `out` in order.
    pub fn push(
        &mut self,
        data: &[u8],
        full: bool,
        mut out: impl FnMut(Result<Notification, NotificationError>),
    ) {
        self.buf.extend_from_slice(data);
        let mut used = 0;
        while used < self.buf.len() {
            match Notification::parse(&self.buf[used..]) {
                Ok((n, len)) => {
                    used += len;
                    out(Ok(n));
                }
                Err(NotificationError::Truncated { .. })
                    if full && self.buf.len() - used < HEADER_LEN + MAX_DATA_LEN =>
                {
                    break;
                }
                Err(e) => {
                    used = self.buf.len();
                    out(Err(e));
                }
            }
        }
        self.buf.drain(..used);
    }

    /// Bytes waiting for the rest of their notification.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Called with every notification, in device order, from usbdf's event context: keep it
/// short and never block in it.
pub type NotificationCallback = Arc<dyn Fn(&Notification) + Send + Sync + 'static>;

/// The delivery side, shared by the reader callback and the [`CdcAcm`](crate::CdcAcm).
pub(crate) struct NotifyShared {
    assembler: Mutex<Assembler>,
    latest: Mutex<Option<SerialState>>,
    subscribers: Mutex<Vec<mpsc::Sender<Notification>>>,
    callback: Option<NotificationCallback>,
    received: AtomicU64,
    malformed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NotifyShared {
    pub(crate) fn new(callback: Option<NotificationCallback>) -> Arc<NotifyShared> {
        Arc::new(NotifyShared {
            assembler: Mutex::new(Assembler::new()),
            latest: Mutex::new(None),
            subscribers: Mutex::new(Vec::new()),
            callback,
            received: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        })
    }

    /// One completed interrupt read (the continuous reader's callback).
    pub(crate) fn on_transfer(&self, data: &[u8], transfer_len: usize) {
        let mut assembler = lock(&self.assembler);
        assembler.push(data, data.len() >= transfer_len, |n| match n {
            Ok(n) => self.deliver(n),
            Err(e) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "cdc-acm: malformed notification dropped");
            }
        });
    }

    fn deliver(&self, n: Notification) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Notification::SerialState(s) = n {
            *lock(&self.latest) = Some(s);
        }
        if let Some(cb) = &self.callback {
            cb(&n);
        }
        lock(&self.subscribers).retain(|tx| tx.send(n.clone()).is_ok());
    }

    pub(crate) fn subscribe(&self) -> mpsc::Receiver<Notification> {
        let (tx, rx) = mpsc::channel();
        lock(&self.subscribers).push(tx);
        rx
    }

    pub(crate) fn latest(&self) -> Option<SerialState> {
        *lock(&self.latest)
    }

    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub(crate) fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DCD_DSR: [u8; 10] = [0xA1, 0x20, 0, 0, 0, 0, 2, 0, 3, 0];

    fn collect(
        a: &mut Assembler,
        data: &[u8],
        full: bool,
    ) -> Vec<Result<Notification, NotificationError>> {
        let mut v = Vec::new();
        a.push(data, full, |n| v.push(n));
        v
    }

    #[test]
    fn serial_state_vector() {
        let (n, used) = Notification::parse(&DCD_DSR).unwrap();
        assert_eq!(n, Notification::SerialState(SerialState(3)));
        assert_eq!(used, 10);
        for k in 0..DCD_DSR.len() {
            assert!(matches!(
                Notification::parse(&DCD_DSR[..k]),
                Err(NotificationError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn other_codes_and_errors() {
        let net = [0xA1, 0x00, 1, 0, 0, 0, 0, 0];
        assert_eq!(
            Notification::parse(&net).unwrap().0,
            Notification::NetworkConnection(true)
        );
        let mut bad = DCD_DSR;
        bad[0] = 0x21;
        assert_eq!(
            Notification::parse(&bad),
            Err(NotificationError::RequestType(0x21))
        );
        let short = [0xA1, 0x20, 0, 0, 0, 0, 1, 0, 3];
        assert_eq!(
            Notification::parse(&short),
            Err(NotificationError::ShortSerialState(1))
        );
        let long = [0xA1, 0x2A, 0, 0, 0, 0, 0xff, 0xff];
        assert_eq!(
            Notification::parse(&long),
            Err(NotificationError::TooLong(0xffff))
        );
    }

    #[test]
    fn split_across_full_transfers() {
        // Max packet 8: the header fills one transfer, the data comes in the next.
        let mut a = Assembler::new();
        assert!(collect(&mut a, &DCD_DSR[..8], true).is_empty());
        assert_eq!(a.pending(), 8);
        assert_eq!(
            collect(&mut a, &DCD_DSR[8..], false),
            vec![Ok(Notification::SerialState(SerialState(3)))]
        );
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn short_transfer_drops_the_incomplete_rest() {
        let mut a = Assembler::new();
        let mut data = DCD_DSR.to_vec();
        data.extend_from_slice(&DCD_DSR[..4]);
        let got = collect(&mut a, &data, false);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
        assert_eq!(a.pending(), 0);
        // The next notification parses: nothing is misaligned.
        assert_eq!(collect(&mut a, &DCD_DSR, false).len(), 1);
    }

    #[test]
    fn several_in_one_transfer_keep_their_order() {
        let mut a = Assembler::new();
        let mut data = Vec::new();
        for bits in [1u8, 2, 3] {
            let mut n = DCD_DSR;
            n[8] = bits;
            data.extend_from_slice(&n);
        }
        let got: Vec<_> = collect(&mut a, &data, false)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            [1, 2, 3].map(|b| Notification::SerialState(SerialState(b)))
        );
    }

    proptest! {
        #[test]
        fn random_transfers_never_panic_or_grow_unbounded(
            transfers in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..40), any::<bool>()), 0..20)
        ) {
            let mut a = Assembler::new();
            for (data, full) in transfers {
                a.push(&data, full, |_| {});
                prop_assert!(a.pending() < HEADER_LEN + MAX_DATA_LEN);
                if !full {
                    prop_assert_eq!(a.pending(), 0);
                }
            }
        }

        #[test]
        fn any_split_of_a_stream_gives_the_same_notifications(
            states in proptest::collection::vec(any::<u16>(), 1..10),
            mps in 1usize..24,
        ) {
            let mut stream = Vec::new();
            for s in &states {
                let [lo, hi] = s.to_le_bytes();
                stream.extend_from_slice(&[0xA1, 0x20, 0, 0, 0, 0, 2, 0, lo, hi]);
            }
            // One notification per device write, cut into max-packet transfers; a write
            // that is a whole number of packets ends with a zero-length transfer.
            let mut a = Assembler::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(10) {
                for packet in chunk.chunks(mps) {
                    a.push(packet, packet.len() == mps, |n| got.push(n.unwrap()));
                }
                if chunk.len() % mps == 0 {
                    a.push(&[], false, |n| got.push(n.unwrap()));
                }
            }
            let want: Vec<_> = states.iter().map(|&s| Notification::SerialState(SerialState(s))).collect();
            prop_assert_eq!(got, want);
        }
    }
}
