//! The binder thread: follows the bus, probes, starts, stops and removes instances.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::super::ProbeContext;
use super::erased::{with_claim_mode, AnyInstance};
use super::events::{lock, Shared};
use super::{Binding, DeviceId, KernelDriverPolicy, Registry, RegistryEvent};
use crate::backend::{BackendDeviceInfo, BackendWatch, BusEvent};
use crate::descriptor::{DeviceDescriptor, InterfaceDescriptor};
use crate::error::Error;
use crate::target::{Device, DeviceInfo, Host, InterfaceClaim};

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

pub(super) struct BinderState {
    host: Host,
    registry: Registry,
    devices: Vec<Seen>,
    waiting: Vec<Waiting>,
    shared: Arc<Shared>,
}

impl BinderState {
    /// The binder thread's state for `registry` on `host`, before it has seen any device.
    pub(super) fn new(host: Host, registry: Registry, shared: Arc<Shared>) -> BinderState {
        BinderState {
            host,
            registry,
            devices: Vec::new(),
            waiting: Vec::new(),
            shared,
        }
    }

    pub(super) fn run(mut self, mut watch: Box<dyn BackendWatch>) {
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
