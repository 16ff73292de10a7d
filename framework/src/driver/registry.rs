//! The registry: binds registered drivers to devices as they arrive and
//! unbinds them as they leave.
//!
//! # Binding
//! [`Registry::start`] starts one binder thread per registry. It watches
//! the host's hotplug events (nusb's `watch_devices` on real devices, plug
//! and unplug on the simulator), lists the devices already present, and
//! for each device:
//!
//! 1. skips it unless some row of some driver's table matches one of its
//!    interfaces (so devices nobody drives are never opened); a device
//!    still enumerating (no configuration yet) is looked at again for up
//!    to [`Registry::ready_timeout`];
//! 2. opens it once (all its drivers share that [`Device`]);
//! 3. offers each interface of the active configuration (alternate
//!    setting 0) that is not bound yet, in interface order, to each
//!    registered driver whose table matches, in registration order:
//!    * [`Probe::Bound`]: the instance gets the offered interface and every
//!      interface it claimed during `probe` (a CDC-ACM driver claims its
//!      data interface too); then `start` runs;
//!    * [`Probe::NotMine`]: the next matching driver is asked;
//!    * an error: reported as [`RegistryEvent::ProbeFailed`], and the
//!      interface is offered to no one else. With
//!      [`KernelDriverPolicy::Detach`], an [`Error::Busy`] is reported and
//!      the same driver is asked once more, its
//!      [`ProbeContext::claim_interface`] now detaching the kernel driver.
//!
//! # Removal
//! When the device leaves, the registry marks it gone (every later send
//! fails with `Disconnected`), waits until every request sent on it has
//! been delivered (at most [`Registry::removal_timeout`]; the
//! [`RegistryEvent::Removed`] event says whether it got there), then calls
//! `stop` and `removed` once per instance. Stopping the registry
//! ([`Binder::stop`] or dropping the [`Binder`]) unbinds in reverse order:
//! `stop`, then the instance is dropped.
//!
//! Only requests sent through the registry's [`Device`] (the one in the
//! [`ProbeContext`], and its pipes) are waited for.
//!
//! # Threads
//! Every driver callback runs on the binder thread, one at a time. A
//! callback that blocks delays every other binding; a panic in one ends
//! the binder thread (its instances are then dropped without `stop`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::{DeviceMatch, Driver, Probe, ProbeContext};
use crate::backend::{BackendDeviceInfo, BackendWatch, BusEvent};
use crate::descriptor::{DeviceDescriptor, InterfaceDescriptor};
use crate::error::Error;
use crate::options::Timeout;
use crate::target::{Device, DeviceInfo, Host, InterfaceClaim};

/// What to do with an interface a kernel driver holds.
///
/// KMDF has no equivalent (PnP gives a device to one driver stack); Linux
/// usbfs: `USBDEVFS_DISCONNECT_CLAIM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KernelDriverPolicy {
    /// Leave the kernel driver alone: the probe fails with
    /// [`Error::Busy`] and is reported.
    #[default]
    Fail,
    /// Report the [`Error::Busy`], then probe again with
    /// [`ProbeContext::claim_interface`] detaching the kernel driver.
    Detach,
}

/// Names one connection of a device on its host, as long as it is
/// connected. A device that leaves and comes back gets a new one (unless
/// the OS reuses its bus address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(u64);

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One bound driver instance, for a `list` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The device.
    pub device: DeviceId,
    /// Its bus.
    pub bus_id: String,
    /// Its address on the bus.
    pub address: u8,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// The interfaces the instance drives, ascending.
    pub interfaces: Vec<u8>,
    /// The driver's [`Driver::name`].
    pub driver: &'static str,
}

