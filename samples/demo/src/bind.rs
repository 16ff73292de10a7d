//! The registry with the four sample drivers, and the bound instances handed to the
//! program.
//!
//! The registry owns every bound instance: it calls `start`, `stop` and `removed` on it.
//! The program needs them too (to echo through a Loopback, to set a port's line coding),
//! so each driver is registered wrapped in [`Handing`]: when the registry has started an
//! instance, the wrapper sends the program a [`Handle`] to it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use usbdf::descriptor::{DeviceDescriptor, InterfaceDescriptor};
use usbdf::driver::{
    Binder, Binding, DeviceMatch, Driver, Probe, ProbeContext, Registry, RegistryEvent,
};
use usbdf::{DeviceInfo, Host, Timeout};
use usbdf_cdc_acm::{CdcAcm, CdcAcmDriver};
use usbdf_hid::{HidDevice, HidDriver};
use usbdf_loopback::{Loopback, LoopbackDriver, SourceSink, SourceSinkDriver};

use crate::error::{Result, StepExt};

/// How long [`bind`] waits for the devices present to be bound.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound instance, shared by the registry (which starts, stops and removes it) and the
/// program (which uses it). Cheap to clone.
#[derive(Debug)]
pub struct Handle<T>(Arc<RwLock<T>>);

impl<T> Handle<T> {
    /// The instance. The registry waits for this guard before it stops the instance, so
    /// hold it for one operation at a time.
    pub fn get(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle(self.0.clone())
    }
}

/// A driver whose started instances are also sent to the program as [`Handle`]s.
///
/// `probe`, `start`, `stop` and `removed` are the wrapped driver's. On a surprise removal
/// `removed` gets the instance only when the program has dropped its handles; otherwise
/// the program's handle keeps it (every operation on it then fails with `Disconnected`).
pub struct Handing<D: Driver> {
    inner: D,
    to_program: Sender<Handle<D::Instance>>,
}

impl<D: Driver> Handing<D> {
    /// Wrap `inner`; its started instances come out of the returned receiver.
    pub fn new(inner: D) -> (Handing<D>, Receiver<Handle<D::Instance>>) {
        let (to_program, rx) = channel();
        (Handing { inner, to_program }, rx)
    }
}

