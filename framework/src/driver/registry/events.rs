//! What the binder reports, and the state the binder thread shares with its [`Binder`]
//! handle: the stop flag, the bindings and the event queue.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(doc)]
use super::Binder;
use super::{Binding, DeviceId};
use crate::error::Error;

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

pub(super) type EventHook = Arc<dyn Fn(&RegistryEvent) + Send + Sync + 'static>;
/// The most events kept for [`Binder::next_event`]; older ones are dropped.
const EVENT_BACKLOG: usize = 4096;

pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    pub(super) bindings: Mutex<Vec<Binding>>,
    pub(super) events: Mutex<VecDeque<RegistryEvent>>,
    pub(super) events_changed: Condvar,
    pub(super) hook: Option<EventHook>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn emit(&self, event: RegistryEvent) {
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
