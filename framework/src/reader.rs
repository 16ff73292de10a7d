//! The continuous reader: N reads kept pending on an IN pipe.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

use crate::engine::{CancelHandle, CompletionRoutine, SendTo};
use crate::error::{Error, SendErrorKind};
use crate::options::{SendOptions, Timeout};
use crate::request::{Completion, Request};
use crate::status::Status;
use crate::target::{In, Pipe, PipeType};

/// Called with the data of every successful read, in the order the device
/// sent it. Runs in usbdf's event context: it must not block for long
/// (while it runs, no other completion of this pipe is delivered) and must
/// not stop the reader synchronously.
///
/// KMDF: `EVT_WDF_USB_READER_COMPLETION_ROUTINE`.
pub type ReadComplete = Arc<dyn Fn(&[u8]) + Send + Sync + 'static>;

/// Called with the reader's new state (and the last failure, if any)
/// whenever it changes: `Running`, `Recovering`, `Stopped`, `Gone`. It can
/// run in usbdf's event context: it must not block.
pub type StateChange = Arc<dyn Fn(ReaderState, Option<Status>) + Send + Sync + 'static>;

/// What to do after a read failed and every reader has come back.
///
/// KMDF: the return value of `EVT_WDF_USB_READERS_FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadersFailedAction {
    /// Reset the pipe (clear the halt) and start the readers again.
    Restart,
    /// Leave the reader stopped; [`ContinuousReader::start`] starts it again.
    Stop,
}

/// The readers-failed policy.
///
/// KMDF: `EvtUsbTargetPipeReadersFailed` (absent = restart).
#[derive(Clone)]
pub enum ReadersFailed {
    /// Reset the pipe and restart, as KMDF does when no callback is set.
    /// A gone device is never restarted.
    Restart,
    /// Stop.
    Stop,
    /// Ask this function (called off the event context, once every reader
    /// has come back) with the failing status.
    Ask(Arc<dyn Fn(Status) -> ReadersFailedAction + Send + Sync + 'static>),
}

impl std::fmt::Debug for ReadersFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadersFailed::Restart => f.write_str("Restart"),
            ReadersFailed::Stop => f.write_str("Stop"),
            ReadersFailed::Ask(_) => f.write_str("Ask(..)"),
        }
    }
}

/// How to build a [`ContinuousReader`].
///
/// KMDF: `WDF_USB_CONTINUOUS_READER_CONFIG`.
#[derive(Clone)]
pub struct ReaderConfig {
    /// Bytes asked for by each read: a multiple of the max packet size.
    pub transfer_length: usize,
    /// Reads kept pending (KMDF: `NumPendingReads`, default 2; 1..=32 here).
    pub pending_reads: usize,
    /// The data callback.
    pub on_read: ReadComplete,
    /// What happens after a failed read.
    pub on_failed: ReadersFailed,
    /// Told about every state change (for instance, that the device is
    /// gone), if set.
    pub on_state: Option<StateChange>,
}

impl ReaderConfig {
    /// `pending_reads` 2 and the [`ReadersFailed::Restart`] policy.
    pub fn new(transfer_length: usize, on_read: ReadComplete) -> ReaderConfig {
        ReaderConfig {
            transfer_length,
            pending_reads: 2,
            on_read,
            on_failed: ReadersFailed::Restart,
            on_state: None,
        }
    }

    /// Be told about every state change.
    pub fn on_state(mut self, f: StateChange) -> ReaderConfig {
        self.on_state = Some(f);
        self
    }

    /// Set the number of pending reads.
    pub fn pending_reads(mut self, n: usize) -> ReaderConfig {
        self.pending_reads = n;
        self
    }

    /// Set the readers-failed policy.
    pub fn on_failed(mut self, policy: ReadersFailed) -> ReaderConfig {
        self.on_failed = policy;
        self
    }
}

impl std::fmt::Debug for ReaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderConfig")
            .field("transfer_length", &self.transfer_length)
            .field("pending_reads", &self.pending_reads)
            .field("on_failed", &self.on_failed)
            .field("on_state", &self.on_state.is_some())
            .finish()
    }
}

/// Where a reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReaderState {
    /// Reads are pending.
    Running,
    /// Stopped by the driver, or by the `Stop` policy after a failure.
    Stopped,
    /// A read failed; the readers are coming back before the policy runs.
    Recovering,
    /// The device is gone.
    Gone,
}

