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

mod binder;
mod erased;
mod events;
mod thread;

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use binder::Binder;
pub(super) use erased::claim_mode;
use erased::{AnyDriver, Erased};
pub use events::RegistryEvent;
use events::{EventHook, Shared};
use thread::BinderState;

use super::Driver;
#[cfg(doc)]
use super::{Probe, ProbeContext};
use crate::error::Error;
#[cfg(doc)]
use crate::target::Device;
use crate::target::Host;

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
        let state = BinderState::new(host.clone(), self, shared.clone());
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
