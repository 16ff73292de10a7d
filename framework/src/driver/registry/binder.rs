//! [`Binder`]: the handle of a running registry.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::events::{lock, Shared};
use super::{Binding, RegistryEvent};
use crate::options::Timeout;

/// A running registry: its binder thread, the bindings and the events.
/// Dropping it stops the registry (see [`stop`](Self::stop)).
#[must_use = "dropping the Binder unbinds every driver"]
pub struct Binder {
    pub(super) shared: Arc<Shared>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
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
