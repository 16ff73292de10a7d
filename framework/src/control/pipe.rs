//! Control transfers as request objects: sync and async, with timeouts and
//! per-request cancel.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{ControlDirection, SetupPacket};
use crate::backend::{BackendControl, ControlData, RawStatus};
use crate::engine::DeviceCore;
use crate::error::{Error, SendError, SendErrorKind};
use crate::options::{SendOptions, Timeout};
use crate::request::{Completion, Request};
use crate::status::Status;

/// A generous stand-in for "no timeout" where the OS call needs a number.
const NO_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The default control pipe (endpoint 0) of a device.
///
/// Sends standard, class and vendor requests to the device, an interface
/// or an endpoint. Requests are [`Request`] objects like on any pipe: an IN
/// request reads `setup.length` bytes into the request's buffer, an OUT
/// request sends the first `setup.length` bytes of it.
///
/// KMDF: `WdfUsbTargetDeviceFormatRequestForControlTransfer` /
/// `WdfUsbTargetDeviceSendControlTransferSynchronously`.
#[derive(Clone)]
pub struct ControlPipe {
    device: Arc<DeviceCore>,
}

/// A control request in flight. Await it or [`wait`](Self::wait) for it.
///
/// # Cancellation
/// Dropping it cancels the transfer; [`cancel`](Self::cancel) does so and
/// still delivers the completion (`Cancelled`).
#[must_use = "a control request is cancelled when its ControlSent is dropped"]
pub struct ControlSent {
    state: Arc<Mutex<ControlState>>,
}

struct ControlState {
    xfer: Option<Box<dyn BackendControl>>,
    request: Option<Request>,
    setup: SetupPacket,
    cancelled: Option<Status>,
    deadline: Option<Instant>,
    device: Arc<DeviceCore>,
    /// Wakes the routine driver after a cancel.
    driver: Option<Waker>,
    /// Counted in the device's in-flight requests until it completes.
    counted: bool,
}

impl Drop for ControlState {
    fn drop(&mut self) {
        if self.counted {
            self.device.request_delivered();
        }
    }
}

/// A finished control request.
pub type ControlCompletion = Completion;

impl ControlPipe {
    pub(crate) fn new(device: Arc<DeviceCore>) -> ControlPipe {
        ControlPipe { device }
    }

    /// Send a control request. For IN (`setup.direction()`), the request's
    /// buffer receives up to `setup.length` bytes; for OUT, its first
    /// `setup.length` bytes are sent.
    ///
    /// # Errors
    /// The request comes back in a [`SendError`]: device gone, zero
    /// timeout, or a buffer too small for `setup.length`.
    pub fn send(
        &self,
        mut request: Request,
        setup: SetupPacket,
        opts: &SendOptions,
    ) -> Result<ControlSent, SendError> {
        if self.device.is_gone() {
            return Err(SendError::new(SendErrorKind::Disconnected, request));
        }
        if opts.timeout.is_some_and(|t| t.is_zero()) {
            return Err(SendError::new(SendErrorKind::ZeroTimeout, request));
        }
        let len = setup.length as usize;
        let cap = request.memory.capacity();
        let data: &[u8] = match setup.direction() {
            ControlDirection::In => {
                if len > cap {
                    return Err(SendError::new(
                        SendErrorKind::BufferTooSmall { len, capacity: cap },
                        request,
                    ));
                }
                &[]
            }
            ControlDirection::Out => {
                if len > request.memory.len() {
                    return Err(SendError::new(
                        SendErrorKind::BufferTooSmall {
                            len,
                            capacity: request.memory.len(),
                        },
                        request,
                    ));
                }
                &request.memory.as_slice()[..len]
            }
        };
        let timeout = opts.timeout.unwrap_or(NO_TIMEOUT);
        let xfer = self.device.backend.submit_control(setup, data, timeout);
        self.device.request_sent();
        if setup.direction() == ControlDirection::In {
            request.memory.clear();
        }
        tracing::trace!(?setup, request = request.id().0, "control send");
        Ok(ControlSent {
            state: Arc::new(Mutex::new(ControlState {
                xfer: Some(xfer),
                request: Some(request),
                setup,
                cancelled: None,
                deadline: opts.timeout.and_then(|t| Instant::now().checked_add(t)),
                device: self.device.clone(),
                driver: None,
                counted: true,
            })),
        })
    }

