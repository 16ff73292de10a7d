//! Registered drivers and their bound instances, type-erased, and the claim mode a probe
//! runs under.

use std::cell::Cell;
use std::sync::Arc;

use super::super::{DeviceMatch, Driver, Probe, ProbeContext};
use crate::error::Error;
use crate::target::InterfaceClaim;

thread_local! {
    /// How `ProbeContext::claim_interface` claims during this probe.
    static CLAIM_MODE: Cell<InterfaceClaim> = const { Cell::new(InterfaceClaim::Normal) };
}

/// The claim mode the registry chose for the probe running on this thread.
pub(in crate::driver) fn claim_mode() -> InterfaceClaim {
    CLAIM_MODE.with(Cell::get)
}

pub(super) fn with_claim_mode<T>(mode: InterfaceClaim, f: impl FnOnce() -> T) -> T {
    let old = CLAIM_MODE.with(|c| c.replace(mode));
    let r = f();
    CLAIM_MODE.with(|c| c.set(old));
    r
}

/// A registered driver, type-erased.
pub(super) trait AnyDriver: Send + Sync {
    fn name(&self) -> &'static str;
    fn id_table(&self) -> &'static [DeviceMatch];
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Option<Box<dyn AnyInstance>>, Error>;
}

/// A bound instance with its driver, type-erased.
pub(super) trait AnyInstance: Send {
    fn start(&mut self) -> Result<(), Error>;
    fn stop(&mut self);
    fn removed(self: Box<Self>);
}

pub(super) struct Erased<D>(pub(super) Arc<D>);

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
