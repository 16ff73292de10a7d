//! One connection of a simulated device: from plug (or replug) to unplug.
//!
//! Every backend object opened on a connection (device, interfaces,
//! endpoints, control transfers) holds the connection, so after an unplug
//! they keep seeing *their* dead connection, never a later replug.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::backend::{Buffer, ControlResult, RawStatus};
use crate::control::SetupPacket;
use crate::descriptor::{ConfigurationDescriptor, TransferType};
use crate::target::Speed;

use super::host::DeviceSlot;
use super::model::{DeviceModel, ModelDescriptors};
use super::rng::SplitMix64;

/// Endpoint slots: 16 OUT then 16 IN.
pub(crate) const EPS: usize = 32;

/// The slot of endpoint `address`: number for OUT, number + 16 for IN.
pub(crate) fn ep_index(address: u8) -> usize {
    usize::from(address & 0x0f) + if address & 0x80 != 0 { 16 } else { 0 }
}

/// Wakes the connection's controller thread. Setting `pending` before
/// unparking (and the thread clearing it before it looks for work) means
/// no request is lost.
pub(crate) struct Signal {
    pending: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            pending: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    pub(crate) fn set_thread(&self, t: Thread) {
        let _ = self.thread.set(t);
    }

    pub(crate) fn notify(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// Clear the flag; true if it was set.
    pub(crate) fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

/// One bulk/interrupt transfer in an endpoint queue.
pub(crate) struct Xfer {
    pub buf: Buffer,
    /// OUT: bytes accepted so far. (IN counts in `buf.len()`.)
    pub moved: usize,
    /// Set once finished.
    pub status: Option<Result<(), RawStatus>>,
    /// Finished, but held back until then (delayed-completion fault).
    pub ready_at: Option<Instant>,
}

/// The queue of one opened endpoint.
pub(crate) struct EpQueue {
    pub open: bool,
    pub address: u8,
    pub mps: usize,
    pub xfers: VecDeque<Xfer>,
    /// Index of the first unfinished transfer (all before it are finished).
    pub head: usize,
    pub waker: Option<Waker>,
    pub halted: bool,
    /// Data toggle: false = DATA0.
    pub toggle: bool,
}

impl EpQueue {
    fn new() -> Self {
        EpQueue {
            open: false,
            address: 0,
            mps: 0,
            xfers: VecDeque::new(),
            head: 0,
            waker: None,
            halted: false,
            toggle: false,
        }
    }

    pub(crate) fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// Advance `head` past finished transfers; the first unfinished one.
    pub(crate) fn first_unfinished(&mut self) -> Option<usize> {
        while let Some(x) = self.xfers.get(self.head) {
            if x.status.is_none() {
                return Some(self.head);
            }
            self.head += 1;
        }
        None
    }
}

/// Shared state of one control transfer between its `BackendControl` and
/// the controller thread.
pub(crate) struct ControlShared {
    pub inner: Mutex<ControlInner>,
}

pub(crate) struct ControlInner {
    pub result: Option<ControlResult>,
    pub waker: Option<Waker>,
    /// The host side dropped (cancelled) it.
    pub dropped: bool,
}

impl ControlShared {
    pub(crate) fn new(result: Option<ControlResult>) -> Arc<Self> {
        Arc::new(ControlShared {
            inner: Mutex::new(ControlInner {
                result,
                waker: None,
                dropped: false,
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ControlInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Store the result; the waker to call (outside any lock).
    pub(crate) fn complete(&self, r: ControlResult) -> Option<Waker> {
        let mut g = self.lock();
        if g.dropped || g.result.is_some() {
            return None;
        }
        g.result = Some(r);
        g.waker.take()
    }
}

/// A control transfer waiting for the controller.
pub(crate) struct ControlXfer {
    pub setup: SetupPacket,
    pub data: Vec<u8>,
    pub deadline: Option<Instant>,
    pub shared: Arc<ControlShared>,
}

/// Fault and pacing settings that can change while connected.
#[derive(Debug, Clone)]
pub(crate) struct Pacing {
    /// Packets per millisecond, or as fast as possible.
    pub packets_per_ms: Option<u32>,
    /// Hold every finished transfer this long before the host sees it.
    pub completion_delay: Option<Duration>,
    /// Unplug after this many more packets.
    pub disconnect_after: Option<u64>,
    /// Probability that an unplug fails a pending transfer with `Fault`.
    pub fault_on_unplug: f64,
}

/// The mutable part of a connection.
pub(crate) struct ConnState {
    pub alive: bool,
    pub model: Option<Box<dyn DeviceModel>>,
    pub config: u8,
    /// Alternate setting per interface number.
    pub alts: [u8; 32],
    /// Claimed interfaces (bit per number).
    pub claimed: u32,
    /// Interfaces a simulated kernel driver holds (bit per number).
    pub kernel_held: u32,
    pub eps: [EpQueue; EPS],
    /// Endpoints with unfinished transfers (bit per slot).
    pub work: u32,
    /// Endpoints whose waker the controller should call (bit per slot).
    pub wake: u32,
    pub controls: VecDeque<ControlXfer>,
    pub pacing: Pacing,
    pub rng: SplitMix64,
    /// Packet budget of the throughput limit.
    pub tokens: u64,
    pub refilled: Instant,
    /// The controller should unplug the device (disconnect-after fault).
    pub unplug_requested: bool,
    /// Packets moved on the connection, all endpoints.
    pub packets: u64,
}

/// One connection of a simulated device.
pub(crate) struct Conn {
    pub id: u64,
    pub address: u8,
    pub speed: Speed,
    pub descriptors: ModelDescriptors,
    pub device_bytes: Vec<u8>,
    pub configs: Vec<ConfigurationDescriptor>,
    pub state: Mutex<ConnState>,
    pub signal: Signal,
    /// Endpoints the device side halted (bit per slot), merged by the
    /// controller.
    pub device_halts: AtomicU32,
    pub slot: Weak<DeviceSlot>,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        address: u8,
        speed: Speed,
        descriptors: ModelDescriptors,
        configs: Vec<ConfigurationDescriptor>,
        model: Box<dyn DeviceModel>,
        pacing: Pacing,
        rng: SplitMix64,
        slot: Weak<DeviceSlot>,
    ) -> Arc<Conn> {
        let device_bytes = descriptors.device.to_bytes().to_vec();
        Arc::new(Conn {
            id,
            address,
            speed,
            descriptors,
            device_bytes,
            configs,
            state: Mutex::new(ConnState {
                alive: true,
                model: Some(model),
                config: 0,
                alts: [0; 32],
                claimed: 0,
                kernel_held: 0,
                eps: std::array::from_fn(|_| EpQueue::new()),
                work: 0,
                wake: 0,
                controls: VecDeque::new(),
                pacing,
                rng,
                tokens: 0,
                refilled: Instant::now(),
                unplug_requested: false,
                packets: 0,
            }),
            signal: Signal::new(),
            device_halts: AtomicU32::new(0),
            slot,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The active configuration's descriptor.
    pub(crate) fn config(&self, value: u8) -> Option<&ConfigurationDescriptor> {
        self.configs.iter().find(|c| c.value == value)
    }

    /// The endpoint `address` in the current alternate setting of the
    /// interface that owns it: (interface, type, max packet size).
    pub(crate) fn find_endpoint(
        &self,
        st: &ConnState,
        address: u8,
    ) -> Option<(u8, TransferType, usize)> {
        let config = self.config(st.config)?;
        config.interfaces.iter().find_map(|i| {
            let alt = st.alts.get(usize::from(i.number)).copied().unwrap_or(0);
            let setting = i.alt(alt)?;
            let ep = setting.endpoint(address)?;
            Some((
                i.number,
                ep.transfer_type(),
                usize::from(ep.max_packet_size),
            ))
        })
    }

    /// Unplug: fail everything pending (`Disconnected`, or `Fault` with the
    /// configured probability), hand back the model and the wakers to call.
    pub(crate) fn disconnect(&self, wakers: &mut Vec<Waker>) -> Option<Box<dyn DeviceModel>> {
        let mut st = self.lock();
        if !st.alive {
            return None;
        }
        st.alive = false;
        let p = st.pacing.fault_on_unplug;
        let ConnState {
            eps, rng, controls, ..
        } = &mut *st;
        for ep in eps.iter_mut() {
            let mut any = false;
            for x in ep.xfers.iter_mut() {
                x.ready_at = None;
                if x.status.is_none() {
                    let s = if rng.chance(p) {
                        RawStatus::Fault
                    } else {
                        RawStatus::Disconnected
                    };
                    x.status = Some(Err(s));
                }
                any = true;
            }
            ep.head = ep.xfers.len();
            if any {
                if let Some(w) = ep.waker.take() {
                    wakers.push(w);
                }
            }
        }
        for c in controls.drain(..) {
            if let Some(w) = c.shared.complete(Err(RawStatus::Disconnected)) {
                wakers.push(w);
            }
        }
        st.work = 0;
        st.wake = 0;
        let model = st.model.take();
        drop(st);
        self.signal.notify();
        model
    }
}
