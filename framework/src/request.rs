//! Request objects and their completions.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::memory::Memory;
use crate::pool::PoolSlot;
use crate::status::Status;

/// A process-unique request number, for tracing and bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req#{}", self.0)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A reusable I/O request: a buffer plus identity, created once and sent
/// many times.
///
/// A `Request` you hold is never in flight: sending it moves it into the
/// framework, and its [`Completion`] hands it back. Re-sending or reusing a
/// request that is still in flight is therefore impossible by construction:
///
/// ```compile_fail
/// # use usbdf::{Request, Pipe, Bulk, Out, SendOptions};
/// # fn f(pipe: &Pipe<Bulk, Out>, req: Request) {
/// let sent = pipe.write(req, &SendOptions::new());
/// let again = pipe.write(req, &SendOptions::new()); // error: use of moved value
/// # }
/// ```
///
/// Requests from a [`RequestPool`](crate::RequestPool) go back to their pool
/// when dropped, so steady-state I/O allocates nothing.
///
/// KMDF: `WDFREQUEST` (`WdfRequestCreate`, `WdfRequestReuse`).
pub struct Request {
    pub(crate) memory: Memory,
    id: RequestId,
    tag: u64,
    pub(crate) pool: Option<PoolSlot>,
}

impl Request {
    /// A request owning `memory`.
    pub fn new(memory: Memory) -> Request {
        Request {
            memory,
            id: RequestId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            tag: 0,
            pool: None,
        }
    }

    /// A request with a heap buffer of `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Request {
        Request::new(Memory::new(capacity))
    }

    pub(crate) fn pooled(memory: Memory, slot: PoolSlot) -> Request {
        let mut r = Request::new(memory);
        r.pool = Some(slot);
        r
    }

    /// This request's number.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// A value of the driver's choosing carried with the request (KMDF's
    /// request context, reduced to one word). Starts at 0.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// Set the driver's value carried with the request.
    pub fn set_tag(&mut self, tag: u64) {
        self.tag = tag;
    }

    /// The request's buffer.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The request's buffer, to fill before an OUT send.
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    /// Make the request ready for another send: clears the buffer's
    /// contents and the tag. (Holding a `Request` already proves it is not
    /// in flight; this only resets what the last send left behind.)
    ///
    /// KMDF: `WdfRequestReuse`.
    pub fn reuse(&mut self) {
        self.memory.clear();
        self.tag = 0;
    }

    /// Take the buffer out, dissolving the request. A pooled request's
    /// pool gets a fresh heap buffer of the same capacity in its place.
    pub fn into_memory(mut self) -> Memory {
        let cap = self.memory.capacity();
        std::mem::replace(&mut self.memory, Memory::new(cap))
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(slot) = self.pool.take() {
            let memory = std::mem::replace(
                &mut self.memory,
                Memory::from_buffer(crate::backend::Buffer::new(0)),
            );
            slot.give_back(memory);
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("tag", &self.tag)
            .field("memory", &self.memory)
            .field("pooled", &self.pool.is_some())
            .finish()
    }
}

/// A finished request: how it ended, how many bytes moved, and the request
/// itself, handed back for reuse.
///
/// Every sent request produces exactly one `Completion`, whether it
/// succeeded, failed, timed out, was cancelled or the device went away.
///
/// KMDF: the completion routine's `WDF_REQUEST_COMPLETION_PARAMS` /
/// `WDF_USB_REQUEST_COMPLETION_PARAMS`.
#[must_use = "a completion carries the request back; drop it to return a pooled request"]
pub struct Completion {
    pub(crate) status: Status,
    pub(crate) bytes: usize,
    pub(crate) request: Request,
}

impl Completion {
    /// How the request ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Bytes that moved on the bus, also when the status is not success
    /// (a cancelled or timed-out transfer may have moved some first).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// For an IN request, the bytes received; for an OUT request, the bytes
    /// that were sent (the first [`bytes`](Self::bytes) of the buffer).
    pub fn data(&self) -> &[u8] {
        let s = self.request.memory.as_slice();
        &s[..self.bytes.min(s.len())]
    }

    /// The request, for inspection.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Take the request back for the next send.
    pub fn into_request(self) -> Request {
        self.request
    }

    /// `Ok(bytes)` on success, the status otherwise.
    ///
    /// # Errors
    /// The completion's [`Status`] when it is not [`Status::Success`].
    pub fn result(&self) -> Result<usize, Status> {
        match self.status {
            Status::Success => Ok(self.bytes),
            other => Err(other),
        }
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("status", &self.status)
            .field("bytes", &self.bytes)
            .field("request", &self.request.id)
            .finish()
    }
}
