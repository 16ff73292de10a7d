//! The per-pipe engine: in-flight bookkeeping, per-request cancel on top of
//! `cancel_all`, timeouts, exactly-once completion and dispatch.
//!
//! See `docs/design/cancellation.md` for the design in prose. In short:
//! every request sent on a pipe gets a slot (a `slab` entry); every
//! transfer handed to the backend is a segment in a FIFO that mirrors the
//! backend's own queue. Cancelling a request that sits in the backend calls
//! `cancel_all`, reaps every segment in order, completes the victim with
//! the bytes it moved, and resubmits the *remainder* of every other request
//! before anything sent later, so the data stream on the pipe is intact.

mod cancel;
pub(crate) mod notify;
mod reap;
mod send;
pub(crate) mod sent;
pub(crate) mod service;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use slab::Slab;

use crate::backend::{BackendDevice, BackendEndpoint, Buffer};
use crate::descriptor::{Direction, TransferType};
use crate::options::PipePolicy;
use crate::request::{Completion, Request};
use crate::status::Status;

pub(crate) use send::SendTo;
pub use sent::{CancelHandle, CancelOutcome, CompletionRoutine, Sent};

/// The device-wide state the pipes share.
pub(crate) struct DeviceCore {
    pub(crate) backend: Box<dyn BackendDevice>,
    gone: AtomicBool,
    /// Requests accepted on any pipe of the device (and control requests)
    /// whose completion has not been delivered yet.
    in_flight: AtomicUsize,
    /// Threads in `wait_idle`; completions only take `idle_lock` when > 0.
    idle_waiters: AtomicUsize,
    idle_lock: Mutex<()>,
    idle: Condvar,
}

impl DeviceCore {
    pub(crate) fn new(backend: Box<dyn BackendDevice>) -> Arc<DeviceCore> {
        Arc::new(DeviceCore {
            backend,
            gone: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_waiters: AtomicUsize::new(0),
            idle_lock: Mutex::new(()),
            idle: Condvar::new(),
        })
    }

    /// A request was accepted (counted until its completion is delivered).
    pub(crate) fn request_sent(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A request's completion was delivered.
    pub(crate) fn request_delivered(&self) {
        let before = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        // SeqCst on both sides: either the waiter sees the count at zero,
        // or we see the waiter and notify under its lock.
        if before == 1 && self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.idle_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.idle.notify_all();
        }
    }

    /// Wait until every request of the device has been delivered, for at
    /// most `timeout`. True when idle.
    pub(crate) fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.idle_waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.idle_lock.lock().unwrap_or_else(|e| e.into_inner());
        let idle = loop {
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                break true;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => std::time::Duration::from_secs(3600),
            };
            if left.is_zero() {
                break false;
            }
            g = self
                .idle
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(g);
        self.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    pub(crate) fn mark_gone(&self) {
        self.gone.store(true, Ordering::Release);
    }
}

/// Fixed facts about a pipe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PipeInfo {
    pub address: u8,
    pub max_packet_size: usize,
    pub transfer_type: TransferType,
    pub direction: Direction,
}

/// The I/O target state of a pipe.
///
/// KMDF: `WDF_IO_TARGET_STATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// Sends are accepted.
    Started,
    /// Sends fail with [`SendErrorKind::TargetStopped`](crate::SendErrorKind::TargetStopped)
    /// unless sent with `ignore_target_state`.
    Stopped,
    /// The device is gone; every send fails with `Disconnected`.
    Gone,
}

/// What [`Pipe::stop`](crate::Pipe::stop) does with requests already sent.
///
/// KMDF: `WDF_IO_TARGET_SENT_IO_ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopAction {
    /// Cancel them and wait for their completions.
    CancelSentIo,
    /// Let them finish and wait for their completions.
    WaitForSentIo,
    /// Leave them pending and return at once.
    LeaveSentIo,
}

/// The pipe's queue phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Segments go straight to the backend.
    Running,
    /// `cancel_all` was issued: reap everything, then resubmit.
    Draining,
}

