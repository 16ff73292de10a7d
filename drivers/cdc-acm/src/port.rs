//! The data pipes as byte streams: [`AcmReader`] (bulk IN) and [`AcmWriter`] (bulk OUT),
//! each both `std::io` (blocking, with a timeout) and `futures::io` (on usbdf's
//! [`Sent`] futures, any executor).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};
use usbdf::{
    Bulk, Completion, In, Out, Pipe, Request, SendError, SendOptions, Sent, Status, Timeout,
};

use crate::error::AcmError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is left of `timeout` at `deadline` (`None` once it has passed).
fn remaining(deadline: Option<Instant>) -> Option<Timeout> {
    match deadline {
        None => Some(Timeout::Infinite),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then_some(Timeout::After(left))
        }
    }
}

fn deadline(timeout: Timeout) -> Option<Instant> {
    timeout
        .duration()
        .and_then(|d| Instant::now().checked_add(d))
}

/// The read half: bytes from the device's bulk IN endpoint.
///
/// Cheap to clone; clones share one stream (one read at a time, the others wait).
///
/// # Timeouts lose nothing
/// A blocking [`read`](io::Read::read) sends one read of the configured length (a whole
/// number of packets) and waits for at most the read timeout. At the deadline usbdf
/// cancels it; the completion carries every byte that moved before the cancel took effect,
/// and those are returned (a read returns `TimedOut` only when no byte came). Bytes the
/// device sends later stay queued on the device and come with the next read. When a
/// transfer brings more bytes than the caller's buffer holds, the rest is kept here and
/// returned first by the next read (sync or async).
///
/// An async read in progress (a [`poll_read`](AsyncRead::poll_read) that returned
/// `Pending`) stays in flight when its future is dropped, and its data comes with the next
/// read; dropping the `AcmReader` (every clone) cancels it and its bytes are lost.
///
/// # Errors
/// See [`AcmError`] for the `io::ErrorKind`s. A stall clears itself: the read that saw it
/// fails with [`AcmError::Stall`], the next one runs on a reset pipe. After an unplug
/// every read fails at once with [`AcmError::Disconnected`].
#[derive(Clone)]
pub struct AcmReader {
    pipe: Pipe<Bulk, In>,
    state: Arc<Mutex<ReadState>>,
}

struct ReadState {
    /// Bytes received and not yet handed out.
    leftover: VecDeque<u8>,
    /// An async read in flight.
    pending: Option<Sent>,
    /// The request to send next (reused).
    spare: Option<Request>,
    /// Bytes per read transfer (a multiple of the max packet size).
    read_len: usize,
    timeout: Timeout,
}

/// What one completed read gave.
enum ReadOutcome {
    /// Bytes were copied into the caller's buffer.
    Data(usize),
    /// A zero-length packet: nothing for the caller, read again.
    Empty,
}

impl AcmReader {
    pub(crate) fn new(pipe: Pipe<Bulk, In>, read_packets: usize, timeout: Timeout) -> AcmReader {
        let mps = pipe.info().max_packet_size.max(1);
        let read_len = mps.saturating_mul(read_packets.max(1));
        AcmReader {
            pipe,
            state: Arc::new(Mutex::new(ReadState {
                leftover: VecDeque::new(),
                pending: None,
                spare: None,
                read_len,
                timeout,
            })),
        }
    }

    /// The bulk IN pipe.
    pub fn pipe(&self) -> &Pipe<Bulk, In> {
        &self.pipe
    }

    /// Set the timeout of blocking reads (`Timeout::Infinite` blocks until data comes).
    pub fn set_timeout(&self, timeout: Timeout) {
        lock(&self.state).timeout = timeout;
    }

    /// The timeout of blocking reads.
    pub fn timeout(&self) -> Timeout {
        lock(&self.state).timeout
    }

    /// Bytes received and waiting in the internal buffer.
    pub fn buffered(&self) -> usize {
        lock(&self.state).leftover.len()
    }

    fn address(&self) -> u8 {
        self.pipe.info().address
    }

    /// Send one read (reusing the spare request).
    fn send(&self, st: &mut ReadState) -> Result<Sent, AcmError> {
        let len = st.read_len;
        let request = match st.spare.take() {
            Some(mut r) => {
                r.reuse();
                r
            }
            None => Request::new(self.pipe.allocate(len)),
        };
        self.pipe
            .read(request, len, &SendOptions::new())
            .map_err(|e| self.refused(st, e))
    }

    fn refused(&self, st: &mut ReadState, e: SendError) -> AcmError {
        let kind = e.kind();
        st.spare = Some(e.into_request());
        let err = AcmError::from_send(self.address(), kind);
        self.recover(&err);
        err
    }