    /// Send a control request and call `routine` with its completion from
    /// usbdf's event context (see [`CompletionRoutine`](crate::CompletionRoutine)).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_with(
        &self,
        request: Request,
        setup: SetupPacket,
        opts: &SendOptions,
        routine: &crate::CompletionRoutine,
    ) -> Result<crate::ControlCancel, SendError> {
        let sent = self.send(request, setup, opts)?;
        let cancel = crate::ControlCancel {
            state: Arc::downgrade(&sent.state),
        };
        let driver = Arc::new(RoutineDriver {
            sent: Mutex::new(None),
            routine: routine.clone(),
            notify: crate::engine::notify::Notify::new(),
        });
        sent.state.lock().unwrap_or_else(|e| e.into_inner()).driver =
            Some(Waker::from(driver.clone()));
        *driver.sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent);
        driver.drive();
        Ok(cancel)
    }

    /// Send an IN request and wait for the data, for at most `timeout`.
    ///
    /// # Errors
    /// [`Error::ZeroTimeout`]; [`Error::Transfer`] with the status (e.g.
    /// `Stall`, `TimedOut`); [`Error::Disconnected`].
    pub fn read(&self, setup: SetupPacket, timeout: Timeout) -> Result<Vec<u8>, Error> {
        let c = self.transfer(
            Request::with_capacity(setup.length as usize),
            setup,
            timeout,
        )?;
        Ok(c.data().to_vec())
    }

    /// Send an OUT request with `data` and wait, for at most `timeout`.
    /// `setup.length` is set from `data`.
    ///
    /// # Errors
    /// As [`read`](Self::read); `InvalidArgument` for more than 65535 bytes.
    pub fn write(
        &self,
        mut setup: SetupPacket,
        data: &[u8],
        timeout: Timeout,
    ) -> Result<usize, Error> {
        setup.length = u16::try_from(data.len())
            .map_err(|_| Error::InvalidArgument("control data longer than 65535 bytes"))?;
        let c = self.transfer(
            Request::new(crate::Memory::from_slice(data)),
            setup,
            timeout,
        )?;
        Ok(c.bytes())
    }

    /// Send `request` and wait for its completion; a non-success status is
    /// an error.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn transfer(
        &self,
        request: Request,
        setup: SetupPacket,
        timeout: Timeout,
    ) -> Result<Completion, Error> {
        if timeout.is_zero() {
            return Err(Error::ZeroTimeout);
        }
        let opts = match timeout {
            Timeout::After(d) => SendOptions::new().timeout(d),
            Timeout::Infinite => SendOptions::new(),
        };
        let sent = self
            .send(request, setup, &opts)
            .map_err(|e| match e.kind() {
                SendErrorKind::Disconnected => Error::Disconnected,
                _ => Error::InvalidArgument("control request does not fit its buffer"),
            })?;
        let c = sent.wait();
        match c.status() {
            Status::Success => Ok(c),
            Status::Disconnected => Err(Error::Disconnected),
            s => Err(Error::Transfer(s)),
        }
    }
}

impl std::fmt::Debug for ControlPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPipe").finish()
    }
}

/// Cancels one control request sent with [`ControlPipe::send_with`].
///
/// KMDF: `WdfRequestCancelSentRequest` on a control request.
#[derive(Clone, Debug)]
pub struct ControlCancel {
    state: std::sync::Weak<Mutex<ControlState>>,
}

impl ControlCancel {
    /// Cancel the request if it is still pending.
    pub fn cancel(&self) -> crate::CancelOutcome {
        match self.state.upgrade() {
            Some(s) => cancel_state(&s, Status::Cancelled),
            None => crate::CancelOutcome::NotPending,
        }
    }
}

fn cancel_state(state: &Mutex<ControlState>, reason: Status) -> crate::CancelOutcome {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if st.request.is_none() {
        return crate::CancelOutcome::NotPending;
    }
    if st.cancelled.is_some() {
        return crate::CancelOutcome::AlreadyRequested;
    }
    st.cancelled = Some(reason);
    // Dropping the backend transfer cancels it.
    st.xfer = None;
    let driver = st.driver.take();
    drop(st);
    if let Some(w) = driver {
        w.wake();
    }
    crate::CancelOutcome::Requested
}

