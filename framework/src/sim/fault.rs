//! [`FaultInjector`]: wraps any model and makes it misbehave on request.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::control::SetupPacket;
use crate::target::Speed;

use super::conn::{ep_index, EPS};
use super::model::{ControlReply, DeviceModel, InReply, ModelDescriptors, Notifier, OutReply};
use super::rng::SplitMix64;

/// Packet-level faults for any [`DeviceModel`], in the style of smoltcp's
/// `FaultInjector<D>`: the wrapped model runs unchanged until a fault is
/// armed through the [`Faults`] handle, and random faults are drawn from a
/// seeded generator, so a failing test replays exactly.
///
/// ```
/// use usbdf::sim::{FaultInjector, Loopback, SimHost};
///
/// let model = FaultInjector::new(Loopback::default(), 1);
/// let faults = model.faults();
/// let sim = SimHost::new();
/// let _device = sim.plug(model);
/// faults.stall_after_packets(0x81, 3); // the 4th IN packet stalls
/// faults.nak_forever(0x01, true); // OUT never accepts data: writes time out
/// ```
///
/// Bus-level faults (unplug mid-transfer, delayed completions, `Fault`
/// on unplug) are on the [`SimDeviceHandle`](super::SimDeviceHandle).
#[derive(Debug)]
pub struct FaultInjector<M> {
    inner: M,
    faults: Faults,
}

/// Arms faults on a [`FaultInjector`]. Cheap to clone; effective at once
/// (the controller is notified).
#[derive(Debug, Clone)]
pub struct Faults {
    shared: Arc<Mutex<Plan>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct EpPlan {
    /// Stall once this many more packets went through.
    stall_after: Option<u64>,
    nak_forever: bool,
    nak_probability: f64,
    /// The next IN packet carries at most this many bytes.
    short_next: Option<usize>,
    babble_next: bool,
}

#[derive(Debug)]
struct Plan {
    eps: [EpPlan; EPS],
    rng: SplitMix64,
    control_nak: bool,
    control_stalls: u32,
    notifier: Option<Notifier>,
    injected: u64,
}

impl<M: DeviceModel> FaultInjector<M> {
    /// Wrap `inner`; `seed` drives the random faults.
    pub fn new(inner: M, seed: u64) -> Self {
        FaultInjector {
            inner,
            faults: Faults {
                shared: Arc::new(Mutex::new(Plan {
                    eps: [EpPlan::default(); EPS],
                    rng: SplitMix64::new(seed),
                    control_nak: false,
                    control_stalls: 0,
                    notifier: None,
                    injected: 0,
                })),
            },
        }
    }

    /// The handle that arms faults. Take it before plugging the model in.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn edit(&self, ep: u8, f: impl FnOnce(&mut EpPlan)) {
        let mut p = self.lock();
        f(&mut p.eps[ep_index(ep)]);
        if let Some(n) = &p.notifier {
            n.notify();
        }
    }

    /// Stall endpoint `ep` at its next packet.
    pub fn stall(&self, ep: u8) {
        self.stall_after_packets(ep, 0);
    }

    /// Let `packets` more packets through on `ep`, then stall it (the host
    /// sees `Status::Stall` until it resets the pipe).
    pub fn stall_after_packets(&self, ep: u8, packets: u64) {
        self.edit(ep, |e| e.stall_after = Some(packets));
    }

    /// NAK every packet on `ep` (`true`) until turned off: transfers never
    /// finish, so they time out or are cancelled.
    pub fn nak_forever(&self, ep: u8, on: bool) {
        self.edit(ep, |e| e.nak_forever = on);
    }

    /// NAK each packet on `ep` with this probability (seeded): data still
    /// flows, later and in different bursts.
    pub fn random_naks(&self, ep: u8, probability: f64) {
        self.edit(ep, |e| e.nak_probability = probability);
    }

    /// Cut the next IN packet on `ep` to at most `len` bytes: with `len`
    /// below the max packet size the host transfer ends early, short.
    pub fn short_packet(&self, ep: u8, len: usize) {
        self.edit(ep, |e| e.short_next = Some(len));
    }