    /// Clear a halt so the next transfer runs (nothing of ours is in flight here).
    fn recover(&self, err: &AcmError) {
        if matches!(err, AcmError::Stall { .. } | AcmError::Transfer { .. })
            && self.pipe.halted().is_some()
        {
            if let Err(e) = self.pipe.reset() {
                tracing::debug!(error = %e, "cdc-acm: clearing the bulk IN halt failed");
            }
        }
    }

    /// Take what a completed read brought: bytes first (whatever the status), else the
    /// status as an error.
    fn complete(
        &self,
        st: &mut ReadState,
        c: Completion,
        buf: &mut [u8],
    ) -> Result<ReadOutcome, AcmError> {
        let status = c.status();
        let data = c.data();
        if !data.is_empty() {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            st.leftover.extend(&data[n..]);
            st.spare = Some(c.into_request());
            return Ok(ReadOutcome::Data(n));
        }
        st.spare = Some(c.into_request());
        match status {
            Status::Success => Ok(ReadOutcome::Empty),
            s => {
                let err = AcmError::from_status(self.address(), s);
                self.recover(&err);
                Err(err)
            }
        }
    }

    fn take_leftover(st: &mut ReadState, buf: &mut [u8]) -> usize {
        let n = st.leftover.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(st.leftover.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// A blocking read with an explicit timeout (the `io::Read` impl uses the configured
    /// one). Returns at least one byte, or an error.
    ///
    /// # Errors
    /// [`AcmError::TimedOut`] when no byte came in time; the others as for the type.
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Timeout) -> Result<usize, AcmError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = lock(&self.state);
        let n = Self::take_leftover(&mut st, buf);
        if n > 0 {
            return Ok(n);
        }
        let deadline = deadline(timeout);
        loop {
            let sent = match st.pending.take() {
                Some(sent) => sent,
                None => self.send(&mut st)?,
            };
            let Some(left) = remaining(deadline) else {
                // Out of time before waiting: cancel and keep whatever had come.
                let c = {
                    sent.cancel();
                    sent.wait(Timeout::Infinite)
                };
                return match self.complete(&mut st, c, buf)? {
                    ReadOutcome::Data(n) => Ok(n),
                    ReadOutcome::Empty => Err(AcmError::TimedOut),
                };
            };
            let c = sent.wait(left);
            match self.complete(&mut st, c, buf) {
                Ok(ReadOutcome::Data(n)) => return Ok(n),
                Ok(ReadOutcome::Empty) => continue,
                // Cancelled by our own deadline is a timeout, not a cancel.
                Err(AcmError::Cancelled) if remaining(deadline).is_none() => {
                    return Err(AcmError::TimedOut)
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl io::Read for AcmReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = self.timeout();
        Ok(self.read_timeout(buf, timeout)?)
    }
}

impl io::Read for &AcmReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = self.timeout();
        Ok(self.read_timeout(buf, timeout)?)
    }
}

impl AsyncRead for AcmReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut st = lock(&this.state);
        let n = Self::take_leftover(&mut st, buf);
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        loop {
            let mut sent = match st.pending.take() {
                Some(sent) => sent,
                None => match this.send(&mut st) {
                    Ok(sent) => sent,
                    Err(e) => return Poll::Ready(Err(e.into())),
                },
            };
            match Pin::new(&mut sent).poll(cx) {
                Poll::Pending => {
                    st.pending = Some(sent);
                    return Poll::Pending;
                }
                Poll::Ready(c) => match this.complete(&mut st, c, buf) {
                    Ok(ReadOutcome::Data(n)) => return Poll::Ready(Ok(n)),
                    Ok(ReadOutcome::Empty) => continue,
                    Err(e) => return Poll::Ready(Err(e.into())),
                },
            }
        }
    }
}

/// The write half: bytes to the device's bulk OUT endpoint.
///
/// Cheap to clone; clones share one stream (one write at a time).
///
/// A blocking [`write`](io::Write::write) sends up to the configured maximum as one
/// transfer (a ZLP follows a whole number of packets) and waits for at most the write
/// timeout; it returns the bytes the device took, which on a timeout may be fewer than
/// sent (`TimedOut` only when none were). [`flush`](io::Write::flush) waits for an async
/// write still in flight.
///
/// As `AsyncWrite`, [`poll_write`](AsyncWrite::poll_write) copies the bytes into a request,
/// sends it and returns at once (one write in flight; the next `poll_write` or
/// [`poll_flush`](AsyncWrite::poll_flush) waits for it and reports its error, like a
/// buffered file).
#[derive(Clone)]
pub struct AcmWriter {
    pipe: Pipe<Bulk, Out>,
    state: Arc<Mutex<WriteState>>,
}

struct WriteState {
    pending: Option<Sent>,
    spare: Option<Request>,
    max_write: usize,
    timeout: Timeout,
}

