//! Handles to sent requests: the future/blocking wait, and cancel handles.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{PipeShared, Place, Waiter};
use crate::options::Timeout;
use crate::request::Completion;
use crate::status::Status;

/// A completion routine: called once per request with its [`Completion`].
///
/// It runs in usbdf's event context (the backend's event thread, or the
/// thread that happened to reap the completion), so it must not block: no
/// synchronous sends, no waiting for other requests. Sending the next
/// request from it is fine and is the way to keep a pipe busy.
///
/// Created once (`Arc::new(|c| …)`) and shared by every send that uses it:
/// cloning the `Arc` per send allocates nothing.
///
/// KMDF: `EVT_WDF_REQUEST_COMPLETION_ROUTINE` (`WdfRequestSetCompletionRoutine`).
pub type CompletionRoutine = Arc<dyn Fn(Completion) + Send + Sync + 'static>;

/// What a cancel did.
///
/// KMDF: the BOOLEAN of `WdfRequestCancelSentRequest`, made specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelOutcome {
    /// The cancel was started. The request will complete `Cancelled` (or
    /// `TimedOut`) with the bytes it moved, or with success if the device
    /// finished it first.
    Requested,
    /// A cancel (or timeout) was already under way; nothing more was done.
    AlreadyRequested,
    /// The request is not pending any more (it completed, or this handle is
    /// from an earlier send of a reused request). Harmless.
    NotPending,
}

/// Cancels one sent request.
///
/// Cheap to clone; stays valid after the request completes (cancelling
/// then reports [`CancelOutcome::NotPending`]), and never cancels a later
/// send of the same reused request.
///
/// KMDF: `WdfRequestCancelSentRequest`.
#[derive(Clone)]
pub struct CancelHandle {
    pipe: Arc<PipeShared>,
    key: usize,
    gen: u32,
}

impl CancelHandle {
    pub(crate) fn new(pipe: Arc<PipeShared>, key: usize, gen: u32) -> CancelHandle {
        CancelHandle { pipe, key, gen }
    }

    /// Cancel the request. Asynchronous: the completion still arrives
    /// through the request's routine, future or wait.
    ///
    /// # Cancellation
    /// The cancelled request completes with [`Status::Cancelled`] and the
    /// bytes that moved before the cancel took effect; every other request
    /// on the pipe keeps all its data and its order (see the crate docs).
    pub fn cancel(&self) -> CancelOutcome {
        self.pipe.cancel(self.key, self.gen, Status::Cancelled)
    }
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("pipe", &format_args!("{:#04x}", self.pipe.info.address))
            .field("slot", &self.key)
            .finish()
    }
}

/// A request in flight, sent without a completion routine.
///
/// Await it (any executor) or call [`wait`](Self::wait) to block; either way
/// you get the [`Completion`] exactly once.
///
/// # Cancellation
/// Dropping a `Sent` before it completed cancels the request; its
/// completion is then dropped (a pooled request goes back to its pool).
#[must_use = "a sent request is cancelled when its Sent is dropped"]
pub struct Sent {
    pipe: Arc<PipeShared>,
    key: usize,
    gen: u32,
    taken: bool,
}

impl Sent {
    pub(crate) fn new(pipe: Arc<PipeShared>, key: usize, gen: u32) -> Sent {
        Sent {
            pipe,
            key,
            gen,
            taken: false,
        }
    }

    /// A handle that cancels this request.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            pipe: self.pipe.clone(),
            key: self.key,
            gen: self.gen,
        }
    }

    /// Cancel the request (see [`CancelHandle::cancel`]).
    pub fn cancel(&self) -> CancelOutcome {
        self.pipe.cancel(self.key, self.gen, Status::Cancelled)
    }

    /// Block until the request completes, for at most `timeout`: past it
    /// the request is cancelled and completes with [`Status::TimedOut`]
    /// (or with success, if the device finished it first). The wait for
    /// that completion is not bounded by `timeout`: cancellation always
    /// completes, and usbdf waits for it so that the buffer is never
    /// handed back while the OS may still write it.
    ///
    /// KMDF: `WdfUsbTargetPipeReadSynchronously` /
    /// `WdfUsbTargetPipeWriteSynchronously` with a send-options timeout.
    pub fn wait(mut self, timeout: Timeout) -> Completion {
        let deadline = timeout.deadline_from(Instant::now());
        let mut timed_out = false;
        loop {
            if let Some(c) = self.try_take(Waiter::Thread(Some(std::thread::current()))) {
                return c;
            }
            match deadline {
                Some(d) if !timed_out => {
                    let now = Instant::now();
                    if now >= d {
                        timed_out = true;
                        self.pipe.cancel(self.key, self.gen, Status::TimedOut);
                    } else {
                        std::thread::park_timeout(d - now);
                    }
                }
                _ => std::thread::park(),
            }
        }
    }

    /// Take the completion if it is there, else register `waiter`.
    fn try_take(&mut self, waiter: Waiter) -> Option<Completion> {
        let mut g = self.pipe.lock();
        let slot = g.slots.get_mut(self.key).filter(|s| s.gen == self.gen)?;
        let queued = slot.queued;
        if let (Place::Finished, Some((status, bytes)), false) = (slot.place, slot.outcome, queued)
        {
            let slot = g.slots.remove(self.key);
            self.taken = true;
            return Some(Completion {
                status,
                bytes,
                request: slot.request,
            });
        }
        slot.waiter = waiter;
        None
    }
}

impl Future for Sent {
    type Output = Completion;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion> {
        assert!(!self.taken, "Sent polled after it returned its completion");
        match self.try_take(Waiter::Future(Some(cx.waker().clone()))) {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let mut g = self.pipe.lock();
        let Some(slot) = g.slots.get_mut(self.key).filter(|s| s.gen == self.gen) else {
            return;
        };
        let queued = slot.queued;
        if slot.place == Place::Finished && !queued {
            // Dropped outside the lock: a pooled request goes home.
            let slot = g.slots.remove(self.key);
            drop(g);
            drop(slot);
            return;
        }
        slot.waiter = Waiter::Detached;
        drop(g);
        self.pipe.cancel(self.key, self.gen, Status::Cancelled);
    }
}

impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sent")
            .field("pipe", &format_args!("{:#04x}", self.pipe.info.address))
            .field("slot", &self.key)
            .finish()
    }
}
