//! The simulated host controller: one thread per connection that moves
//! packets between endpoint queues and the device model, runs control
//! transfers, and calls the engine's wakers.
//!
//! Each pass takes the connection lock once, does all the work it can
//! (every queued transfer on every endpoint, until the model NAKs or the
//! throughput budget runs out), then calls the wakers of the endpoints that
//! finished something, outside the lock, once per endpoint. Steady state
//! allocates nothing: packets go through one scratch buffer, finished
//! transfers stay in their queue until reaped, the waker list is reused.

use std::sync::Arc;
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

use crate::backend::RawStatus;

use super::conn::{Conn, ConnState, EpQueue, EPS};
use super::model::{DeviceModel, InReply, OutReply};
use super::standard::{self, Outcome};

/// How often NAKed endpoints and requests are retried when nothing
/// signals the controller (a model that forgets to notify still works,
/// slowly).
const NAK_POLL: Duration = Duration::from_millis(1);

/// The largest packet the scratch buffer holds.
const MAX_PACKET: usize = 1024;

/// Start the controller thread of `conn`.
pub(crate) fn spawn(conn: &Arc<Conn>) -> std::io::Result<()> {
    let c = conn.clone();
    let handle = thread::Builder::new()
        .name(format!("usbdf-sim-{}", conn.address))
        .spawn(move || run(c))?;
    conn.signal.set_thread(handle.thread().clone());
    conn.signal.notify();
    Ok(())
}

enum Step {
    Exit,
    Sleep(Option<Instant>),
}

struct Controller {
    scratch: Vec<u8>,
    wakers: Vec<Waker>,
}