/// What the binder did, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// A driver bound and started.
    Bound {
        /// The device.
        device: DeviceId,
        /// The driver.
        driver: &'static str,
        /// The interfaces it drives, ascending.
        interfaces: Vec<u8>,
    },
    /// A probe failed; the interface is offered to no other driver.
    ProbeFailed {
        /// The device.
        device: DeviceId,
        /// The driver.
        driver: &'static str,
        /// The interface offered.
        interface: u8,
        /// What `probe` returned.
        error: Arc<Error>,
    },
    /// `start` failed; the instance was stopped and dropped.
    StartFailed {
        /// The device.
        device: DeviceId,
        /// The driver.
        driver: &'static str,
        /// The interfaces it had.
        interfaces: Vec<u8>,
        /// What `start` returned.
        error: Arc<Error>,
    },
    /// A device some driver matches could not be opened.
    OpenFailed {
        /// The device.
        device: DeviceId,
        /// Why.
        error: Arc<Error>,
    },
    /// The device left: `stop` and `removed` ran for this instance.
    Removed {
        /// The device.
        device: DeviceId,
        /// The driver.
        driver: &'static str,
        /// The interfaces it had.
        interfaces: Vec<u8>,
        /// Every request sent on the device had completed before `removed`
        /// ran (false: the removal timeout passed first).
        drained: bool,
    },
    /// The registry stopped: `stop` ran and the instance was dropped.
    Unbound {
        /// The device.
        device: DeviceId,
        /// The driver.
        driver: &'static str,
        /// The interfaces it had.
        interfaces: Vec<u8>,
    },
}

type EventHook = Arc<dyn Fn(&RegistryEvent) + Send + Sync + 'static>;

/// Registered drivers and the binding policy; [`start`](Self::start) it on
/// a [`Host`].
///
/// ```
/// use usbdf::driver::{DeviceMatch, Driver, Probe, ProbeContext, Registry, RegistryEvent};
/// use usbdf::sim::{Loopback, SimHost};
/// use usbdf::{Error, Interface, Timeout};
///
/// struct Echo;
/// impl Driver for Echo {
///     type Instance = Interface;
///     fn name(&self) -> &'static str { "echo" }
///     fn id_table(&self) -> &'static [DeviceMatch] {
///         static IDS: [DeviceMatch; 1] = [DeviceMatch::id(0x0525, 0xa4a9)];
///         &IDS
///     }
///     fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<Interface>, Error> {
///         Ok(Probe::Bound(ctx.claim()?))
///     }
/// }
///
/// let sim = SimHost::new();
/// let mut registry = Registry::new();
/// registry.register(Echo);
/// let binder = registry.start(&sim.host())?;
/// let gadget = sim.plug(Loopback::default());
/// let bound = binder.next_event(Timeout::millis(2000));
/// assert!(matches!(bound, Some(RegistryEvent::Bound { driver: "echo", .. })));
/// assert_eq!(binder.bindings()[0].interfaces, [0]);
/// gadget.unplug();
/// let gone = binder.next_event(Timeout::millis(2000));
/// assert!(matches!(gone, Some(RegistryEvent::Removed { drained: true, .. })));
/// # Ok::<(), Error>(())
/// ```
///
/// KMDF: the PnP manager matching INF hardware IDs and calling
/// `EvtDriverDeviceAdd`; Linux: `usb_register_driver` and the USB core's
/// `usb_probe_interface`.
pub struct Registry {
    drivers: Vec<Arc<dyn AnyDriver>>,
    policy: KernelDriverPolicy,
    removal_timeout: Duration,
    ready_timeout: Duration,
    hook: Option<EventHook>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("drivers", &self.driver_names())
            .field("policy", &self.policy)
            .field("removal_timeout", &self.removal_timeout)
            .finish()
    }
}

impl Registry {
    /// No drivers, [`KernelDriverPolicy::Fail`], a 5 s removal timeout and
    /// a 5 s ready timeout.
    pub fn new() -> Registry {
        Registry {
            drivers: Vec::new(),
            policy: KernelDriverPolicy::Fail,
            removal_timeout: Duration::from_secs(5),
            ready_timeout: Duration::from_secs(5),
            hook: None,
        }
    }

