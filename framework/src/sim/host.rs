//! [`SimHost`]: the simulated bus, plugging models in and out, and
//! [`SimDeviceHandle`]: the test's grip on one plugged device.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::backend::{
    BackendBus, BackendDevice, BackendDeviceInfo, BackendError, BackendErrorKind, BackendWatch,
    BusEvent,
};
use crate::descriptor::ConfigurationDescriptor;
use crate::target::{Host, Speed};

use super::backend::SimDevice;
use super::conn::{ep_index, Conn, Pacing};
use super::controller;
use super::model::{DeviceModel, Notifier};
use super::rng::SplitMix64;

/// How a simulated device is connected and paced.
///
/// ```
/// use usbdf::sim::{SimHost, SimOptions};
/// use usbdf::Speed;
///
/// let sim = SimHost::with_options(SimOptions::new().speed(Speed::Full).packets_per_ms(Some(8)));
/// # drop(sim);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Connection speed; it picks the models' max packet sizes (bulk: 64
    /// full speed, 512 high speed, 1024 SuperSpeed). Default: high speed.
    pub speed: Speed,
    /// Throughput limit in packets per millisecond (all endpoints of the
    /// device together); `None` moves packets as fast as the CPU allows.
    /// A low limit makes "cancel while the transfer is mid-flight"
    /// deterministic enough for tests.
    pub packets_per_ms: Option<u32>,
    /// Probability that an unplug fails a pending transfer with `Fault`
    /// instead of `Disconnected` (Linux said `Fault` in 8 of 20 measured
    /// unplugs). Default 0.
    pub fault_on_unplug: f64,
    /// Seed of the device's fault decisions.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            speed: Speed::High,
            packets_per_ms: None,
            fault_on_unplug: 0.0,
            seed: 0x5EED,
        }
    }
}

impl SimOptions {
    /// The defaults: high speed, unthrottled, unplug says `Disconnected`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`speed`](Self::speed).
    pub fn speed(mut self, speed: Speed) -> Self {
        self.speed = speed;
        self
    }

    /// Set [`packets_per_ms`](Self::packets_per_ms).
    pub fn packets_per_ms(mut self, limit: Option<u32>) -> Self {
        self.packets_per_ms = limit;
        self
    }

    /// Set [`fault_on_unplug`](Self::fault_on_unplug).
    pub fn fault_on_unplug(mut self, probability: f64) -> Self {
        self.fault_on_unplug = probability;
        self
    }

