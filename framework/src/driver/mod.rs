//! Driver plugins: ID tables, probe/start/stop/removed, and the registry
//! that binds drivers to devices as they arrive and leave.
//!
//! A driver crate implements [`Driver`]: a static ID table of
//! [`DeviceMatch`] rows (Linux's `usb_device_id`, KMDF's INF hardware IDs),
//! a fallible `probe` that claims what it needs and returns a typed
//! instance or [`Probe::NotMine`], `start`/`stop` (continuous readers, I/O
//! targets), and `removed` for surprise removal. The registry offers each
//! interface of each arriving device to the drivers whose table matches,
//! one driver per interface; composite devices bind one driver per function.

mod id;
mod registry;

pub use id::DeviceMatch;
pub use registry::{Binder, Binding, DeviceId, KernelDriverPolicy, Registry, RegistryEvent};

use crate::descriptor::InterfaceDescriptor;
use crate::error::Error;
use crate::target::{Device, Interface};

/// What `probe` is offered: a device and one of its interfaces (alternate
/// setting 0) that matched a row of the driver's table.
///
/// KMDF: the `WDFDEVICE_INIT` of `EvtDriverDeviceAdd` plus the interface
/// `EvtDevicePrepareHardware` selects.
#[derive(Debug)]
pub struct ProbeContext<'a> {
    /// The device, opened and configured.
    pub device: &'a Device,
    /// The interface offered (its alternate setting 0).
    pub interface: &'a InterfaceDescriptor,
    /// The table row that matched.
    pub matched: &'a DeviceMatch,
}

impl ProbeContext<'_> {
    /// Claim interface `number` of the device, applying the registry's
    /// [`KernelDriverPolicy`]: on a first probe a kernel driver holding it
    /// makes this fail with [`Error::Busy`] (return it from `probe`); with
    /// [`KernelDriverPolicy::Detach`] the registry then probes again and
    /// this call detaches the kernel driver. Outside a registry (a probe
    /// called directly) it is a plain
    /// [`Device::claim_interface`].
    ///
    /// # Errors
    /// As [`Device::claim_interface`].
    pub fn claim_interface(&self, number: u8) -> Result<Interface, Error> {
        self.device
            .claim_interface_with(number, registry::claim_mode())
    }

    /// How claims made for this probe attempt should treat a kernel driver
    /// (the registry's [`KernelDriverPolicy`] applied to this attempt): for
    /// drivers that claim through their own code paths.
    pub fn claim_mode(&self) -> crate::InterfaceClaim {
        registry::claim_mode()
    }

    /// Claim the interface offered ([`claim_interface`](Self::claim_interface)
    /// of `self.interface.number`).
    ///
    /// # Errors
    /// As [`Device::claim_interface`].
    pub fn claim(&self) -> Result<Interface, Error> {
        self.claim_interface(self.interface.number)
    }
}

/// The outcome of a probe.
#[derive(Debug)]
pub enum Probe<T> {
    /// The driver took the interface (and any others it claimed).
    Bound(T),
    /// Not this driver's device after all: the interface is offered to
    /// the next matching driver. Nothing must stay claimed.
    NotMine,
}

/// A per-device driver.
///
/// # Contract
/// * `probe` runs off any event context and may block (control transfers,
///   claiming interfaces). It claims every interface it drives through
///   `ctx.device`; the registry binds all of them to this instance.
/// * `start` starts continuous readers and I/O targets; `stop` stops them.
///   Both may block briefly.
/// * `removed` runs after surprise removal, once every request the
///   instance had in flight has completed with
///   [`Status::Disconnected`](crate::Status::Disconnected). It consumes
///   the instance.
/// * Dropping the instance (after `stop` on an orderly unbind) must release
///   everything; requests still in flight are cancelled and complete.
///
/// KMDF: `EvtDriverDeviceAdd` / `EvtDevicePrepareHardware` (probe),
/// `EvtDeviceD0Entry` / `D0Exit` (start/stop), `EvtDeviceSurpriseRemoval`
/// (removed).
pub trait Driver: Send + Sync + 'static {
    /// The bound instance: typed pipes, readers, state.
    type Instance: Send + 'static;

    /// A short name for logs and `list` output.
    fn name(&self) -> &'static str;

    /// The ID table.
    fn id_table(&self) -> &'static [DeviceMatch];

    /// Try to bind to the offered interface.
    ///
    /// # Errors
    /// A typed error when the device is this driver's but cannot be
    /// driven (malformed class descriptors, a failed control request);
    /// the registry reports it and offers the interface to no one else.
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<Self::Instance>, Error>;

    /// Start I/O.
    ///
    /// # Errors
    /// A typed error; the registry then stops and drops the instance.
    fn start(&self, instance: &mut Self::Instance) -> Result<(), Error> {
        let _ = instance;
        Ok(())
    }

    /// Stop I/O (orderly unbind or before `removed`).
    fn stop(&self, instance: &mut Self::Instance) {
        let _ = instance;
    }

    /// The device is gone; every request of the instance has completed.
    fn removed(&self, instance: Self::Instance) {
        drop(instance);
    }
}

/// The driver tutorial's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-a-driver.md")]
mod writing_a_driver {}
