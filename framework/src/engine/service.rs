//! usbdf's one service thread: request timeouts. Work that must not run in
//! a backend's event context (asking a device whether it is still there
//! after a `Fault`) gets a short-lived thread of its own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::PipeShared;
use crate::backend::RawStatus;
use crate::control::{Recipient, SetupPacket};

struct Entry {
    at: Instant,
    seq: u64,
    pipe: Weak<PipeShared>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Timers {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    cv: Condvar,
}

fn timers() -> &'static Timers {
    static T: OnceLock<Timers> = OnceLock::new();
    T.get_or_init(|| {
        std::thread::Builder::new()
            .name("usbdf-timers".into())
            .spawn(run)
            .expect("spawn the usbdf timer thread");
        Timers {
            heap: Mutex::new((BinaryHeap::with_capacity(256), 0)),
            cv: Condvar::new(),
        }
    })
}

/// Call `pipe.on_timer()` at `at`.
pub(crate) fn schedule(at: Instant, pipe: Weak<PipeShared>) {
    let t = timers();
    let mut h = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    let earliest = h.0.peek().is_none_or(|Reverse(e)| at < e.at);
    h.1 += 1;
    let seq = h.1;
    h.0.push(Reverse(Entry { at, seq, pipe }));
    drop(h);
    if earliest {
        t.cv.notify_one();
    }
}

fn run() {
    let t = timers();
    let mut h = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        match h.0.peek() {
            None => h = t.cv.wait(h).unwrap_or_else(|e| e.into_inner()),
            Some(Reverse(e)) if e.at > now => {
                let wait = e.at - now;
                h =
                    t.cv.wait_timeout(h, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
            Some(_) => {
                let Some(Reverse(e)) = h.0.pop() else {
                    continue;
                };
                drop(h);
                if let Some(pipe) = e.pipe.upgrade() {
                    pipe.on_timer();
                }
                h = t.heap.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// Decide, off the event context, whether a `Fault` on `pipe` means the
/// device is gone: a cheap GET_STATUS answers `Disconnected` within a few
/// milliseconds when it is (measured on Linux usbfs; see vm-facts).
pub(crate) fn probe(pipe: Arc<PipeShared>) {
    let spawned = std::thread::Builder::new()
        .name("usbdf-probe".into())
        .spawn({
            let pipe = pipe.clone();
            move || {
                let gone = device_gone(&pipe);
                pipe.classified(gone);
            }
        });
    if spawned.is_err() {
        // No thread to ask with: keep the Fault as reported.
        pipe.classified(false);
    }
}

fn device_gone(pipe: &PipeShared) -> bool {
    // During an unplug the GET_STATUS itself can fail with EPROTO or time
    // out before usbfs notices the device is gone (measured in the VM), so
    // only `Disconnected` means gone and only an answer (data or a stall)
    // means present; anything else is asked again, for a bounded time.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        if pipe.device.is_gone() {
            return true;
        }
        let setup = SetupPacket::get_status(Recipient::Device, 0);
        let xfer = pipe
            .device
            .backend
            .submit_control(setup, &[], Duration::from_millis(200));
        match crate::control::block_on_control(xfer) {
            Err(RawStatus::Disconnected) => return true,
            Ok(_) | Err(RawStatus::Stall) => return false,
            Err(_) if std::time::Instant::now() < deadline => {
                // Back off before asking again (this is the probe's own
                // thread, never an event context).
                std::thread::sleep(Duration::from_millis(20));
            }
            // Still no answer: keep the `Fault` as reported.
            Err(_) => return false,
        }
    }
}
