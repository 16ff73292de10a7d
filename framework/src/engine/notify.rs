//! Who reaps completions, without a thread of our own and without blocking
//! the backend's event context on the engine lock.
//!
//! A backend wakes the pipe from its event thread, or synchronously from
//! inside `submit`/`cancel_all` while the calling thread holds the engine
//! lock. The protocol:
//!
//! * a thread announces itself in `lockers` *before* it takes the engine
//!   lock and withdraws *after* it released it, then answers any pending
//!   notification by reaping;
//! * the waker records `notified`, and reaps itself only when nobody is
//!   announced. So a waker never waits for the lock behind a holder (the
//!   backend's event thread, shared by every device, is never stalled by a
//!   long critical section such as `cancel_all`).
//!
//! All operations are sequentially consistent: of "waker stores
//! `notified`, then loads `lockers`" and "holder decrements `lockers`, then
//! swaps `notified`", at least one side sees the other's write, so no
//! wake-up is lost. The loom model below checks that claim.

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// The two words of the protocol.
#[derive(Debug)]
pub(crate) struct Notify {
    notified: AtomicBool,
    lockers: AtomicUsize,
}

impl Notify {
    pub(crate) fn new() -> Self {
        Notify {
            notified: AtomicBool::new(false),
            lockers: AtomicUsize::new(0),
        }
    }

    /// Called by the waker. True when the caller should reap now (nobody
    /// holds or is taking the lock); false when a holder will do it.
    pub(crate) fn wake(&self) -> bool {
        self.notified.store(true, SeqCst);
        self.lockers.load(SeqCst) == 0
    }

    /// Called right before the engine lock is taken.
    pub(crate) fn enter(&self) {
        self.lockers.fetch_add(1, SeqCst);
    }

    /// Called right after the engine lock was released.
    pub(crate) fn exit(&self) {
        self.lockers.fetch_sub(1, SeqCst);
    }

    /// True when a wake-up arrived that nobody has answered yet (and
    /// clears it). Called after `exit`, and by a reaper before it looks at
    /// the backend.
    pub(crate) fn take(&self) -> bool {
        self.notified.swap(false, SeqCst)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// The engine's reap loop, reduced to its synchronisation: take the
    /// notification, reap under the lock, answer notifications that came
    /// in meanwhile.
    fn pump(n: &Notify, lock: &Mutex<()>, ready: &AtomicUsize, reaped: &AtomicUsize) {
        loop {
            n.take();
            n.enter();
            {
                let _g = lock.lock().unwrap();
                let k = ready.swap(0, SeqCst);
                reaped.fetch_add(k, SeqCst);
            }
            n.exit();
            if !n.take() {
                return;
            }
        }
    }

    /// A completion produced while another thread holds the lock is
    /// reaped by someone: either the waker (nobody announced) or the
    /// holder (after its release).
    #[test]
    fn no_lost_wakeup() {
        // Two preemptions cover the interleavings this protocol is about
        // (the waker between the holder's release and its check) and keep
        // the model to seconds.
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let n = Arc::new(Notify::new());
            let lock = Arc::new(Mutex::new(()));
            let ready = Arc::new(AtomicUsize::new(0));
            let reaped = Arc::new(AtomicUsize::new(0));

            let (n1, l1, r1, d1) = (n.clone(), lock.clone(), ready.clone(), reaped.clone());
            let holder = thread::spawn(move || {
                n1.enter();
                drop(l1.lock().unwrap());
                n1.exit();
                if n1.take() {
                    pump(&n1, &l1, &r1, &d1);
                }
            });

            let (n2, l2, r2, d2) = (n.clone(), lock.clone(), ready.clone(), reaped.clone());
            let backend = thread::spawn(move || {
                r2.fetch_add(1, SeqCst);
                if n2.wake() {
                    pump(&n2, &l2, &r2, &d2);
                }
            });

            holder.join().unwrap();
            backend.join().unwrap();
            assert_eq!(
                reaped.load(SeqCst),
                1,
                "the completion was reaped exactly once"
            );
        });
    }
}