/// N reads kept pending on an IN pipe, each resent as soon as its data was
/// handed to the callback. While a reader exists, the pipe belongs to it:
/// send no other reads on it (KMDF has the same rule).
///
/// When a read fails, the reader cancels the others, waits for all of them,
/// then applies its [`ReadersFailed`] policy off the event context: by
/// default it resets the pipe and starts again (never for a gone device).
/// Dropping the reader stops it.
///
/// KMDF: `WdfUsbTargetPipeConfigContinuousReader`.
pub struct ContinuousReader<T: PipeType> {
    shared: Arc<Shared<T>>,
}

struct Shared<T: PipeType> {
    pipe: Pipe<T, In>,
    config: ReaderConfig,
    routine: CompletionRoutine,
    state: Mutex<Inner>,
    changed: Condvar,
}

struct Inner {
    state: ReaderState,
    /// Reads sent and not yet back.
    outstanding: usize,
    /// Idle requests.
    parked: Vec<Request>,
    /// The cancel handle of each reader slot's current read, with the
    /// number of the send it belongs to.
    handles: Vec<(u64, Option<CancelHandle>)>,
    /// Sends so far, numbering them.
    sends: u64,
    failure: Option<Status>,
    /// The state last told to `on_state`.
    reported: ReaderState,
    restarts: u64,
    reads: u64,
}

impl<T: PipeType> ContinuousReader<T> {
    /// Build a reader on `pipe` (not started).
    ///
    /// KMDF: `WdfUsbTargetPipeConfigContinuousReader`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the transfer length is zero or not
    /// a multiple of the max packet size, or `pending_reads` is outside
    /// 1..=32.
    pub fn new(pipe: &Pipe<T, In>, config: ReaderConfig) -> Result<ContinuousReader<T>, Error> {
        let mps = pipe.info().max_packet_size.max(1);
        if config.transfer_length == 0 || config.transfer_length % mps != 0 {
            return Err(Error::InvalidArgument(
                "continuous reader length must be a non-zero multiple of the max packet size",
            ));
        }
        if !(1..=32).contains(&config.pending_reads) {
            return Err(Error::InvalidArgument("pending_reads must be 1..=32"));
        }
        let parked = (0..config.pending_reads)
            .map(|i| {
                let mut r = Request::new(pipe.allocate(config.transfer_length));
                // The tag is the reader slot: it indexes the cancel handles.
                r.set_tag(i as u64);
                r
            })
            .collect();
        let shared = Arc::new_cyclic(|weak: &Weak<Shared<T>>| {
            let weak = weak.clone();
            let routine: CompletionRoutine = Arc::new(move |c: Completion| {
                if let Some(s) = weak.upgrade() {
                    s.on_complete(c);
                }
            });
            Shared {
                pipe: pipe.clone(),
                config,
                routine,
                state: Mutex::new(Inner {
                    state: ReaderState::Stopped,
                    outstanding: 0,
                    parked,
                    handles: Vec::new(),
                    sends: 0,
                    failure: None,
                    reported: ReaderState::Stopped,
                    restarts: 0,
                    reads: 0,
                }),
                changed: Condvar::new(),
            }
        });
        Ok(ContinuousReader { shared })
    }

    /// Start the readers.
    ///
    /// # Errors
    /// [`Error::Disconnected`]; [`Error::InvalidArgument`] when a read
    /// cannot be sent (e.g. the pipe is halted or stopped).
    pub fn start(&self) -> Result<(), Error> {
        self.shared.start()
    }

    /// Stop: cancel the pending reads and wait for them, for at most
    /// `timeout`.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when reads are still out at the deadline.
    pub fn stop(&self, timeout: Timeout) -> Result<(), Error> {
        self.shared.stop(timeout)
    }

    /// Where the reader stands.
    pub fn state(&self) -> ReaderState {
        self.shared.lock().state
    }

    /// The status of the last failure, if any.
    pub fn last_failure(&self) -> Option<Status> {
        self.shared.lock().failure
    }

    /// Times the readers were restarted after a failure.
    pub fn restarts(&self) -> u64 {
        self.shared.lock().restarts
    }

    /// Successful reads handed to the callback so far.
    pub fn reads(&self) -> u64 {
        self.shared.lock().reads
    }

    /// Wait until the reader is in `state`, for at most `timeout`.
    pub fn wait_for(&self, state: ReaderState, timeout: Timeout) -> bool {
        let deadline = timeout.deadline_from(Instant::now());
        let g = self.shared.lock();
        let (_g, timed_out) =
            crate::wait::wait_while(&self.shared.changed, g, deadline, |g| g.state != state);
        !timed_out
    }
}

