//! Who reaps completions, without a thread of our own and without blocking
//! the backend's event context on the engine lock.
//!
//! A backend wakes the pipe from its event thread, or synchronously from
//! inside `submit` while the submitting thread holds the engine lock. The
//! rule: the waker records `notified` and reaps only when nobody holds the
//! lock; whoever releases the lock checks `notified` afterwards and reaps
//! if it is set. Both flags are sequentially consistent, so of "waker
//! stores notified, then loads locked" and "holder stores !locked, then
//! loads notified" at least one side sees the other's store: no wake-up is
//! lost. `loom` checks that claim in `tests/loom_notify.rs`-style model
//! tests below (`cargo test --features loom` is not needed: the model runs
//! under `cfg(loom)` via `RUSTFLAGS="--cfg loom"`).

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// The two flags of the protocol.
#[derive(Debug)]
pub(crate) struct Notify {
    notified: AtomicBool,
    locked: AtomicBool,
}

impl Notify {
    pub(crate) fn new() -> Self {
        Notify {
            notified: AtomicBool::new(false),
            locked: AtomicBool::new(false),
        }
    }

    /// Called by the waker. Returns true when the caller should reap now
    /// (nobody holds the lock); false when the holder will do it.
    pub(crate) fn wake(&self) -> bool {
        self.notified.store(true, SeqCst);
        !self.locked.load(SeqCst)
    }

    /// Called right after the engine lock is taken.
    pub(crate) fn on_lock(&self) {
        self.locked.store(true, SeqCst);
    }

    /// Called right before the engine lock is released.
    pub(crate) fn on_unlock(&self) {
        self.locked.store(false, SeqCst);
    }

    /// Called after the lock is released, and by a reaper before it looks
    /// at the backend: true when a wake-up arrived that nobody has
    /// answered yet (and clears it).
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

    /// A completion produced by the "backend" while another thread holds
    /// the lock is always reaped by someone.
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let notify = Arc::new(Notify::new());
            let lock = Arc::new(Mutex::new(()));
            let ready = Arc::new(AtomicUsize::new(0));
            let reaped = Arc::new(AtomicUsize::new(0));

            let reap =
                |notify: &Notify, lock: &Mutex<()>, ready: &AtomicUsize, reaped: &AtomicUsize| {
                    loop {
                        notify.take();
                        {
                            let _g = lock.lock().unwrap();
                            notify.on_lock();
                            let n = ready.swap(0, SeqCst);
                            reaped.fetch_add(n, SeqCst);
                            notify.on_unlock();
                        }
                        if !notify.take() {
                            break;
                        }
                        // Someone woke us while we held the lock: go again.
                        notify.wake();
                    }
                };

            // Holder: takes the lock, does "submit", releases, then answers a
            // pending notification.
            let (n1, l1, r1, d1) = (notify.clone(), lock.clone(), ready.clone(), reaped.clone());
            let holder = thread::spawn(move || {
                {
                    let _g = l1.lock().unwrap();
                    n1.on_lock();
                    n1.on_unlock();
                }
                if n1.take() {
                    n1.wake();
                    reap(&n1, &l1, &r1, &d1);
                }
            });

            // Backend event thread: a transfer finishes, then it wakes.
            let (n2, l2, r2, d2) = (notify.clone(), lock.clone(), ready.clone(), reaped.clone());
            let backend = thread::spawn(move || {
                r2.fetch_add(1, SeqCst);
                if n2.wake() {
                    reap(&n2, &l2, &r2, &d2);
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