    /// Add a driver; drivers are asked in registration order.
    pub fn register<D: Driver>(&mut self, driver: D) -> &mut Self {
        self.drivers.push(Arc::new(Erased(Arc::new(driver))));
        self
    }

    /// The registered drivers' names, in order.
    pub fn driver_names(&self) -> Vec<&'static str> {
        self.drivers.iter().map(|d| d.name()).collect()
    }

    /// Set the [`KernelDriverPolicy`].
    pub fn kernel_driver_policy(&mut self, policy: KernelDriverPolicy) -> &mut Self {
        self.policy = policy;
        self
    }

    /// How long a removal waits for the device's requests to complete
    /// before `removed` runs anyway.
    pub fn removal_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.removal_timeout = timeout;
        self
    }

    /// How long an arrived device may take to be configured (the hotplug
    /// event can come before the OS has set a configuration).
    pub fn ready_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.ready_timeout = timeout;
        self
    }

    /// Call `hook` with every event, on the binder thread, before it is
    /// queued for [`Binder::next_event`] (e.g. to log it).
    pub fn on_event(&mut self, hook: impl Fn(&RegistryEvent) + Send + Sync + 'static) -> &mut Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Start binding on `host`: a binder thread binds the devices present,
    /// then follows arrivals and removals until the [`Binder`] is stopped
    /// or dropped.
    ///
    /// # Errors
    /// [`Error::Backend`] when the host cannot be watched (nusb on Linux
    /// needs a netlink socket; events arrive only with a udev daemon).
    pub fn start(self, host: &Host) -> Result<Binder, Error> {
        let watch = host.bus.watch().map_err(|e| Error::from_backend(e, None))?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            bindings: Mutex::new(Vec::new()),
            events: Mutex::new(VecDeque::new()),
            events_changed: Condvar::new(),
            hook: self.hook.clone(),
        });
        let state = BinderState {
            host: host.clone(),
            registry: self,
            devices: Vec::new(),
            waiting: Vec::new(),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("usbdf-binder".into())
            .spawn(move || state.run(watch))
            .map_err(|_| Error::InvalidArgument("cannot start the binder thread"))?;
        Ok(Binder {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }
}

/// The most events kept for [`Binder::next_event`]; older ones are dropped.
const EVENT_BACKLOG: usize = 4096;

struct Shared {
    stop: AtomicBool,
    bindings: Mutex<Vec<Binding>>,
    events: Mutex<VecDeque<RegistryEvent>>,
    events_changed: Condvar,
    hook: Option<EventHook>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn emit(&self, event: RegistryEvent) {
        if let Some(h) = &self.hook {
            h(&event);
        }
        let mut q = lock(&self.events);
        if q.len() >= EVENT_BACKLOG {
            q.pop_front();
        }
        q.push_back(event);
        self.events_changed.notify_all();
    }
}

/// A running registry: its binder thread, the bindings and the events.
/// Dropping it stops the registry (see [`stop`](Self::stop)).
#[must_use = "dropping the Binder unbinds every driver"]
pub struct Binder {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Binder {
    /// What is bound now, in binding order.
    pub fn bindings(&self) -> Vec<Binding> {
        lock(&self.shared.bindings).clone()
    }

    /// The next event, waiting at most `timeout` for one.
    pub fn next_event(&self, timeout: Timeout) -> Option<RegistryEvent> {
        self.wait_for(timeout, |_| true)
    }

    /// Take events until one satisfies `pred` and return it; the events
    /// before it are discarded. `None` once `timeout` has passed.
    pub fn wait_for(
        &self,
        timeout: Timeout,
        mut pred: impl FnMut(&RegistryEvent) -> bool,
    ) -> Option<RegistryEvent> {
        let deadline = timeout.deadline_from(Instant::now());
        let mut q = lock(&self.shared.events);
        loop {
            while let Some(e) = q.pop_front() {
                if pred(&e) {
                    return Some(e);
                }
            }
            q = match deadline {
                None => self
                    .shared
                    .events_changed
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.shared
                        .events_changed
                        .wait_timeout(q, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Stop following the bus and unbind every instance, newest first:
    /// `stop`, then drop ([`RegistryEvent::Unbound`] for each). Blocks
    /// until done; calling it again does nothing.
    pub fn stop(&self) {
        let Some(thread) = lock(&self.thread).take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        thread.thread().unpark();
        // A panic of a driver callback ended the thread: nothing to add.
        let _ = thread.join();
    }
}

impl Drop for Binder {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Binder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binder")
            .field("bindings", &self.bindings())
            .finish()
    }
}

thread_local! {
    /// How `ProbeContext::claim_interface` claims during this probe.
    static CLAIM_MODE: Cell<InterfaceClaim> = const { Cell::new(InterfaceClaim::Normal) };
}

/// The claim mode the registry chose for the probe running on this thread.
pub(super) fn claim_mode() -> InterfaceClaim {
    CLAIM_MODE.with(Cell::get)
}

fn with_claim_mode<T>(mode: InterfaceClaim, f: impl FnOnce() -> T) -> T {
    let old = CLAIM_MODE.with(|c| c.replace(mode));
    let r = f();
    CLAIM_MODE.with(|c| c.set(old));
    r
}

/// A registered driver, type-erased.
trait AnyDriver: Send + Sync {
    fn name(&self) -> &'static str;
    fn id_table(&self) -> &'static [DeviceMatch];
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Option<Box<dyn AnyInstance>>, Error>;
}

/// A bound instance with its driver, type-erased.
trait AnyInstance: Send {
    fn start(&mut self) -> Result<(), Error>;
    fn stop(&mut self);
    fn removed(self: Box<Self>);
}

struct Erased<D>(Arc<D>);

struct Instance<D: Driver> {
    driver: Arc<D>,
    instance: D::Instance,
}

impl<D: Driver> AnyDriver for Erased<D> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        self.0.id_table()
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Option<Box<dyn AnyInstance>>, Error> {
        Ok(match self.0.probe(ctx)? {
            Probe::Bound(instance) => Some(Box::new(Instance {
                driver: self.0.clone(),
                instance,
            })),
            Probe::NotMine => None,
        })
    }
}

impl<D: Driver> AnyInstance for Instance<D> {
    fn start(&mut self) -> Result<(), Error> {
        self.driver.start(&mut self.instance)
    }
    fn stop(&mut self) {
        self.driver.stop(&mut self.instance);
    }
    fn removed(self: Box<Self>) {
        let Instance { driver, instance } = *self;
        driver.removed(instance);
    }
}

/// A device the binder has seen.
struct Seen {
    info: BackendDeviceInfo,
    /// Open while instances are bound to it.
    device: Option<Device>,
    instances: Vec<BoundInstance>,
}

struct BoundInstance {
    driver: &'static str,
    interfaces: Vec<u8>,
    instance: Box<dyn AnyInstance>,
}

/// An arrived device that is not configured yet.
struct Waiting {
    key: u64,
    deadline: Instant,
    next_look: Instant,
}

/// How often a device that is still enumerating is looked at again.
const READY_POLL: Duration = Duration::from_millis(20);

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

struct BinderState {
    host: Host,
    registry: Registry,
    devices: Vec<Seen>,
    waiting: Vec<Waiting>,
    shared: Arc<Shared>,
}

impl BinderState {
    fn run(mut self, mut watch: Box<dyn BackendWatch>) {
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        if let Ok(list) = self.host.bus.list() {
            for info in list {
                self.arrived(info);
            }
        }
        let mut watching = true;
        while !self.shared.stop.load(Ordering::SeqCst) {
            self.look_again();
            if watching {
                match watch.poll_next(&mut cx) {
                    Poll::Ready(Some(BusEvent::Arrived(info))) => {
                        self.arrived(info);
                        continue;
                    }
                    Poll::Ready(Some(BusEvent::Left(key))) => {
                        self.left(key);
                        continue;
                    }
                    Poll::Ready(None) => watching = false,
                    Poll::Pending => {}
                }
            }
            match self.waiting.iter().map(|w| w.next_look).min() {
                Some(t) => std::thread::park_timeout(t.saturating_duration_since(Instant::now())),
                None => std::thread::park(),
            }
        }
        self.unbind_all();
    }

    fn could_match(&self, info: &BackendDeviceInfo) -> bool {
        let mut dev = DeviceDescriptor::new(info.vendor_id, info.product_id);
        dev.class = info.class;
        dev.subclass = info.subclass;
        dev.protocol = info.protocol;
        info.interfaces.iter().any(|&(n, c, s, p)| {
            let iface = InterfaceDescriptor::new(n, 0, c, s, p);
            self.registry
                .drivers
                .iter()
                .any(|d| d.id_table().iter().any(|r| r.matches(&dev, &iface)))
        })
    }

    fn arrived(&mut self, info: BackendDeviceInfo) {
        if self.devices.iter().any(|d| d.info.key == info.key)
            || self.waiting.iter().any(|w| w.key == info.key)
        {
            return;
        }
        if info.interfaces.is_empty() {
            let now = Instant::now();
            self.waiting.push(Waiting {
                key: info.key,
                deadline: now + self.registry.ready_timeout,
                next_look: now + READY_POLL,
            });
            return;
        }
        let device = if self.could_match(&info) {
            self.bind(&info)
        } else {
            None
        };
        let instances = match device {
            Some((d, i)) if !i.is_empty() => (Some(d), i),
            _ => (None, Vec::new()),
        };
        self.devices.push(Seen {
            info,
            device: instances.0,
            instances: instances.1,
        });
    }

    /// Look again at arrived devices that were not configured yet.
    fn look_again(&mut self) {
        let now = Instant::now();
        if !self.waiting.iter().any(|w| w.next_look <= now) {
            return;
        }
        let list = self.host.bus.list().unwrap_or_default();
        let mut ready = Vec::new();
        self.waiting.retain_mut(|w| {
            if w.next_look > now {
                return true;
            }
            match list.iter().find(|i| i.key == w.key) {
                None => false,
                Some(i) if !i.interfaces.is_empty() => {
                    ready.push(i.clone());
                    false
                }
                Some(_) if now >= w.deadline => false,
                Some(_) => {
                    w.next_look = now + READY_POLL;
                    true
                }
            }
        });
        for info in ready {
            self.arrived(info);
        }
    }

    fn id(info: &BackendDeviceInfo) -> DeviceId {
        DeviceId(info.key)
    }

    /// Open the device and offer its interfaces.
    fn bind(&mut self, info: &BackendDeviceInfo) -> Option<(Device, Vec<BoundInstance>)> {
        let id = Self::id(info);
        let opened = DeviceInfo {
            info: info.clone(),
            host: self.host.clone(),
        }
        .open()
        .and_then(|d| {
            let config = d.active_configuration()?.clone();
            Ok((d, config))
        });
        let (device, config) = match opened {
            Ok(x) => x,
            Err(error) => {
                self.shared.emit(RegistryEvent::OpenFailed {
                    device: id,
                    error: Arc::new(error),
                });
                return None;
            }
        };
        let mut numbers: Vec<u8> = config.interfaces.iter().map(|i| i.number).collect();
        numbers.sort_unstable();
        let mut taken: Vec<u8> = Vec::new();
        let mut instances = Vec::new();
        for n in numbers {
            if taken.contains(&n) {
                continue;
            }
            let Some(alt0) = config
                .interface(n)
                .and_then(|i| i.alt(0).or_else(|| i.first()))
            else {
                continue;
            };
            if let Some(bound) = self.offer(info, &device, alt0, &mut taken) {
                instances.push(bound);
            }
        }
        Some((device, instances))
    }

    /// Offer one interface to the matching drivers, in registration order.
    fn offer(
        &self,
        info: &BackendDeviceInfo,
        device: &Device,
        iface: &InterfaceDescriptor,
        taken: &mut Vec<u8>,
    ) -> Option<BoundInstance> {
        let n = iface.number;
        let id = Self::id(info);
        for driver in &self.registry.drivers {
            let Some(row) = driver
                .id_table()
                .iter()
                .find(|r| r.matches(device.device_descriptor(), iface))
            else {
                continue;
            };
            let ctx = ProbeContext {
                device,
                interface: iface,
                matched: row,
            };
            let mut mode = InterfaceClaim::Normal;
            loop {
                let before = claimed(device);
                let result = with_claim_mode(mode, || driver.probe(&ctx));
                match result {
                    Ok(Some(instance)) => {
                        let mut interfaces = bits(claimed(device) & !before);
                        if !interfaces.contains(&n) {
                            interfaces.push(n);
                            interfaces.sort_unstable();
                        }
                        taken.extend(interfaces.iter().copied());
                        return self.started(info, driver.name(), interfaces, instance);
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let busy = matches!(error, Error::Busy { .. });
                        self.shared.emit(RegistryEvent::ProbeFailed {
                            device: id,
                            driver: driver.name(),
                            interface: n,
                            error: Arc::new(error),
                        });
                        if busy
                            && mode == InterfaceClaim::Normal
                            && self.registry.policy == KernelDriverPolicy::Detach
                        {
                            mode = InterfaceClaim::DetachKernelDriver;
                            continue;
                        }
                        taken.push(n);
                        return None;
                    }
                }
            }
        }
        None
    }

    fn started(
        &self,
        info: &BackendDeviceInfo,
        driver: &'static str,
        interfaces: Vec<u8>,
        mut instance: Box<dyn AnyInstance>,
    ) -> Option<BoundInstance> {
        let id = Self::id(info);
        if let Err(error) = instance.start() {
            instance.stop();
            drop(instance);
            self.shared.emit(RegistryEvent::StartFailed {
                device: id,
                driver,
                interfaces,
                error: Arc::new(error),
            });
            return None;
        }
        lock(&self.shared.bindings).push(Binding {
            device: id,
            bus_id: info.bus_id.clone(),
            address: info.address,
            vendor_id: info.vendor_id,
            product_id: info.product_id,
            interfaces: interfaces.clone(),
            driver,
        });
        self.shared.emit(RegistryEvent::Bound {
            device: id,
            driver,
            interfaces: interfaces.clone(),
        });
        Some(BoundInstance {
            driver,
            interfaces,
            instance,
        })
    }

    fn left(&mut self, key: u64) {
        self.waiting.retain(|w| w.key != key);
        let Some(pos) = self.devices.iter().position(|d| d.info.key == key) else {
            return;
        };
        let seen = self.devices.remove(pos);
        let id = Self::id(&seen.info);
        let Some(device) = seen.device else {
            return;
        };
        device.core.mark_gone();
        let drained = device.core.wait_idle(self.registry.removal_timeout);
        lock(&self.shared.bindings).retain(|b| b.device != id);
        for mut b in seen.instances {
            b.instance.stop();
            b.instance.removed();
            self.shared.emit(RegistryEvent::Removed {
                device: id,
                driver: b.driver,
                interfaces: b.interfaces,
                drained,
            });
        }
    }

    fn unbind_all(&mut self) {
        while let Some(seen) = self.devices.pop() {
            let id = Self::id(&seen.info);
            for mut b in seen.instances.into_iter().rev() {
                b.instance.stop();
                drop(b.instance);
                lock(&self.shared.bindings).retain(|x| !(x.device == id && x.driver == b.driver));
                self.shared.emit(RegistryEvent::Unbound {
                    device: id,
                    driver: b.driver,
                    interfaces: b.interfaces,
                });
            }
        }
    }
}

/// The claimed-interface set of the registry's device handle.
fn claimed(device: &Device) -> u64 {
    *lock(&device.claimed)
}

fn bits(mask: u64) -> Vec<u8> {
    (0..64u8).filter(|i| mask & (1 << i) != 0).collect()
}