impl<D: Driver> Driver for Handing<D>
where
    D::Instance: Sync,
{
    type Instance = Handle<D::Instance>;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn id_table(&self) -> &'static [DeviceMatch] {
        self.inner.id_table()
    }

    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<Self::Instance>, usbdf::Error> {
        Ok(match self.inner.probe(ctx)? {
            Probe::Bound(instance) => Probe::Bound(Handle(Arc::new(RwLock::new(instance)))),
            Probe::NotMine => Probe::NotMine,
        })
    }

    fn start(&self, handle: &mut Self::Instance) -> Result<(), usbdf::Error> {
        {
            let mut instance = handle.0.write().unwrap_or_else(|e| e.into_inner());
            self.inner.start(&mut instance)?;
        }
        // The program may have gone (its receiver dropped): nothing to tell then.
        let _ = self.to_program.send(handle.clone());
        Ok(())
    }

    fn stop(&self, handle: &mut Self::Instance) {
        let mut instance = handle.0.write().unwrap_or_else(|e| e.into_inner());
        self.inner.stop(&mut instance);
    }

    fn removed(&self, handle: Self::Instance) {
        if let Ok(lock) = Arc::try_unwrap(handle.0) {
            self.inner
                .removed(lock.into_inner().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

/// Product ID of the stand-alone CDC-ACM sample gadget (vendor 0x0525).
const SAMPLE_ACM_PID: u16 = 0xa4a7;
/// Product ID of the stand-alone HID sample gadget (vendor 0x0525).
const SAMPLE_HID_PID: u16 = 0xa4ac;

/// The registry running on a host, and what it bound.
///
/// Dropping it drops the handles, then stops the registry (every instance is stopped and
/// released).
#[derive(Debug)]
pub struct Bound {
    /// Started Loopback functions.
    pub loopbacks: Vec<Handle<Loopback>>,
    /// Started SourceSink functions.
    pub sourcesinks: Vec<Handle<SourceSink>>,
    /// Started CDC-ACM ports.
    pub ports: Vec<Handle<CdcAcm>>,
    /// Started HID interfaces.
    pub hids: Vec<Handle<HidDevice>>,
    /// Probes, starts and opens that failed (`ProbeFailed`, `StartFailed`, `OpenFailed`).
    pub problems: Vec<RegistryEvent>,
    /// Interfaces some driver matches that were neither bound nor failed when the wait
    /// ended (0 unless a device misbehaved or was still enumerating).
    pub unsettled: usize,
    // Last: dropped after the handles above.
    binder: Binder,
}

impl Bound {
    /// What is bound now, in binding order (`Binder::bindings`).
    pub fn bindings(&self) -> Vec<Binding> {
        self.binder.bindings()
    }

    /// The running registry.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }
}

/// Start a registry with the Loopback, SourceSink, CDC-ACM and HID drivers on `host` and
/// wait (at most [`BIND_TIMEOUT`]) until every interface of the devices present that a
/// driver matches is bound or has failed, from the registry's events.
///
/// Kernel drivers are left alone: an interface the kernel holds (a keyboard's, to
/// `usbhid`) fails its probe with `Busy` and is listed in [`Bound::problems`].
///
/// # Errors
/// The host cannot list or watch its devices.
pub fn bind(host: &Host) -> Result<Bound> {
    let devices = host.devices().step("list the USB devices")?;
    let (loopback, loopbacks) = Handing::new(LoopbackDriver);
    let (sourcesink, sourcesinks) = Handing::new(SourceSinkDriver::default());
    let (acm, ports) = Handing::new(CdcAcmDriver::new());
    let (hid, hids) = Handing::new(HidDriver::new());
    let mut registry = Registry::new();
    registry
        .register(loopback)
        .register(sourcesink)
        .register(acm)
        .register(hid);
    let tables = [
        LoopbackDriver.id_table(),
        SourceSinkDriver::default().id_table(),
        CdcAcmDriver::new().id_table(),
        HidDriver::new().id_table(),
    ];
    let expected: usize = devices.iter().map(|d| matched(d, &tables).len()).sum();
    let binder = registry.start(host).step(format!(
        "start the driver registry on the {} host",
        host.name()
    ))?;

    let deadline = Instant::now() + BIND_TIMEOUT;
    let mut settled = 0;
    let mut problems = Vec::new();
    while settled < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match binder.next_event(Timeout::After(left)) {
            None => break,
            Some(RegistryEvent::Bound {
                device, interfaces, ..
            }) => {
                // Count the interfaces a table matches (not a CDC data interface the
                // probe claimed along with its communication interface).
                let info = binder
                    .bindings()
                    .into_iter()
                    .find(|b| b.device == device)
                    .and_then(|b| {
                        devices
                            .iter()
                            .find(|d| d.bus_id() == b.bus_id && d.address() == b.address)
                    });
                settled += match info {
                    Some(d) => {
                        let m = matched(d, &tables);
                        interfaces.iter().filter(|n| m.contains(n)).count().max(1)
                    }
                    None => 1,
                };
            }
            Some(
                e @ (RegistryEvent::ProbeFailed { .. }
                | RegistryEvent::StartFailed { .. }
                | RegistryEvent::OpenFailed { .. }),
            ) => {
                settled += 1;
                problems.push(e);
            }
            Some(_) => {}
        }
    }
    // The tour uses the first port and HID interface: prefer the stand-alone
    // sample functions over the same classes inside a composite device.
    let mut ports: Vec<Handle<CdcAcm>> = ports.try_iter().collect();
    ports.sort_by_key(|p| p.get().device().device_descriptor().product_id != SAMPLE_ACM_PID);
    let mut hids: Vec<Handle<HidDevice>> = hids.try_iter().collect();
    hids.sort_by_key(|h| h.get().device().device_descriptor().product_id != SAMPLE_HID_PID);
    Ok(Bound {
        loopbacks: loopbacks.try_iter().collect(),
        sourcesinks: sourcesinks.try_iter().collect(),
        ports,
        hids,
        problems,
        unsettled: expected.saturating_sub(settled),
        binder,
    })
}

/// The interfaces of `device` that a row of one of `tables` matches (what the registry
/// offers to a driver).
pub fn matched(device: &DeviceInfo, tables: &[&[DeviceMatch]]) -> Vec<u8> {
    let mut dev = DeviceDescriptor::new(device.vendor_id(), device.product_id());
    (dev.class, dev.subclass, dev.protocol) = device.class();
    device
        .interfaces()
        .iter()
        .filter(|&&(n, c, s, p)| {
            let iface = InterfaceDescriptor::new(n, 0, c, s, p);
            tables
                .iter()
                .any(|t| t.iter().any(|row| row.matches(&dev, &iface)))
        })
        .map(|&(n, ..)| n)
        .collect()
}