impl std::fmt::Debug for ControlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlState")
            .field("setup", &self.setup)
            .finish()
    }
}

impl ControlSent {
    /// Cancel the request; its completion still arrives (`Cancelled`).
    pub fn cancel(&self) -> crate::CancelOutcome {
        cancel_state(&self.state, Status::Cancelled)
    }

    /// A handle that cancels this request from elsewhere.
    pub fn cancel_handle(&self) -> ControlCancel {
        ControlCancel {
            state: Arc::downgrade(&self.state),
        }
    }

    /// Block until the request completes (its own send-options timeout
    /// bounds the wait).
    pub fn wait(self) -> Completion {
        futures::executor::block_on(self)
    }

    fn poll_state(&self, cx: &mut Context<'_>) -> Poll<Completion> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let result = match (st.cancelled, st.xfer.as_mut()) {
            (Some(reason), _) => Err(reason),
            (None, Some(x)) => match x.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map_err(|raw| map_control_status(raw, st.deadline)),
            },
            (None, None) => Err(Status::Cancelled),
        };
        st.xfer = None;
        let Some(mut request) = st.request.take() else {
            return Poll::Pending;
        };
        let (status, bytes) = match result {
            Ok(ControlData::In(data)) => {
                let n = data.len().min(request.memory.capacity());
                let _ = request.memory.set(&data[..n]);
                (Status::Success, n)
            }
            Ok(ControlData::Out(n)) => (Status::Success, n),
            Err(Status::Disconnected) => {
                st.device.mark_gone();
                (Status::Disconnected, 0)
            }
            Err(s) => (s, 0),
        };
        tracing::trace!(setup = ?st.setup, ?status, bytes, "control complete");
        if std::mem::take(&mut st.counted) {
            st.device.request_delivered();
        }
        Poll::Ready(Completion {
            status,
            bytes,
            request,
        })
    }
}

/// nusb reports its own control timeout as `Cancelled`: when we did not
/// cancel and a deadline was set and has passed, it is a timeout. A
/// `Cancelled` well before any deadline was the OS refusing the request
/// (usbfs answers a request to an endpoint that is not in the
/// configuration with ENOENT, which nusb reports as `Cancelled`): that is
/// an invalid request, not a cancel nobody asked for.
fn map_control_status(raw: RawStatus, deadline: Option<Instant>) -> Status {
    match raw {
        RawStatus::Cancelled => {
            let timed_out =
                deadline.is_some_and(|d| Instant::now() + Duration::from_millis(5) >= d);
            if timed_out {
                Status::TimedOut
            } else {
                Status::InvalidArgument
            }
        }
        other => Status::from_raw(other),
    }
}

impl Future for ControlSent {
    type Output = Completion;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion> {
        self.poll_state(cx)
    }
}

impl Drop for ControlSent {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.xfer = None;
    }
}

impl std::fmt::Debug for ControlSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSent").finish()
    }
}

/// Drives a control request sent with a completion routine: polled from
/// the backend's wake-ups, never from a thread of its own.
struct RoutineDriver {
    sent: Mutex<Option<ControlSent>>,
    routine: crate::CompletionRoutine,
    notify: crate::engine::notify::Notify,
}

impl RoutineDriver {
    fn drive(self: &Arc<Self>) {
        loop {
            self.notify.take();
            let waker = Waker::from(self.clone());
            let mut cx = Context::from_waker(&waker);
            self.notify.enter();
            let mut g = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            let done = match g.as_ref() {
                Some(s) => match s.poll_state(&mut cx) {
                    Poll::Ready(c) => Some(c),
                    Poll::Pending => None,
                },
                None => None,
            };
            let finished = done.is_some().then(|| g.take());
            drop(g);
            self.notify.exit();
            if let Some(c) = done {
                // Drop the ControlSent (and its state) outside the lock.
                drop(finished);
                let routine = &self.routine;
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| routine(c))).is_err() {
                    tracing::error!("a control completion routine panicked");
                }
                return;
            }
            if !self.notify.take() {
                return;
            }
        }
    }
}

impl Wake for RoutineDriver {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.notify.wake() {
            self.drive();
        }
    }
}