    /// Make the next IN packet on `ep` babble (longer than the host asked
    /// for): the transfer ends with `Status::Overflow`.
    pub fn babble(&self, ep: u8) {
        self.edit(ep, |e| e.babble_next = true);
    }

    /// NAK every control request the model would answer (class, vendor,
    /// and standard ones it handles) while on: they time out.
    pub fn nak_control(&self, on: bool) {
        let mut p = self.lock();
        p.control_nak = on;
        if let Some(n) = &p.notifier {
            n.notify();
        }
    }

    /// Stall the next `count` control requests the model would answer.
    pub fn stall_control(&self, count: u32) {
        self.lock().control_stalls = count;
    }

    /// Disarm every fault.
    pub fn clear(&self) {
        let mut p = self.lock();
        p.eps = [EpPlan::default(); EPS];
        p.control_nak = false;
        p.control_stalls = 0;
        if let Some(n) = &p.notifier {
            n.notify();
        }
    }

    /// How many faults fired so far (NAKs from `nak_forever` and random
    /// NAKs not counted).
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }
}

/// What the plan says about the next packet on an endpoint.
enum Verdict {
    Pass,
    Nak,
    Stall,
}

impl Plan {
    fn before_packet(&mut self, ep: u8) -> Verdict {
        let Plan {
            eps, rng, injected, ..
        } = self;
        let e = &mut eps[ep_index(ep)];
        if e.nak_forever || (e.nak_probability > 0.0 && rng.chance(e.nak_probability)) {
            return Verdict::Nak;
        }
        if e.stall_after == Some(0) {
            e.stall_after = None;
            *injected += 1;
            return Verdict::Stall;
        }
        Verdict::Pass
    }

    fn after_packet(&mut self, ep: u8) {
        if let Some(k) = self.eps[ep_index(ep)].stall_after.as_mut() {
            *k = k.saturating_sub(1);
        }
    }
}

impl<M: DeviceModel> DeviceModel for FaultInjector<M> {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        self.inner.descriptors(speed)
    }

    fn attach(&mut self, notifier: Notifier) {
        self.faults.lock().notifier = Some(notifier.clone());
        self.inner.attach(notifier);
    }

    fn detach(&mut self) {
        self.faults.lock().notifier = None;
        self.inner.detach();
    }

    fn set_configuration(&mut self, value: u8) {
        self.inner.set_configuration(value);
    }

    fn set_interface(&mut self, interface: u8, alt_setting: u8) {
        self.inner.set_interface(interface, alt_setting);
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        {
            let mut p = self.faults.lock();
            if p.control_nak {
                return ControlReply::Nak;
            }
            if p.control_stalls > 0 {
                p.control_stalls -= 1;
                p.injected += 1;
                return ControlReply::Stall;
            }
        }
        self.inner.control(setup, data)
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        match self.faults.lock().before_packet(endpoint) {
            Verdict::Nak => return OutReply::Nak,
            Verdict::Stall => return OutReply::Stall,
            Verdict::Pass => {}
        }
        let r = self.inner.out_packet(endpoint, data);
        if r == OutReply::Ack {
            self.faults.lock().after_packet(endpoint);
        }
        r
    }

    fn in_packet(&mut self, endpoint: u8, buf: &mut [u8]) -> InReply {
        let (short, babble) = {
            let mut p = self.faults.lock();
            match p.before_packet(endpoint) {
                Verdict::Nak => return InReply::Nak,
                Verdict::Stall => return InReply::Stall,
                Verdict::Pass => {}
            }
            let e = &mut p.eps[ep_index(endpoint)];
            (e.short_next, e.babble_next)
        };
        let r = self.inner.in_packet(endpoint, buf);
        let InReply::Data(n) = r else {
            return r;
        };
        let mut p = self.faults.lock();
        p.after_packet(endpoint);
        let e = &mut p.eps[ep_index(endpoint)];
        if babble {
            e.babble_next = false;
            p.injected += 1;
            return InReply::Babble;
        }
        if let Some(len) = short {
            e.short_next = None;
            p.injected += 1;
            return InReply::Data(n.min(len));
        }
        r
    }

    fn clear_halt(&mut self, endpoint: u8) {
        self.inner.clear_halt(endpoint);
    }
}
