//! Preallocated request pools.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use slab::Slab;

use crate::memory::Memory;
use crate::options::Timeout;
use crate::request::Request;

/// A fixed set of requests with buffers, allocated once.
///
/// [`take`](Self::take) hands out an idle request; dropping the request (or
/// the [`Completion`](crate::Completion) that carries it) puts it back. No
/// heap allocation happens after the pool is built.
///
/// KMDF: a lookaside list of `WDFMEMORY` plus driver-created `WDFREQUEST`s.
#[derive(Clone)]
pub struct RequestPool {
    shared: Arc<PoolShared>,
}

pub(crate) struct PoolShared {
    state: Mutex<PoolState>,
    returned: Condvar,
    buffer_len: usize,
}

struct PoolState {
    /// Every request slot; `Some` while the request is idle in the pool.
    slots: Slab<Option<Memory>>,
    /// Keys of idle slots, used as a stack.
    free: Vec<usize>,
}

/// A pooled request's way home.
pub(crate) struct PoolSlot {
    pool: Arc<PoolShared>,
    key: usize,
}

impl PoolSlot {
    pub(crate) fn give_back(self, memory: Memory) {
        let mut st = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = st.slots.get_mut(self.key) {
            *entry = Some(memory);
            st.free.push(self.key);
        }
        drop(st);
        self.pool.returned.notify_one();
    }
}

impl RequestPool {
    /// `count` requests, each with a heap buffer of `buffer_len` bytes.
    pub fn new(count: usize, buffer_len: usize) -> RequestPool {
        RequestPool::from_fn(count, buffer_len, Memory::new)
    }

    /// `count` requests whose buffers come from `alloc(buffer_len)` (a
    /// pipe's zero-copy allocator, for instance).
    pub fn from_fn(
        count: usize,
        buffer_len: usize,
        mut alloc: impl FnMut(usize) -> Memory,
    ) -> RequestPool {
        let mut slots = Slab::with_capacity(count);
        let mut free = Vec::with_capacity(count);
        for _ in 0..count {
            free.push(slots.insert(Some(alloc(buffer_len))));
        }
        free.reverse();
        RequestPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState { slots, free }),
                returned: Condvar::new(),
                buffer_len,
            }),
        }
    }

    /// An idle request, or `None` when all are out.
    pub fn take(&self) -> Option<Request> {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        take_locked(&self.shared, &mut st)
    }

    /// An idle request, waiting up to `timeout` for one to come back.
    pub fn take_wait(&self, timeout: Timeout) -> Option<Request> {
        let deadline = timeout.deadline_from(Instant::now());
        let st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut st, _) =
            crate::wait::wait_while(&self.shared.returned, st, deadline, |st| st.free.is_empty());
        take_locked(&self.shared, &mut st)
    }

    /// Requests currently idle in the pool.
    pub fn available(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free
            .len()
    }

    /// Requests the pool holds in all, idle or out.
    pub fn capacity(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .len()
    }

    /// The buffer size every request of this pool was built with.
    pub fn buffer_len(&self) -> usize {
        self.shared.buffer_len
    }
}

fn take_locked(shared: &Arc<PoolShared>, st: &mut PoolState) -> Option<Request> {
    let key = st.free.pop()?;
    let memory = st.slots.get_mut(key)?.take()?;
    let mut req = Request::pooled(
        memory,
        PoolSlot {
            pool: shared.clone(),
            key,
        },
    );
    req.reuse();
    Some(req)
}

impl fmt::Debug for RequestPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestPool")
            .field("available", &self.available())
            .field("capacity", &self.capacity())
            .field("buffer_len", &self.buffer_len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_back_on_drop() {
        let pool = RequestPool::new(2, 64);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_ne!(a.id(), b.id());
        drop(a);
        assert_eq!(pool.available(), 1);
        let c = pool.take().unwrap();
        assert_eq!(c.memory().capacity(), 64);
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn taken_request_is_clean() {
        let pool = RequestPool::new(1, 8);
        let mut r = pool.take().unwrap();
        r.memory_mut().set(&[1, 2, 3]).unwrap();
        r.set_tag(9);
        drop(r);
        let r = pool.take().unwrap();
        assert!(r.memory().is_empty());
        assert_eq!(r.tag(), 0);
    }

    #[test]
    fn take_wait_times_out_and_wakes() {
        let pool = RequestPool::new(1, 8);
        let r = pool.take().unwrap();
        assert!(pool
            .take_wait(Timeout::after(std::time::Duration::from_millis(5)))
            .is_none());
        let p2 = pool.clone();
        let t = std::thread::spawn(move || p2.take_wait(Timeout::Infinite).is_some());
        drop(r);
        assert!(t.join().unwrap());
    }
}