    /// Set [`seed`](Self::seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// An in-process simulated USB host controller with its own bus.
///
/// Plug [`DeviceModel`]s in, then use [`host`](Self::host) like
/// [`Host::system`]: the same usbdf API drives simulated devices. Cheap to
/// clone; devices stay plugged while any clone, any [`Host`] from it, or
/// any [`SimDeviceHandle`] lives.
#[derive(Clone)]
pub struct SimHost {
    shared: Arc<HostShared>,
}

pub(crate) struct HostShared {
    bus_id: String,
    options: SimOptions,
    devices: Mutex<Vec<Arc<DeviceSlot>>>,
    next_id: AtomicU64,
    /// Hotplug watches of this bus (`BackendBus::watch`).
    watchers: Mutex<Vec<Weak<WatchQueue>>>,
}

impl HostShared {
    /// Tell every live watch about an arrival or departure.
    fn announce(&self, event: BusEvent) {
        let mut wakers = Vec::new();
        lock(&self.watchers).retain(|w| match w.upgrade() {
            Some(q) => {
                let mut g = lock(&q.inner);
                g.events.push_back(event.clone());
                wakers.extend(g.waker.take());
                true
            }
            None => false,
        });
        for w in wakers {
            w.wake();
        }
    }
}

/// The event queue of one simulated hotplug watch.
struct WatchQueue {
    inner: Mutex<WatchInner>,
}

struct WatchInner {
    events: VecDeque<BusEvent>,
    waker: Option<Waker>,
}

struct SimWatch(Arc<WatchQueue>);

impl BackendWatch for SimWatch {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<BusEvent>> {
        let mut g = lock(&self.0.inner);
        match g.events.pop_front() {
            Some(e) => Poll::Ready(Some(e)),
            None => {
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// What `list` and the watch's arrivals say about a connection.
fn info_of(bus_id: &str, c: &Conn) -> BackendDeviceInfo {
    let config = c.lock().config;
    let d = &c.descriptors;
    let string =
        |i: Option<std::num::NonZeroU8>| i.and_then(|i| d.string(i.get())).map(str::to_owned);
    BackendDeviceInfo {
        bus_id: bus_id.to_owned(),
        address: c.address,
        vendor_id: d.device.vendor_id,
        product_id: d.device.product_id,
        serial: string(d.device.serial_number_string_index),
        manufacturer: string(d.device.manufacturer_string_index),
        product: string(d.device.product_string_index),
        class: d.device.class,
        subclass: d.device.subclass,
        protocol: d.device.protocol,
        interfaces: c
            .config(config)
            .map(|cfg| {
                cfg.interfaces
                    .iter()
                    .filter_map(|i| i.first())
                    .map(|s| (s.number, s.class, s.subclass, s.protocol))
                    .collect()
            })
            .unwrap_or_default(),
        key: c.id,
    }
}

static NEXT_BUS: AtomicU64 = AtomicU64::new(1);

impl Default for SimHost {
    fn default() -> Self {
        Self::new()
    }
}

impl SimHost {
    /// A host with no devices and default [`SimOptions`].
    pub fn new() -> SimHost {
        Self::with_options(SimOptions::default())
    }

    /// A host whose devices are plugged with `options` by default.
    pub fn with_options(options: SimOptions) -> SimHost {
        SimHost {
            shared: Arc::new(HostShared {
                bus_id: format!("sim{}", NEXT_BUS.fetch_add(1, Ordering::Relaxed)),
                options,
                devices: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                watchers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Plug `model` in with the host's options. The device is enumerated
    /// and configured (its first configuration), as an OS would.
    ///
    /// # Panics
    /// If the model's configuration descriptors do not parse, or the
    /// controller thread cannot be started.
    pub fn plug<M: DeviceModel>(&self, model: M) -> SimDeviceHandle {
        self.plug_with(model, self.shared.options.clone())
    }

    /// Plug `model` in with its own options.
    ///
    /// # Panics
    /// As [`plug`](Self::plug).
    pub fn plug_with<M: DeviceModel>(&self, model: M, options: SimOptions) -> SimDeviceHandle {
        let pacing = Pacing {
            packets_per_ms: options.packets_per_ms,
            completion_delay: None,
            disconnect_after: None,
            fault_on_unplug: options.fault_on_unplug,
        };
        let slot = Arc::new(DeviceSlot {
            host: Arc::downgrade(&self.shared),
            inner: Mutex::new(SlotInner {
                model: Some(Box::new(model)),
                conn: None,
                options,
                pacing,
                plugs: 0,
                kernel_drivers: 0,
            }),
        });
        // Listed before it is plugged, so a watcher that sees the arrival
        // can open it.
        lock(&self.shared.devices).push(slot.clone());
        slot.plug();
        SimDeviceHandle { slot }
    }

    /// The usbdf [`Host`] for this simulated bus (named `"simulator"`).
    pub fn host(&self) -> Host {
        Host::from_bus(
            Arc::new(SimBus {
                shared: self.shared.clone(),
            }),
            "simulator",
        )
    }

    /// The bus id devices on this host report (`"sim1"`, `"sim2"`, …).
    pub fn bus_id(&self) -> &str {
        &self.shared.bus_id
    }
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost")
            .field("bus", &self.shared.bus_id)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One plugged model across its plug/unplug cycles.
pub(crate) struct DeviceSlot {
    host: Weak<HostShared>,
    inner: Mutex<SlotInner>,
}

struct SlotInner {
    /// The model while unplugged.
    model: Option<Box<dyn DeviceModel>>,
    conn: Option<Arc<Conn>>,
    options: SimOptions,
    pacing: Pacing,
    plugs: u64,
    /// Interfaces a (simulated) kernel driver binds on every plug.
    kernel_drivers: u32,
}

impl DeviceSlot {
    /// Plug the model in (a no-op when plugged). False if already plugged.
    fn plug(self: &Arc<Self>) -> bool {
        let mut inner = lock(&self.inner);
        if inner.conn.is_some() {
            return false;
        }
        let Some(host) = self.host.upgrade() else {
            return false;
        };
        let Some(mut model) = inner.model.take() else {
            return false;
        };
        let speed = inner.options.speed;
        let descriptors = model.descriptors(speed);
        // The simulator routes transfers by what it can make of the
        // configurations; the host is still served the raw bytes, so a model
        // may describe itself wrongly on purpose (malformed-descriptor tests).
        let configs: Vec<ConfigurationDescriptor> = descriptors
            .configurations
            .iter()
            .filter_map(|raw| ConfigurationDescriptor::parse_lenient(raw).ok())
            .collect();
        let id = host.next_id.fetch_add(1, Ordering::Relaxed);
        let address = (id % 127) as u8 + 1;
        inner.plugs += 1;
        let rng = SplitMix64::new(inner.options.seed ^ inner.plugs.wrapping_mul(0x9E37_79B9));
        let first_config = configs.first().map(|c| c.value);
        let conn_slot = Arc::downgrade(self);
        // Attach before the connection holds the model: the notifier needs
        // the connection, so build it around a placeholder first.
        let conn = Conn::new(
            id,
            address,
            speed,
            descriptors,
            configs,
            Box::new(Unplugged),
            inner.pacing.clone(),
            rng,
            conn_slot,
        );
        model.attach(Notifier {
            conn: Arc::downgrade(&conn),
            speed,
        });
        {
            let mut st = conn.lock();
            st.model = Some(model);
            st.kernel_held = inner.kernel_drivers;
            if let Some(v) = first_config {
                let _ = super::standard::set_configuration(&conn, &mut st, v);
            }
        }
        controller::spawn(&conn).expect("start the simulated controller thread");
        inner.conn = Some(conn.clone());
        drop(inner);
        host.announce(BusEvent::Arrived(info_of(&host.bus_id, &conn)));
        true
    }

    /// Unplug connection `id` if it is the current one.
    pub(crate) fn unplug_conn(&self, id: u64) -> bool {
        let mut wakers: Vec<Waker> = Vec::new();
        let mut inner = lock(&self.inner);
        match &inner.conn {
            Some(c) if c.id == id => {}
            _ => return false,
        }
        let Some(conn) = inner.conn.take() else {
            return false;
        };
        if let Some(mut model) = conn.disconnect(&mut wakers) {
            model.detach();
            inner.model = Some(model);
        }
        drop(inner);
        for w in wakers {
            w.wake();
        }
        if let Some(host) = self.host.upgrade() {
            host.announce(BusEvent::Left(id));
        }
        true
    }

    fn unplug(&self) -> bool {
        let id = lock(&self.inner).conn.as_ref().map(|c| c.id);
        id.is_some_and(|id| self.unplug_conn(id))
    }

    /// Plug again after a port reset.
    pub(crate) fn replug_quietly(self: &Arc<Self>) {
        self.plug();
    }

    fn conn(&self) -> Option<Arc<Conn>> {
        lock(&self.inner).conn.clone()
    }

    fn update_pacing(&self, f: impl Fn(&mut Pacing)) {
        let mut inner = lock(&self.inner);
        f(&mut inner.pacing);
        if let Some(c) = &inner.conn {
            f(&mut c.lock().pacing);
            c.signal.notify();
        }
    }
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        let mut wakers = Vec::new();
        let conn = lock(&self.inner).conn.take();
        if let Some(c) = conn {
            drop(c.disconnect(&mut wakers));
        }
        for w in wakers {
            w.wake();
        }
    }
}

/// Stands in for the model while a connection is being set up.
struct Unplugged;

impl DeviceModel for Unplugged {
    fn descriptors(&self, _speed: Speed) -> super::model::ModelDescriptors {
        super::model::ModelDescriptors::new(
            crate::descriptor::DeviceDescriptor::new(0, 0),
            Vec::new(),
        )
    }
}

/// A plugged simulated device, from the test's side: unplug and replug it,
/// pace it, and inject bus-level faults.
///
/// Packet-level faults (stalls, NAKs, short packets, babble) come from
/// wrapping the model in a [`FaultInjector`](super::FaultInjector).
/// Cloning shares the device.
#[derive(Clone)]
pub struct SimDeviceHandle {
    slot: Arc<DeviceSlot>,
}

impl SimDeviceHandle {
    /// Surprise removal: every pending transfer completes `Disconnected`
    /// (or `Fault`, see [`SimOptions::fault_on_unplug`]), and every later
    /// call on the opened device fails with `Disconnected`. False if it
    /// was not plugged.
    pub fn unplug(&self) -> bool {
        self.slot.unplug()
    }

    /// Plug the same model in again: a new connection with a new address,
    /// found by a new [`Host::open`]. False if it was plugged already.
    pub fn replug(&self) -> bool {
        self.slot.plug()
    }

    /// Model a kernel driver bound to `interface` (`attached`), or none:
    /// claiming it then fails with [`Error::Busy`](crate::Error::Busy)
    /// unless the claim detaches it
    /// ([`InterfaceClaim::DetachKernelDriver`](crate::InterfaceClaim)).
    /// The driver binds again on every replug, as Linux's would; interfaces
    /// from 32 up are ignored.
    pub fn set_kernel_driver(&self, interface: u8, attached: bool) {
        let Some(bit) = 1u32.checked_shl(u32::from(interface)) else {
            return;
        };
        let mut inner = lock(&self.slot.inner);
        if attached {
            inner.kernel_drivers |= bit;
        } else {
            inner.kernel_drivers &= !bit;
        }
        if let Some(c) = &inner.conn {
            let mut st = c.lock();
            if attached {
                st.kernel_held |= bit;
            } else {
                st.kernel_held &= !bit;
            }
        }
    }

    /// Whether a (simulated) kernel driver holds `interface` now.
    pub fn kernel_driver_attached(&self, interface: u8) -> bool {
        let bit = 1u32.checked_shl(u32::from(interface)).unwrap_or(0);
        self.slot
            .conn()
            .is_some_and(|c| c.lock().kernel_held & bit != 0)
    }

    /// Whether the device is plugged in.
    pub fn is_plugged(&self) -> bool {
        self.slot.conn().is_some()
    }

    /// The device's bus address while plugged.
    pub fn address(&self) -> Option<u8> {
        self.slot.conn().map(|c| c.address)
    }

    /// Change the throughput limit (see [`SimOptions::packets_per_ms`]).
    pub fn set_packets_per_ms(&self, limit: Option<u32>) {
        self.slot.update_pacing(|p| p.packets_per_ms = limit);
    }

    /// Hold every transfer that finishes from now on for `delay` before the
    /// host sees its completion (`None`: deliver at once).
    pub fn set_completion_delay(&self, delay: Option<Duration>) {
        self.slot.update_pacing(|p| p.completion_delay = delay);
    }

    /// Unplug the device after `packets` more data packets (any endpoint):
    /// a disconnect in the middle of a transfer. `0` cancels the plan.
    pub fn disconnect_after_packets(&self, packets: u64) {
        let k = (packets > 0).then_some(packets);
        self.slot.update_pacing(|p| p.disconnect_after = k);
    }

    /// Set the probability that an unplug fails pending transfers with
    /// `Fault` rather than `Disconnected` (see [`SimOptions::fault_on_unplug`]).
    pub fn set_fault_on_unplug(&self, probability: f64) {
        self.slot.update_pacing(|p| p.fault_on_unplug = probability);
    }

    /// Halt endpoint `address` now, from the device side.
    pub fn halt(&self, address: u8) {
        if let Some(c) = self.slot.conn() {
            Notifier {
                conn: Arc::downgrade(&c),
                speed: c.speed,
            }
            .set_halt(address);
        }
    }

    /// Whether endpoint `address` is halted (as `GET_STATUS` would say).
    pub fn is_halted(&self, address: u8) -> bool {
        self.slot.conn().is_some_and(|c| {
            let halts = c.device_halts.load(Ordering::Acquire);
            let i = ep_index(address);
            halts & (1 << i) != 0 || c.lock().eps[i].halted
        })
    }

    /// The data toggle the device expects next on endpoint `address`
    /// (`false`: DATA0). A clear-halt resets it to DATA0.
    pub fn data_toggle(&self, address: u8) -> bool {
        self.slot
            .conn()
            .is_some_and(|c| c.lock().eps[ep_index(address)].toggle)
    }

    /// Data packets moved on the current connection, all endpoints.
    pub fn packets_moved(&self) -> u64 {
        self.slot.conn().map_or(0, |c| c.lock().packets)
    }

    /// The active configuration value (0: unconfigured).
    pub fn configuration(&self) -> Option<u8> {
        self.slot.conn().map(|c| c.lock().config)
    }
}

impl std::fmt::Debug for SimDeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDeviceHandle")
            .field("address", &self.address())
            .finish()
    }
}

/// The simulated bus behind [`SimHost::host`].
struct SimBus {
    shared: Arc<HostShared>,
}

impl BackendBus for SimBus {
    fn list(&self) -> Result<Vec<BackendDeviceInfo>, BackendError> {
        let slots = lock(&self.shared.devices).clone();
        Ok(slots
            .iter()
            .filter_map(|s| s.conn())
            .map(|c| info_of(&self.shared.bus_id, &c))
            .collect())
    }

    fn watch(&self) -> Result<Box<dyn BackendWatch>, BackendError> {
        let q = Arc::new(WatchQueue {
            inner: Mutex::new(WatchInner {
                events: VecDeque::new(),
                waker: None,
            }),
        });
        lock(&self.shared.watchers).push(Arc::downgrade(&q));
        Ok(Box::new(SimWatch(q)))
    }

    fn open(&self, info: &BackendDeviceInfo) -> Result<Box<dyn BackendDevice>, BackendError> {
        let slots = lock(&self.shared.devices).clone();
        slots
            .iter()
            .filter_map(|s| s.conn())
            .find(|c| c.id == info.key && c.lock().alive)
            .map(|conn| Box::new(SimDevice { conn }) as Box<dyn BackendDevice>)
            .ok_or(BackendError::new(
                BackendErrorKind::Disconnected,
                "simulated device is no longer plugged in",
            ))
    }
}