fn run(conn: Arc<Conn>) {
    let mut ctl = Controller {
        scratch: vec![0; MAX_PACKET],
        wakers: Vec::with_capacity(EPS + 4),
    };
    loop {
        conn.signal.take();
        let (step, unplug) = ctl.step(&conn);
        for w in ctl.wakers.drain(..) {
            w.wake();
        }
        if unplug {
            if let Some(slot) = conn.slot.upgrade() {
                slot.unplug_conn(conn.id);
            }
        }
        let next = match step {
            Step::Exit => return,
            Step::Sleep(n) => n,
        };
        if conn.signal.is_pending() {
            continue;
        }
        match next {
            None => thread::park(),
            Some(t) => {
                let now = Instant::now();
                if t > now {
                    thread::park_timeout(t - now);
                }
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Controller {
    /// One pass. Returns when to look again and whether to unplug.
    fn step(&mut self, conn: &Conn) -> (Step, bool) {
        let mut guard = conn.lock();
        let st = &mut *guard;
        if !st.alive {
            return (Step::Exit, false);
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        standard::merge_device_halts(conn, st);
        refill(st, now);

        // Control transfers, one at a time in order (endpoint 0 is serial).
        while let Some(c) = st.controls.pop_front() {
            if c.shared.lock().dropped {
                continue;
            }
            if c.deadline.is_some_and(|d| d <= now) {
                // nusb reports its own control timeout as Cancelled.
                self.wakers
                    .extend(c.shared.complete(Err(RawStatus::Cancelled)));
                continue;
            }
            match standard::control(conn, st, &c.setup, &c.data) {
                Outcome::Done(r) => self.wakers.extend(c.shared.complete(r)),
                Outcome::Nak => {
                    next = earliest(next, now + NAK_POLL);
                    if let Some(d) = c.deadline {
                        next = earliest(next, d);
                    }
                    st.controls.push_front(c);
                    break;
                }
            }
            if !st.alive {
                return (Step::Exit, false);
            }
        }

        // Bulk and interrupt: keep going while anything moves (a packet on
        // one endpoint can make another one ready, as in a loopback).
        let mut throttled = false;
        loop {
            let mut progressed = false;
            let mut work = st.work;
            while work != 0 {
                let i = work.trailing_zeros() as usize;
                work &= work - 1;
                match self.service(st, i, now) {
                    Service::Progress => progressed = true,
                    Service::Idle => {}
                    Service::Throttled => throttled = true,
                }
                if st.unplug_requested {
                    break;
                }
            }
            if !progressed || throttled || st.unplug_requested {
                break;
            }
        }
        if st.work != 0 {
            next = earliest(next, now + NAK_POLL);
        }
        if throttled {
            if let Some(rate) = st.pacing.packets_per_ms {
                let per = Duration::from_micros(1000 / u64::from(rate.max(1)));
                next = earliest(next, st.refilled + per.max(Duration::from_micros(1)));
            }
        }

        // Wake endpoints whose oldest transfer the host can now take.
        for (i, ep) in st.eps.iter_mut().enumerate() {
            let Some(front) = ep.xfers.front_mut() else {
                continue;
            };
            if front.status.is_none() {
                continue;
            }
            let due = match front.ready_at {
                Some(t) if t > now => {
                    next = earliest(next, t);
                    false
                }
                Some(_) => {
                    front.ready_at = None;
                    true
                }
                None => st.wake & (1 << i) != 0,
            };
            if due {
                // One-shot, as nusb's: the engine subscribes again by polling.
                if let Some(w) = ep.waker.take() {
                    self.wakers.push(w);
                }
            }
        }
        st.wake = 0;
        let unplug = std::mem::take(&mut st.unplug_requested);
        (Step::Sleep(next), unplug)
    }

    /// Move packets for endpoint slot `i` until its queue is done, the model
    /// NAKs, or the budget runs out.
    fn service(&mut self, st: &mut ConnState, i: usize, now: Instant) -> Service {
        let ConnState {
            eps,
            model,
            work,
            wake,
            pacing,
            tokens,
            unplug_requested,
            packets,
            ..
        } = st;
        let Some(model) = model.as_mut() else {
            return Service::Idle;
        };
        let ep = &mut eps[i];
        let mut result = Service::Idle;
        let delay = pacing.completion_delay;
        loop {
            let Some(head) = ep.first_unfinished() else {
                *work &= !(1 << i);
                return result;
            };
            if ep.halted {
                finish(ep, head, Err(RawStatus::Stall), delay, now);
                *wake |= 1 << i;
                continue;
            }
            if pacing.packets_per_ms.is_some() {
                if *tokens == 0 {
                    return Service::Throttled;
                }
                *tokens -= 1;
            }
            let moved = if ep.is_in() {
                self.in_packet(&mut **model, ep, head, delay, now)
            } else {
                out_packet(&mut **model, ep, head, delay, now)
            };
            match moved {
                Packet::Nak => {
                    if pacing.packets_per_ms.is_some() {
                        *tokens += 1;
                    }
                    return result;
                }
                Packet::Moved { finished } => {
                    result = Service::Progress;
                    ep.toggle = !ep.toggle;
                    *packets += 1;
                    if finished {
                        *wake |= 1 << i;
                    }
                    if let Some(k) = pacing.disconnect_after.as_mut() {
                        *k = k.saturating_sub(1);
                        if *k == 0 {
                            pacing.disconnect_after = None;
                            *unplug_requested = true;
                            return result;
                        }
                    }
                }
                Packet::Stalled => {
                    ep.halted = true;
                    *wake |= 1 << i;
                    result = Service::Progress;
                }
            }
        }
    }

    fn in_packet(
        &mut self,
        model: &mut dyn DeviceModel,
        ep: &mut EpQueue,
        head: usize,
        delay: Option<Duration>,
        now: Instant,
    ) -> Packet {
        let mps = ep.mps.min(MAX_PACKET);
        let address = ep.address;
        let Some(x) = ep.xfers.get_mut(head) else {
            return Packet::Nak;
        };
        let want = x.buf.requested_len().saturating_sub(x.buf.len());
        let packet = &mut self.scratch[..mps];
        match model.in_packet(address, packet) {
            InReply::Nak => Packet::Nak,
            InReply::Stall => {
                finish(ep, head, Err(RawStatus::Stall), delay, now);
                Packet::Stalled
            }
            InReply::Babble => {
                let n = want.min(mps);
                x.buf.extend_from_slice(&packet[..n]);
                finish(ep, head, Err(RawStatus::Overflow), delay, now);
                Packet::Moved { finished: true }
            }
            InReply::Data(n) => {
                let n = n.min(mps);
                if n > want {
                    x.buf.extend_from_slice(&packet[..want]);
                    finish(ep, head, Err(RawStatus::Overflow), delay, now);
                    return Packet::Moved { finished: true };
                }
                x.buf.extend_from_slice(&packet[..n]);
                let done = n < mps || x.buf.len() >= x.buf.requested_len();
                if done {
                    finish(ep, head, Ok(()), delay, now);
                }
                Packet::Moved { finished: done }
            }
        }
    }
}

fn out_packet(
    model: &mut dyn DeviceModel,
    ep: &mut EpQueue,
    head: usize,
    delay: Option<Duration>,
    now: Instant,
) -> Packet {
    let mps = ep.mps.max(1);
    let address = ep.address;
    let Some(x) = ep.xfers.get_mut(head) else {
        return Packet::Nak;
    };
    let start = x.moved;
    let end = x.buf.len().min(start + mps);
    match model.out_packet(address, &x.buf[start..end]) {
        OutReply::Nak => Packet::Nak,
        OutReply::Stall => {
            finish(ep, head, Err(RawStatus::Stall), delay, now);
            Packet::Stalled
        }
        OutReply::Ack => {
            x.moved = end;
            let done = end >= x.buf.len();
            if done {
                finish(ep, head, Ok(()), delay, now);
            }
            Packet::Moved { finished: done }
        }
    }
}

fn finish(
    ep: &mut EpQueue,
    i: usize,
    status: Result<(), RawStatus>,
    delay: Option<Duration>,
    now: Instant,
) {
    if let Some(x) = ep.xfers.get_mut(i) {
        x.status = Some(status);
        x.ready_at = delay.map(|d| now + d);
    }
}

/// Add throughput tokens for the time passed.
fn refill(st: &mut ConnState, now: Instant) {
    let Some(rate) = st.pacing.packets_per_ms else {
        return;
    };
    let rate = u64::from(rate.max(1));
    let elapsed = now.saturating_duration_since(st.refilled).as_micros() as u64;
    let add = elapsed * rate / 1000;
    if add > 0 {
        st.tokens = (st.tokens + add).min(rate);
        st.refilled += Duration::from_micros(add * 1000 / rate);
        if st.tokens == rate {
            st.refilled = now;
        }
    }
}

enum Service {
    Progress,
    Idle,
    Throttled,
}

enum Packet {
    Nak,
    Moved { finished: bool },
    Stalled,
}
