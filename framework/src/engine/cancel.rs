//! Cancel one request, abort all, stop/start the I/O target, reset, and
//! timeouts.

use std::sync::Arc;
use std::time::Instant;

use super::{CancelOutcome, Phase, PipeInner, PipeShared, Place, StopAction, TargetState};
use crate::error::Error;
use crate::options::Timeout;
use crate::status::Status;

impl PipeShared {
    /// Ask for one request to end early with `reason` (`Cancelled` or
    /// `TimedOut`).
    pub(crate) fn cancel(self: &Arc<Self>, key: usize, gen: u32, reason: Status) -> CancelOutcome {
        let mut g = self.lock();
        let outcome = self.cancel_locked(&mut g, key, gen, reason);
        let deliver = !g.ready.is_empty();
        drop(g);
        if deliver {
            // A held request finished on the spot: deliver it now.
            self.pump();
        }
        outcome
    }

    fn cancel_locked(
        &self,
        g: &mut PipeInner,
        key: usize,
        gen: u32,
        reason: Status,
    ) -> CancelOutcome {
        let Some(slot) = g.slots.get_mut(key).filter(|s| s.gen == gen) else {
            return CancelOutcome::NotPending;
        };
        if slot.place == Place::Finished {
            return CancelOutcome::NotPending;
        }
        if slot.cancel.is_some() {
            return CancelOutcome::AlreadyRequested;
        }
        slot.cancel = Some(reason);
        tracing::debug!(
            pipe = self.info.address,
            request = slot.request.id().0,
            ?reason,
            place = ?slot.place,
            "cancel"
        );
        match slot.place {
            Place::Held => {
                g.held.retain(|&k| k != key);
                self.finish(g, key);
            }
            // Finished at the end of the drain it is waiting for, with the
            // bytes it moved so far.
            Place::Resubmit => {}
            Place::Backend => {
                if g.phase == Phase::Running {
                    g.phase = Phase::Draining;
                    g.ep.cancel_all();
                }
            }
            Place::Finished => {}
        }
        CancelOutcome::Requested
    }

    /// Cancel every request sent on the pipe. Returns how many were asked.
    pub(crate) fn cancel_everything(self: &Arc<Self>, reason: Status) -> usize {
        let mut g = self.lock();
        let targets: Vec<(usize, u32)> = g
            .slots
            .iter()
            .filter(|(_, s)| s.place != Place::Finished && s.cancel.is_none())
            .map(|(k, s)| (k, s.gen))
            .collect();
        let mut n = 0;
        for (k, gen) in targets {
            if self.cancel_locked(&mut g, k, gen, reason) == CancelOutcome::Requested {
                n += 1;
            }
        }
        drop(g);
        self.pump();
        n
    }