/// Where a slot's request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Accepted, not yet handed to the backend.
    Held,
    /// At least one segment in the backend.
    Backend,
    /// Waiting for its remainder to be resubmitted at the end of a drain.
    Resubmit,
    /// Finished; the completion waits in `done` for its future or thread.
    Finished,
}

/// Who receives a slot's completion.
enum Waiter {
    Routine(CompletionRoutine),
    Future(Option<Waker>),
    Thread(Option<Thread>),
    /// The future was dropped: the completion is dropped too (a pooled
    /// request goes home).
    Detached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegKind {
    Data,
    Remainder,
    Zlp,
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    key: usize,
    kind: SegKind,
    /// Bytes this segment asked for (IN) or carried (OUT).
    len: usize,
}

struct Slot {
    gen: u32,
    request: Request,
    /// The request's own buffer while a remainder segment is out.
    parked: Option<Buffer>,
    /// Bytes the driver asked for (IN) or wrote (OUT).
    len: usize,
    /// IN: what the backend is asked for (rounded up when the size check
    /// is off).
    submit_len: usize,
    /// Bytes moved so far, over all segments.
    done: usize,
    /// Segments of this slot in the backend.
    segs: u8,
    place: Place,
    data_complete: bool,
    zlp_needed: bool,
    zlp_complete: bool,
    short: bool,
    cancel: Option<Status>,
    error: Option<Status>,
    /// Times the OS cancelled this request's transfers on its own.
    os_cancels: u8,
    waiter: Waiter,
    deadline: Option<Instant>,
    /// When it was sent, for the completion's trace event (taken only when
    /// that event is enabled: no clock read per request otherwise).
    sent_at: Option<Instant>,
    /// Status and byte count once finished; the completion is built from
    /// this and `request` when it is handed out.
    outcome: Option<(Status, usize)>,
    /// In `ready`, waiting for the dispatcher.
    queued: bool,
}

/// The lock-protected part of a pipe.
pub(crate) struct PipeInner {
    ep: Box<dyn BackendEndpoint>,
    policy: PipePolicy,
    target: TargetState,
    phase: Phase,
    /// The status that halted the pipe, until `reset`.
    halted: Option<Status>,
    slots: Slab<Slot>,
    /// Requests sent whose completion has not been delivered yet (routine
    /// returned, or stored for its future/thread).
    active: usize,
    /// Set when the last pipe handle is dropped with requests still in
    /// flight: the engine keeps itself alive until they are delivered.
    keepalive: Option<Arc<PipeShared>>,
    fifo: VecDeque<Seg>,
    held: VecDeque<usize>,
    resubmit: VecDeque<usize>,
    ready: VecDeque<usize>,
    dispatching: bool,
    /// A `Fault` is being classified (unplug or bus error?): dispatch waits.
    classifying: bool,
    next_gen: u32,
    spare: Vec<Buffer>,
    /// Threads waiting for the pipe to have nothing in flight.
    idle_waiters: Vec<Thread>,
    /// The earliest deadline the service thread has been told about.
    armed: Option<Instant>,
}

/// One pipe's engine, shared by the pipe handle, sent futures, cancel
/// handles and the backend's waker.
pub(crate) struct PipeShared {
    pub(crate) info: PipeInfo,
    pub(crate) device: Arc<DeviceCore>,
    inner: Mutex<PipeInner>,
    notify: notify::Notify,
    waker: Waker,
}

/// The waker given to the backend: a weak reference, so the backend's
/// copy does not keep the pipe alive.
struct PipeWaker(Weak<PipeShared>);

impl Wake for PipeWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(pipe) = self.0.upgrade() {
            if pipe.notify.wake() {
                pipe.pump();
            }
        }
    }
}