impl<T: PipeType> Drop for ContinuousReader<T> {
    fn drop(&mut self) {
        let _ = self.shared.stop(Timeout::millis(2000));
    }
}

impl<T: PipeType> std::fmt::Debug for ContinuousReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuousReader")
            .field("state", &self.state())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<T: PipeType> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(self: &Arc<Self>) -> Result<(), Error> {
        let requests: Vec<Request> = {
            let mut g = self.lock();
            if g.state == ReaderState::Running || g.state == ReaderState::Recovering {
                return Ok(());
            }
            if g.state == ReaderState::Gone {
                return Err(Error::Disconnected);
            }
            g.state = ReaderState::Running;
            g.handles = vec![(0, None); self.config.pending_reads];
            g.parked.drain(..).collect()
        };
        self.changed.notify_all();
        self.emit();
        let mut result = Ok(());
        for r in requests {
            if let Err(e) = self.send(r) {
                result = Err(e);
            }
        }
        if result.is_err() {
            let _ = self.stop(Timeout::millis(1000));
        }
        result
    }

    /// Send one read; on refusal the request is parked again.
    fn send(self: &Arc<Self>, r: Request) -> Result<(), Error> {
        let len = self.config.transfer_length;
        let slot = r.tag() as usize;
        // Counted before the send: the completion (and the next send of the
        // same slot) can run inside it.
        let seq = {
            let mut g = self.lock();
            g.outstanding += 1;
            g.sends += 1;
            let seq = g.sends;
            if let Some(entry) = g.handles.get_mut(slot) {
                *entry = (seq, None);
            }
            seq
        };
        match self.pipe.shared.send(
            r,
            len,
            &SendOptions::new(),
            SendTo::Routine(self.routine.clone()),
        ) {
            Ok((key, gen)) => {
                let h = CancelHandle::new(self.pipe.shared.clone(), key, gen);
                let mut g = self.lock();
                if g.state != ReaderState::Running {
                    // Stopped or failed while this read was being sent: it
                    // missed the cancel sweep, so cancel it now.
                    drop(g);
                    h.cancel();
                    return Ok(());
                }
                if let Some(entry) = g.handles.get_mut(slot) {
                    // Unless a later send of this slot (from inside this
                    // one) registered already.
                    if entry.0 == seq {
                        entry.1 = Some(h);
                    }
                }
                Ok(())
            }
            Err(e) => {
                let kind = e.kind();
                let mut g = self.lock();
                g.outstanding -= 1;
                g.parked.push(e.into_request());
                drop(g);
                self.changed.notify_all();
                Err(match kind {
                    SendErrorKind::Disconnected => Error::Disconnected,
                    _ => Error::InvalidArgument("the continuous reader could not send a read"),
                })
            }
        }
    }

    fn on_complete(self: &Arc<Self>, c: Completion) {
        let status = c.status();
        if status == Status::Success {
            let running = self.lock().state == ReaderState::Running;
            if running {
                let on_read = &self.config.on_read;
                let data = c.data();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_read(data))).is_err()
                {
                    tracing::error!("a continuous reader's read callback panicked");
                }
            }
            let mut g = self.lock();
            g.outstanding -= 1;
            if running {
                g.reads += 1;
            }
            if g.state == ReaderState::Running {
                drop(g);
                if let Err(e) = self.send(c.into_request()) {
                    let s = match e {
                        Error::Disconnected => Status::Disconnected,
                        _ => Status::Stall,
                    };
                    self.fail(s);
                }
                return;
            }
            g.parked.push(c.into_request());
            drop(g);
            self.settled();
            return;
        }
        {
            let mut g = self.lock();
            g.outstanding -= 1;
            g.parked.push(c.into_request());
        }
        if status != Status::Cancelled {
            self.fail(status);
        }
        self.settled();
    }

    /// A read failed: stop resubmitting and cancel the others.
    fn fail(self: &Arc<Self>, status: Status) {
        let handles = {
            let mut g = self.lock();
            if g.state != ReaderState::Running {
                return;
            }
            g.state = ReaderState::Recovering;
            g.failure = Some(status);
            std::mem::take(&mut g.handles)
        };
        self.emit();
        tracing::debug!(
            pipe = self.pipe.info().address,
            ?status,
            "continuous reader failed"
        );
        for (_, h) in handles {
            if let Some(h) = h {
                h.cancel();
            }
        }
        self.changed.notify_all();
        self.settled();
    }

    /// Called whenever a read came back: when recovering and all are back,
    /// apply the policy on a thread of its own (it may reset the pipe).
    fn settled(self: &Arc<Self>) {
        let status = {
            let g = self.lock();
            if g.state != ReaderState::Recovering || g.outstanding != 0 {
                self.changed.notify_all();
                return;
            }
            g.failure.unwrap_or(Status::Stall)
        };
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("usbdf-reader-recovery".into())
            .spawn(move || me.recover(status));
        if spawned.is_err() {
            self.set_state(ReaderState::Stopped);
        }
    }

    fn recover(self: &Arc<Self>, status: Status) {
        {
            let g = self.lock();
            if g.state != ReaderState::Recovering {
                return;
            }
        }
        // Every read is back, but the last completion routine may still be
        // returning in the event context: let the pipe go quiet first, so
        // the policy (and a pipe reset) sees nothing in flight.
        let _ = self.pipe.shared.wait_idle(Timeout::millis(5000));
        if status == Status::Disconnected || self.pipe.shared.device.is_gone() {
            self.set_state(ReaderState::Gone);
            return;
        }
        let action = match &self.config.on_failed {
            ReadersFailed::Restart => ReadersFailedAction::Restart,
            ReadersFailed::Stop => ReadersFailedAction::Stop,
            ReadersFailed::Ask(f) => f(status),
        };
        if action == ReadersFailedAction::Stop {
            self.set_state(ReaderState::Stopped);
            return;
        }
        if let Err(e) = self.pipe.reset() {
            tracing::debug!(error = %e, "continuous reader: pipe reset failed");
            let gone = matches!(e, Error::Disconnected);
            self.set_state(if gone {
                ReaderState::Gone
            } else {
                ReaderState::Stopped
            });
            return;
        }
        {
            let mut g = self.lock();
            if g.state != ReaderState::Recovering {
                // Stopped by the driver meanwhile.
                return;
            }
            g.restarts += 1;
            g.state = ReaderState::Stopped;
        }
        if self.start().is_err() {
            self.set_state(ReaderState::Stopped);
        }
    }

    fn set_state(&self, s: ReaderState) {
        self.lock().state = s;
        self.changed.notify_all();
        self.emit();
    }

    /// Tell `on_state` about the current state if it changed since the
    /// last call.
    fn emit(&self) {
        let Some(f) = &self.config.on_state else {
            return;
        };
        let (state, failure) = {
            let mut g = self.lock();
            if g.reported == g.state {
                return;
            }
            g.reported = g.state;
            (g.state, g.failure)
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(state, failure))).is_err() {
            tracing::error!("a continuous reader's state callback panicked");
        }
    }

    fn stop(self: &Arc<Self>, timeout: Timeout) -> Result<(), Error> {
        let handles = {
            let mut g = self.lock();
            if g.state == ReaderState::Running || g.state == ReaderState::Recovering {
                g.state = ReaderState::Stopped;
            }
            std::mem::take(&mut g.handles)
        };
        self.changed.notify_all();
        self.emit();
        for (_, h) in handles {
            if let Some(h) = h {
                h.cancel();
            }
        }
        let deadline = timeout.deadline_from(Instant::now());
        self.wait_back(deadline)?;
        // The last completion routine may still be finishing in the event
        // context: wait until the pipe has delivered everything (a pipe with
        // a continuous reader belongs to it, as in KMDF).
        let rest = match deadline {
            None => Timeout::Infinite,
            Some(d) => Timeout::After(d.saturating_duration_since(Instant::now())),
        };
        self.pipe.shared.wait_idle(rest)
    }

    fn wait_back(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let g = self.lock();
        let (_g, timed_out) =
            crate::wait::wait_while(&self.changed, g, deadline, |g| g.outstanding > 0);
        if timed_out {
            Err(Error::TimedOut)
        } else {
            Ok(())
        }
    }
}

impl<T: PipeType> Pipe<T, In> {
    /// Build a continuous reader on this pipe (not started).
    ///
    /// KMDF: `WdfUsbTargetPipeConfigContinuousReader`.
    ///
    /// # Errors
    /// As [`ContinuousReader::new`].
    pub fn continuous_reader(&self, config: ReaderConfig) -> Result<ContinuousReader<T>, Error> {
        ContinuousReader::new(self, config)
    }
}