    /// Wait until nothing is in flight, or the timeout passes.
    pub(crate) fn wait_idle(self: &Arc<Self>, timeout: Timeout) -> Result<(), Error> {
        let deadline = timeout.deadline_from(Instant::now());
        loop {
            {
                let mut g = self.lock();
                if g.active == 0 {
                    return Ok(());
                }
                let me = std::thread::current();
                if !g.idle_waiters.iter().any(|t| t.id() == me.id()) {
                    g.idle_waiters.push(me);
                }
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        let mut g = self.lock();
                        let me = std::thread::current().id();
                        g.idle_waiters.retain(|t| t.id() != me);
                        return if g.active == 0 {
                            Ok(())
                        } else {
                            Err(Error::TimedOut)
                        };
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }

    /// Cancel everything sent and wait for it all to complete.
    pub(crate) fn abort(self: &Arc<Self>, timeout: Timeout) -> Result<(), Error> {
        self.cancel_everything(Status::Cancelled);
        self.wait_idle(timeout)
    }

    /// Stop the I/O target.
    pub(crate) fn stop(
        self: &Arc<Self>,
        action: StopAction,
        timeout: Timeout,
    ) -> Result<(), Error> {
        {
            let mut g = self.lock();
            if g.target == TargetState::Started {
                g.target = TargetState::Stopped;
            }
        }
        match action {
            StopAction::CancelSentIo => self.abort(timeout),
            StopAction::WaitForSentIo => self.wait_idle(timeout),
            StopAction::LeaveSentIo => Ok(()),
        }
    }

    /// Start the I/O target again.
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), Error> {
        let mut g = self.lock();
        if self.device.is_gone() {
            g.target = TargetState::Gone;
        }
        match g.target {
            TargetState::Gone => Err(Error::Disconnected),
            _ => {
                g.target = TargetState::Started;
                Ok(())
            }
        }
    }

    /// The I/O target state.
    pub(crate) fn target_state(self: &Arc<Self>) -> TargetState {
        if self.device.is_gone() {
            return TargetState::Gone;
        }
        self.lock().target
    }

    /// Clear a halt: CLEAR_FEATURE(ENDPOINT_HALT) plus the host toggle.
    /// Needs nothing in flight.
    pub(crate) fn reset(self: &Arc<Self>) -> Result<(), Error> {
        let mut g = self.lock();
        if self.device.is_gone() || g.target == TargetState::Gone {
            return Err(Error::Disconnected);
        }
        if g.active > 0 {
            return Err(Error::RequestsPending(g.active));
        }
        g.ep.clear_halt()
            .map_err(|e| Error::from_backend(e, None))?;
        g.halted = None;
        Ok(())
    }

    /// The status that halted the pipe, if it is halted.
    pub(crate) fn halted(self: &Arc<Self>) -> Option<Status> {
        self.lock().halted
    }

    /// Tell the service thread about a deadline, if it is the earliest.
    pub(super) fn arm(self: &Arc<Self>, g: &mut PipeInner, deadline: Instant) {
        if g.armed.is_none_or(|a| deadline < a) {
            g.armed = Some(deadline);
            super::service::schedule(deadline, Arc::downgrade(self));
        }
    }

    /// The service thread's call: time out what is due and re-arm.
    pub(crate) fn on_timer(self: &Arc<Self>) {
        let mut g = self.lock();
        let now = Instant::now();
        g.armed = None;
        let mut due: heapless::Vec<(usize, u32), 64> = heapless::Vec::new();
        let mut next: Option<Instant> = None;
        for (k, s) in g.slots.iter() {
            if s.place == Place::Finished || s.cancel.is_some() {
                continue;
            }
            if let Some(d) = s.deadline {
                if d <= now {
                    if due.push((k, s.gen)).is_err() {
                        next = Some(now);
                    }
                } else if next.is_none_or(|n| d < n) {
                    next = Some(d);
                }
            }
        }
        for (k, gen) in due {
            self.cancel_locked(&mut g, k, gen, Status::TimedOut);
        }
        if let Some(n) = next {
            self.arm(&mut g, n);
        }
    }

    /// The probe's answer to a `Fault`: the device is gone (every `Fault`
    /// becomes `Disconnected`), or it is there and the `Fault` halts the
    /// pipe.
    pub(crate) fn classified(self: &Arc<Self>, gone: bool) {
        let mut g = self.lock();
        g.classifying = false;
        if gone {
            self.device.mark_gone();
            g.target = TargetState::Gone;
            let keys: Vec<usize> = g.ready.iter().copied().collect();
            for k in keys {
                if let Some((status, _)) = g.slots.get_mut(k).and_then(|s| s.outcome.as_mut()) {
                    if *status == Status::Fault {
                        *status = Status::Disconnected;
                    }
                }
            }
        } else if g.halted.is_none() {
            g.halted = Some(Status::Fault);
        }
        if g.phase == super::Phase::Draining && g.fifo.is_empty() {
            // The drain waited for this answer.
            self.end_drain(&mut g);
        } else if g.phase == super::Phase::Running {
            // Requests held while the probe ran: the device's fate decides.
            if g.halted.is_some() || g.target == TargetState::Gone {
                self.fail_held(&mut g);
            } else {
                while let Some(key) = g.held.pop_front() {
                    self.submit_fresh(&mut g, key);
                }
            }
        }
        drop(g);
        self.pump();
    }
}