/// The engine lock. Releasing it answers any wake-up that arrived while
/// it was held.
pub(crate) struct Guard<'a> {
    pipe: &'a Arc<PipeShared>,
    inner: Option<MutexGuard<'a, PipeInner>>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = PipeInner;
    fn deref(&self) -> &PipeInner {
        self.inner.as_ref().expect("guard is live")
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut PipeInner {
        self.inner.as_mut().expect("guard is live")
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Completions finished under this lock (a reap after a send, a
        // cancel of a held request, a timeout) are delivered on release
        // unless a dispatcher is already at work.
        let undelivered = self
            .inner
            .as_ref()
            .is_some_and(|g| !g.ready.is_empty() && !g.dispatching && !g.classifying);
        drop(self.inner.take());
        self.pipe.notify.exit();
        if self.pipe.notify.take() || undelivered {
            self.pipe.pump();
        }
    }
}

impl PipeShared {
    pub(crate) fn new(
        info: PipeInfo,
        device: Arc<DeviceCore>,
        ep: Box<dyn BackendEndpoint>,
        policy: PipePolicy,
    ) -> Arc<PipeShared> {
        let cap = policy.max_in_flight.max(1);
        Arc::new_cyclic(|weak| PipeShared {
            info,
            device,
            inner: Mutex::new(PipeInner {
                ep,
                policy,
                target: TargetState::Started,
                phase: Phase::Running,
                halted: None,
                slots: Slab::with_capacity(cap),
                active: 0,
                keepalive: None,
                fifo: VecDeque::with_capacity(cap * 2),
                held: VecDeque::with_capacity(cap),
                resubmit: VecDeque::with_capacity(cap),
                ready: VecDeque::with_capacity(cap),
                dispatching: false,
                classifying: false,
                next_gen: 1,
                spare: Vec::new(),
                idle_waiters: Vec::new(),
                armed: None,
            }),
            notify: notify::Notify::new(),
            waker: Waker::from(Arc::new(PipeWaker(weak.clone()))),
        })
    }

    /// Take the engine lock.
    pub(crate) fn lock<'a>(self: &'a Arc<Self>) -> Guard<'a> {
        self.notify.enter();
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Guard {
            pipe: self,
            inner: Some(g),
        }
    }

    /// Reap what the backend has finished and deliver completions, on the
    /// calling thread. Safe to call from anywhere that does not hold the
    /// engine lock; a nested call (from inside a completion routine) only
    /// reaps, leaving delivery to the outer one so order is kept.
    pub(crate) fn pump(self: &Arc<Self>) {
        // Wake-ups for futures and waiting threads are given after the lock
        // is released, not in the middle of the loop: a woken waiter takes
        // the engine lock at once to collect its completion, and would
        // otherwise block on it (another context switch) while this loop
        // re-locks to reap.
        let mut wakes: heapless::Vec<Wakeup, 8> = heapless::Vec::new();
        loop {
            self.notify.take();
            let mut g = self.lock_raw();
            self.reap_all(&mut g);
            if g.dispatching {
                drop(g);
                self.notify.exit();
                if self.notify.take() {
                    continue;
                }
                return;
            }
            g.dispatching = true;
            while !g.classifying {
                let Some(key) = g.ready.pop_front() else {
                    break;
                };
                let delivery = match self.deliver(&mut g, key) {
                    Delivery::Wake(w) => Wakeup::Waker(w),
                    Delivery::Unpark(t) => Wakeup::Thread(t),
                    Delivery::None => continue,
                    other => {
                        // Run the routine (or drop the completion) outside
                        // the lock, giving the pending wake-ups first.
                        drop(g);
                        self.notify.exit();
                        wake_all(&mut wakes);
                        self.run(other);
                        g = self.lock_raw();
                        g.active = g.active.saturating_sub(1);
                        self.device.request_delivered();
                        // Always reap here: sends made during the routine
                        // skipped their own poll and rely on this one.
                        self.reap_all(&mut g);
                        continue;
                    }
                };
                if let Err(w) = wakes.push(delivery) {
                    drop(g);
                    self.notify.exit();
                    wake_all(&mut wakes);
                    w.wake();
                    g = self.lock_raw();
                    self.reap_all(&mut g);
                }
            }
            g.dispatching = false;
            if g.active == 0 {
                if let Some(t) = g.idle_waiters.pop() {
                    t.unpark();
                    for t in g.idle_waiters.drain(..) {
                        t.unpark();
                    }
                }
                // The last pipe handle is gone and everything was delivered.
                g.keepalive = None;
            }
            drop(g);
            self.notify.exit();
            wake_all(&mut wakes);
            if !self.notify.take() {
                return;
            }
        }
    }

    /// Run a routine (or drop a completion nobody waits for); the engine
    /// lock is not held.
    fn run(&self, delivery: Delivery) {
        match delivery {
            Delivery::Call(routine, completion) => {
                // A panicking routine must not take the event context (nusb's
                // thread serves every device) or this pipe's delivery down
                // with it.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| routine(completion)));
                if ran.is_err() {
                    tracing::error!(
                        pipe = self.info.address,
                        "a completion routine panicked; its completion is dropped"
                    );
                }
            }
            Delivery::Drop(c) => drop(c),
            Delivery::Wake(w) => w.wake(),
            Delivery::Unpark(t) => t.unpark(),
            Delivery::None => {}
        }
    }

    /// The lock without the release-time pump (the pump loop answers
    /// notifications itself).
    fn lock_raw(&self) -> MutexGuard<'_, PipeInner> {
        self.notify.enter();
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand a finished slot's completion to its waiter.
    fn deliver(&self, g: &mut PipeInner, key: usize) -> Delivery {
        let Some(slot) = g.slots.get_mut(key) else {
            return Delivery::None;
        };
        slot.queued = false;
        let Some((status, bytes)) = slot.outcome else {
            return Delivery::None;
        };
        match &mut slot.waiter {
            Waiter::Routine(_) | Waiter::Detached => {
                let slot = g.slots.remove(key);
                let completion = Completion {
                    status,
                    bytes,
                    request: slot.request,
                };
                match slot.waiter {
                    Waiter::Routine(r) => Delivery::Call(r, completion),
                    _ => Delivery::Drop(completion),
                }
            }
            Waiter::Future(w) => {
                // The future takes the completion when polled.
                let w = w.take();
                g.active = g.active.saturating_sub(1);
                self.device.request_delivered();
                w.map(Delivery::Wake).unwrap_or(Delivery::None)
            }
            Waiter::Thread(t) => {
                let t = t.take();
                g.active = g.active.saturating_sub(1);
                self.device.request_delivered();
                t.map(Delivery::Unpark).unwrap_or(Delivery::None)
            }
        }
    }

    /// Requests sent and not yet completed.
    pub(crate) fn active(self: &Arc<Self>) -> usize {
        self.lock().active
    }

    /// The last pipe handle is gone: cancel what is in flight and keep the
    /// engine alive until every completion has been delivered (routines
    /// run, pooled requests go home).
    pub(crate) fn release(self: &Arc<Self>) {
        self.cancel_everything(Status::Cancelled);
        let mut g = self.lock();
        if g.active > 0 {
            g.keepalive = Some(self.clone());
        }
    }

    /// A buffer from the backend's allocator (zero-copy where possible).
    pub(crate) fn allocate(self: &Arc<Self>, len: usize) -> Buffer {
        self.lock().ep.allocate(len)
    }

    pub(crate) fn set_policy(self: &Arc<Self>, policy: PipePolicy) {
        self.lock().policy = policy;
    }

    pub(crate) fn policy(self: &Arc<Self>) -> PipePolicy {
        self.lock().policy
    }
}

enum Delivery {
    Call(CompletionRoutine, Completion),
    Wake(Waker),
    Unpark(Thread),
    Drop(Completion),
    None,
}

/// A wake-up the pump gives once it has released the engine lock.
enum Wakeup {
    Waker(Waker),
    Thread(Thread),
}

impl Wakeup {
    fn wake(self) {
        match self {
            Wakeup::Waker(w) => w.wake(),
            Wakeup::Thread(t) => t.unpark(),
        }
    }
}

fn wake_all<const N: usize>(wakes: &mut heapless::Vec<Wakeup, N>) {
    if !wakes.is_empty() {
        for w in wakes.drain(..) {
            w.wake();
        }
    }
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
