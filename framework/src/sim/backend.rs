//! The simulator's side of usbdf's backend seam: device, interface,
//! endpoint and control-transfer objects over one [`Conn`].

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::backend::{
    BackendControl, BackendDevice, BackendEndpoint, BackendError, BackendErrorKind,
    BackendInterface, Buffer, ControlResult, RawCompletion, RawStatus,
};
use crate::control::SetupPacket;
use crate::descriptor::TransferType;
use crate::target::Speed;

use super::conn::{ep_index, Conn, ControlShared, ControlXfer, Xfer};
use super::standard;

fn gone() -> BackendError {
    BackendError::new(
        BackendErrorKind::Disconnected,
        "simulated device disconnected",
    )
}

/// An opened simulated device.
pub(crate) struct SimDevice {
    pub(crate) conn: Arc<Conn>,
}

impl BackendDevice for SimDevice {
    fn device_descriptor(&self) -> Vec<u8> {
        self.conn.device_bytes.clone()
    }

    fn configuration_descriptors(&self) -> Vec<Vec<u8>> {
        self.conn.descriptors.configurations.clone()
    }

    fn active_configuration(&self) -> Result<u8, BackendError> {
        let st = self.conn.lock();
        if !st.alive {
            return Err(gone());
        }
        Ok(st.config)
    }

    fn set_configuration(&self, value: u8) -> Result<(), BackendError> {
        let mut st = self.conn.lock();
        standard::set_configuration(&self.conn, &mut st, value)
    }

    fn claim_interface(
        &self,
        number: u8,
        detach: bool,
    ) -> Result<Box<dyn BackendInterface>, BackendError> {
        let mut st = self.conn.lock();
        if !st.alive {
            return Err(gone());
        }
        let exists = self
            .conn
            .config(st.config)
            .is_some_and(|c| c.interface(number).is_some());
        if !exists || number >= 32 {
            return Err(BackendError::new(
                BackendErrorKind::NotFound,
                "no such interface in the active configuration",
            ));
        }
        let bit = 1u32 << number;
        if st.kernel_held & bit != 0 {
            if !detach {
                return Err(BackendError::new(
                    BackendErrorKind::Busy,
                    "a kernel driver is bound to the interface",
                ));
            }
            st.kernel_held &= !bit;
        }
        if st.claimed & bit != 0 {
            return Err(BackendError::new(
                BackendErrorKind::Busy,
                "interface already claimed",
            ));
        }
        st.claimed |= bit;
        Ok(Box::new(SimInterface {
            conn: self.conn.clone(),
            number,
        }))
    }

    fn submit_control(
        &self,
        setup: SetupPacket,
        data: &[u8],
        timeout: Duration,
    ) -> Box<dyn BackendControl> {
        let mut st = self.conn.lock();
        if !st.alive {
            return Box::new(SimControl {
                shared: ControlShared::new(Some(Err(RawStatus::Disconnected))),
                conn: None,
            });
        }
        let shared = ControlShared::new(None);
        st.controls.push_back(ControlXfer {
            setup,
            data: data.to_vec(),
            deadline: Instant::now().checked_add(timeout),
            shared: shared.clone(),
        });
        drop(st);
        self.conn.signal.notify();
        Box::new(SimControl {
            shared,
            conn: Some(self.conn.clone()),
        })
    }

    fn speed(&self) -> Option<Speed> {
        Some(self.conn.speed)
    }

    fn reset(&self) -> Result<(), BackendError> {
        if !self.conn.lock().alive {
            return Err(gone());
        }
        match self.conn.slot.upgrade() {
            Some(slot) => {
                slot.unplug_conn(self.conn.id);
                slot.replug_quietly();
                Ok(())
            }
            None => Err(gone()),
        }
    }
}

/// A control transfer in flight.
struct SimControl {
    shared: Arc<ControlShared>,
    conn: Option<Arc<Conn>>,
}

impl BackendControl for SimControl {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ControlResult> {
        let mut g = self.shared.lock();
        if let Some(r) = g.result.take() {
            return Poll::Ready(r);
        }
        store_waker(&mut g.waker, cx.waker());
        Poll::Pending
    }
}

impl Drop for SimControl {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let pending = g.result.is_none();
        g.dropped = true;
        drop(g);
        if pending {
            if let Some(c) = &self.conn {
                c.signal.notify();
            }
        }
    }
}

fn store_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

/// A claimed interface.
struct SimInterface {
    conn: Arc<Conn>,
    number: u8,
}

impl Drop for SimInterface {
    fn drop(&mut self) {
        self.conn.lock().claimed &= !(1u32 << self.number);
    }
}

impl BackendInterface for SimInterface {
    fn set_alt_setting(&self, alt: u8) -> Result<(), BackendError> {
        let mut st = self.conn.lock();
        standard::set_interface(&self.conn, &mut st, self.number, alt)
    }

    fn alt_setting(&self) -> u8 {
        self.conn.lock().alts[usize::from(self.number)]
    }