impl AcmWriter {
    pub(crate) fn new(pipe: Pipe<Bulk, Out>, max_write: usize, timeout: Timeout) -> AcmWriter {
        AcmWriter {
            pipe,
            state: Arc::new(Mutex::new(WriteState {
                pending: None,
                spare: None,
                max_write: max_write.max(1),
                timeout,
            })),
        }
    }

    /// The bulk OUT pipe.
    pub fn pipe(&self) -> &Pipe<Bulk, Out> {
        &self.pipe
    }

    /// Set the timeout of blocking writes.
    pub fn set_timeout(&self, timeout: Timeout) {
        lock(&self.state).timeout = timeout;
    }

    /// The timeout of blocking writes.
    pub fn timeout(&self) -> Timeout {
        lock(&self.state).timeout
    }

    fn address(&self) -> u8 {
        self.pipe.info().address
    }

    fn send(&self, st: &mut WriteState, data: &[u8]) -> Result<(Sent, usize), AcmError> {
        let n = data.len().min(st.max_write);
        let mut request = match st.spare.take() {
            Some(r) if r.memory().capacity() >= n => r,
            _ => Request::new(self.pipe.allocate(st.max_write)),
        };
        request.reuse();
        if request.memory_mut().set(&data[..n]).is_err() {
            return Err(AcmError::Send {
                endpoint: self.address(),
                kind: usbdf::SendErrorKind::BufferTooSmall {
                    len: n,
                    capacity: request.memory().capacity(),
                },
            });
        }
        match self.pipe.write(request, &SendOptions::new()) {
            Ok(sent) => Ok((sent, n)),
            Err(e) => {
                let kind = e.kind();
                st.spare = Some(e.into_request());
                let err = AcmError::from_send(self.address(), kind);
                self.recover(&err);
                Err(err)
            }
        }
    }

    fn recover(&self, err: &AcmError) {
        if matches!(err, AcmError::Stall { .. } | AcmError::Transfer { .. })
            && self.pipe.halted().is_some()
        {
            if let Err(e) = self.pipe.reset() {
                tracing::debug!(error = %e, "cdc-acm: clearing the bulk OUT halt failed");
            }
        }
    }

    /// The bytes a completed write moved, or its error.
    fn complete(&self, st: &mut WriteState, c: Completion) -> Result<usize, AcmError> {
        let (status, bytes) = (c.status(), c.bytes());
        st.spare = Some(c.into_request());
        match status {
            Status::Success => Ok(bytes),
            _ if bytes > 0 && matches!(status, Status::TimedOut | Status::Cancelled) => Ok(bytes),
            s => {
                let err = AcmError::from_status(self.address(), s);
                self.recover(&err);
                Err(err)
            }
        }
    }

    /// A blocking write with an explicit timeout.
    ///
    /// # Errors
    /// [`AcmError::TimedOut`] when the device took no byte in time; the others as for
    /// [`AcmReader`].
    pub fn write_timeout(&self, data: &[u8], timeout: Timeout) -> Result<usize, AcmError> {
        let mut st = lock(&self.state);
        let deadline = deadline(timeout);
        if let Some(sent) = st.pending.take() {
            let c = sent.wait(remaining(deadline).unwrap_or(Timeout::millis(1)));
            self.complete(&mut st, c)?;
        }
        if data.is_empty() {
            return Ok(0);
        }
        let (sent, _) = self.send(&mut st, data)?;
        let Some(left) = remaining(deadline) else {
            sent.cancel();
            let c = sent.wait(Timeout::Infinite);
            return match self.complete(&mut st, c)? {
                0 => Err(AcmError::TimedOut),
                n => Ok(n),
            };
        };
        let c = sent.wait(left);
        match self.complete(&mut st, c) {
            Ok(n) => Ok(n),
            Err(AcmError::Cancelled) if remaining(deadline).is_none() => Err(AcmError::TimedOut),
            Err(e) => Err(e),
        }
    }

    fn poll_pending(&self, st: &mut WriteState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(mut sent) = st.pending.take() {
            match Pin::new(&mut sent).poll(cx) {
                Poll::Pending => {
                    st.pending = Some(sent);
                    return Poll::Pending;
                }
                Poll::Ready(c) => {
                    if let Err(e) = self.complete(st, c) {
                        return Poll::Ready(Err(e.into()));
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl io::Write for AcmWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl io::Write for &AcmWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let timeout = self.timeout();
        Ok(self.write_timeout(buf, timeout)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        let timeout = self.timeout();
        self.write_timeout(&[], timeout)?;
        Ok(())
    }
}

impl AsyncWrite for AcmWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        match this.poll_pending(&mut st, cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.send(&mut st, buf) {
            Ok((sent, n)) => {
                st.pending = Some(sent);
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut st = lock(&this.state);
        this.poll_pending(&mut st, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl std::fmt::Debug for AcmReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmReader")
            .field("pipe", &self.pipe)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl std::fmt::Debug for AcmWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmWriter")
            .field("pipe", &self.pipe)
            .finish()
    }
}