    fn open_endpoint(
        &self,
        address: u8,
        transfer_type: TransferType,
    ) -> Result<Box<dyn BackendEndpoint>, BackendError> {
        let mut st = self.conn.lock();
        if !st.alive {
            return Err(gone());
        }
        let Some((iface, ty, mps)) = self.conn.find_endpoint(&st, address) else {
            return Err(BackendError::new(
                BackendErrorKind::NotFound,
                "no such endpoint in the current alternate setting",
            ));
        };
        if iface != self.number || ty != transfer_type {
            return Err(BackendError::new(
                BackendErrorKind::NotFound,
                "endpoint belongs to another interface or has another type",
            ));
        }
        let index = ep_index(address);
        let ep = &mut st.eps[index];
        if ep.open {
            return Err(BackendError::new(
                BackendErrorKind::Busy,
                "endpoint already open",
            ));
        }
        ep.open = true;
        ep.address = address;
        ep.mps = mps;
        ep.head = 0;
        ep.xfers.clear();
        ep.waker = None;
        Ok(Box::new(SimEndpoint {
            conn: self.conn.clone(),
            index,
            address,
            mps,
            pending: 0,
        }))
    }
}

/// An opened endpoint: its queue lives in the connection state.
struct SimEndpoint {
    conn: Arc<Conn>,
    index: usize,
    address: u8,
    mps: usize,
    /// Submitted and not yet returned by `poll_next_complete`.
    pending: usize,
}

impl Drop for SimEndpoint {
    fn drop(&mut self) {
        let mut st = self.conn.lock();
        let ep = &mut st.eps[self.index];
        ep.open = false;
        ep.xfers.clear();
        ep.head = 0;
        ep.waker = None;
        st.work &= !(1 << self.index);
    }
}

impl BackendEndpoint for SimEndpoint {
    fn address(&self) -> u8 {
        self.address
    }

    fn max_packet_size(&self) -> usize {
        self.mps
    }

    fn allocate(&self, len: usize) -> Buffer {
        Buffer::new(len)
    }

    fn submit(&mut self, mut buf: Buffer) {
        self.pending += 1;
        let is_in = self.address & 0x80 != 0;
        let mut st = self.conn.lock();
        let mut status = None;
        if !st.alive {
            status = Some(Err(RawStatus::Disconnected));
        } else if is_in {
            let n = buf.requested_len();
            if n == 0 || n % self.mps.max(1) != 0 {
                status = Some(Err(RawStatus::InvalidArgument));
            }
            buf.clear();
        }
        let immediate = status.is_some();
        let ep = &mut st.eps[self.index];
        ep.xfers.push_back(Xfer {
            buf,
            moved: 0,
            status,
            ready_at: None,
        });
        // An immediate error at the front of the queue is returnable now:
        // wake synchronously (the engine tolerates a wake from `submit`).
        let wake_now = immediate && ep.xfers.iter().all(|x| x.status.is_some());
        let waker = if wake_now { ep.waker.take() } else { None };
        if !immediate {
            st.work |= 1 << self.index;
        }
        drop(st);
        if let Some(w) = waker {
            w.wake();
        } else if !immediate {
            self.conn.signal.notify();
        }
    }

    fn pending(&self) -> usize {
        self.pending
    }

    fn cancel_all(&mut self) {
        let mut st = self.conn.lock();
        let ep = &mut st.eps[self.index];
        let mut any = false;
        for x in ep.xfers.iter_mut() {
            if x.status.is_none() {
                x.status = Some(Err(RawStatus::Cancelled));
                x.ready_at = None;
                any = true;
            }
        }
        ep.head = ep.xfers.len();
        if any {
            st.wake |= 1 << self.index;
            st.work &= !(1 << self.index);
        }
        let alive = st.alive;
        drop(st);
        if any && alive {
            // The controller thread delivers the wake-up, as nusb's event
            // thread does after DISCARDURB.
            self.conn.signal.notify();
        }
    }

    fn poll_next_complete(&mut self, cx: &mut Context<'_>) -> Poll<RawCompletion> {
        let mut st = self.conn.lock();
        let ep = &mut st.eps[self.index];
        if let Some(front) = ep.xfers.front() {
            if let Some(status) = front.status {
                let ready = front.ready_at.is_none_or(|t| t <= Instant::now());
                if ready {
                    if let Some(x) = ep.xfers.pop_front() {
                        ep.head = ep.head.saturating_sub(1);
                        drop(st);
                        self.pending = self.pending.saturating_sub(1);
                        let actual_len = if self.address & 0x80 != 0 {
                            x.buf.len()
                        } else {
                            x.moved
                        };
                        return Poll::Ready(RawCompletion {
                            buffer: x.buf,
                            actual_len,
                            status,
                        });
                    }
                } else {
                    // Held by the delayed-completion fault: make sure the
                    // controller arms a timer for it.
                    store_waker(&mut ep.waker, cx.waker());
                    drop(st);
                    self.conn.signal.notify();
                    return Poll::Pending;
                }
            }
        }
        store_waker(&mut ep.waker, cx.waker());
        Poll::Pending
    }

    fn clear_halt(&mut self) -> Result<(), BackendError> {
        let mut st = self.conn.lock();
        standard::clear_halt(&self.conn, &mut st, self.address)?;
        drop(st);
        self.conn.signal.notify();
        Ok(())
    }
}
