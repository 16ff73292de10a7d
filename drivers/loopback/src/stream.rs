//! Pipelined transfers: a pool of requests, `depth` of them in flight,
//! each resent from its completion routine until the total has moved.

use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use usbdf::{
    Bulk, Completion, CompletionRoutine, In, Out, Pipe, Request, SendError, SendOptions, Status,
    Timeout,
};

use crate::{LoopbackError, Pattern};

/// How much to move and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Bytes to move in all.
    pub total_bytes: usize,
    /// Bytes per request (a multiple of the max packet size for reads).
    pub transfer_len: usize,
    /// Requests kept in flight.
    pub depth: usize,
    /// The whole run's time limit; past it the requests are cancelled.
    pub timeout: Timeout,
}

impl StreamConfig {
    /// `total_bytes` in requests of `transfer_len`, `depth` at a time, 30 s limit.
    pub fn new(total_bytes: usize, transfer_len: usize, depth: usize) -> StreamConfig {
        StreamConfig {
            total_bytes,
            transfer_len,
            depth,
            timeout: Timeout::After(Duration::from_secs(30)),
        }
    }

    /// Set the time limit.
    pub fn timeout(mut self, timeout: Timeout) -> StreamConfig {
        self.timeout = timeout;
        self
    }
}

/// What a stream moved and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    /// Bytes moved.
    pub bytes: u64,
    /// From the first send to the last completion.
    pub elapsed: Duration,
}

impl Throughput {
    /// Bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

type Submit =
    Box<dyn Fn(Request, usize, &CompletionRoutine) -> Result<(), SendError> + Send + Sync>;

struct State {
    /// Bytes sent, or asked for and not known to be short.
    issued: usize,
    moved: u64,
    outstanding: usize,
    error: Option<LoopbackError>,
    finished_at: Option<Instant>,
}

struct Inner {
    cfg: StreamConfig,
    mps: usize,
    /// Writes: the data of a full request; reads: empty.
    fill: Vec<u8>,
    check: Option<Pattern>,
    /// Reads: the pattern of a full request, to compare against.
    expected: Vec<u8>,
    submit: Submit,
    abort: Box<dyn Fn() + Send + Sync>,
    routine: OnceLock<CompletionRoutine>,
    state: Mutex<State>,
    done: Condvar,
}

/// A running stream; [`wait`](Self::wait) for its result.
pub(crate) struct Stream {
    inner: Arc<Inner>,
    started: Instant,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next request's length, counted as issued.
    fn next_len(&self, st: &mut State) -> Option<usize> {
        if st.error.is_some() || st.issued >= self.cfg.total_bytes {
            return None;
        }
        let mut len = self.cfg.transfer_len.min(self.cfg.total_bytes - st.issued);
        if self.fill.is_empty() {
            len = len.div_ceil(self.mps) * self.mps;
        }
        st.issued += len;
        st.outstanding += 1;
        Some(len)
    }

    fn send(&self, mut req: Request, len: usize) {
        req.reuse();
        req.set_tag(len as u64);
        if !self.fill.is_empty() && req.memory_mut().set(&self.fill[..len]).is_err() {
            return self.fail(LoopbackError::InvalidArgument(
                "transfer_len exceeds the buffers",
            ));
        }
        let Some(routine) = self.routine.get() else {
            return;
        };
        if let Err(e) = (self.submit)(req, len, routine) {
            self.fail(e.into());
        }
    }

    fn fail(&self, e: LoopbackError) {
        let mut st = self.lock();
        st.outstanding -= 1;
        st.error.get_or_insert(e);
        self.finish(&mut st);
    }

    fn finish(&self, st: &mut State) {
        if st.outstanding == 0 {
            st.finished_at.get_or_insert_with(Instant::now);
            self.done.notify_all();
        }
    }

    fn completed(&self, c: Completion) {
        let mut st = self.lock();
        st.outstanding -= 1;
        let asked = c.request().tag() as usize;
        match c.status() {
            Status::Success => {
                st.moved += c.bytes() as u64;
                if self.fill.is_empty() {
                    // A short read: ask for the rest in a later request.
                    st.issued -= asked.saturating_sub(c.bytes());
                }
                if let Some(p) = self.check {
                    // A slice compare first: the byte-wise check is slow.
                    if self.expected.get(..c.bytes()) != Some(c.data()) {
                        let m = p
                            .check(c.data(), self.mps)
                            .err()
                            .unwrap_or(crate::Mismatch {
                                offset: c.bytes(),
                                expected: 0,
                                found: 0,
                            });
                        st.error.get_or_insert(m.into());
                    }
                }
            }
            s => {
                st.error.get_or_insert(LoopbackError::Transfer(s));
            }
        }
        let next = self.next_len(&mut st);
        self.finish(&mut st);
        drop(st);
        if let Some(len) = next {
            self.send(c.into_request(), len);
        }
    }
}

impl Stream {
    fn start(
        cfg: &StreamConfig,
        mps: usize,
        fill: Vec<u8>,
        check: Option<Pattern>,
        pool: usbdf::RequestPool,
        submit: Submit,
        abort: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Stream, LoopbackError> {
        if cfg.depth == 0 || cfg.transfer_len == 0 || cfg.total_bytes == 0 {
            return Err(LoopbackError::InvalidArgument("zero depth or length"));
        }
        let expected = check
            .map(|p| p.generate(cfg.transfer_len, mps))
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            cfg: *cfg,
            mps: mps.max(1),
            fill,
            check,
            expected,
            submit,
            abort,
            routine: OnceLock::new(),
            state: Mutex::new(State {
                issued: 0,
                moved: 0,
                outstanding: 0,
                error: None,
                finished_at: None,
            }),
            done: Condvar::new(),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let routine: CompletionRoutine = Arc::new(move |c| {
            if let Some(inner) = weak.upgrade() {
                inner.completed(c);
            }
        });
        let _ = inner.routine.set(routine);
        let started = Instant::now();
        for _ in 0..cfg.depth {
            let Some(req) = pool.take() else { break };
            let Some(len) = inner.next_len(&mut inner.lock()) else {
                break;
            };
            inner.send(req, len);
        }
        Ok(Stream { inner, started })
    }

    /// Wait for the stream to end.
    pub(crate) fn wait(self) -> Result<Throughput, LoopbackError> {
        let deadline = crate::deadline(self.inner.cfg.timeout);
        let mut st = self.inner.lock();
        while st.outstanding > 0 {
            let left = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if left.is_zero() {
                drop(st);
                (self.inner.abort)();
                return Err(LoopbackError::TimedOut);
            }
            st = self
                .inner
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        let end = st.finished_at.unwrap_or_else(Instant::now);
        Ok(Throughput {
            bytes: st.moved,
            elapsed: end - self.started,
        })
    }
}

/// Read `cfg.total_bytes`, checking each transfer against `check`.
pub(crate) fn read(
    pipe: &Pipe<Bulk, In>,
    cfg: &StreamConfig,
    check: Option<Pattern>,
) -> Result<Stream, LoopbackError> {
    let mps = pipe.info().max_packet_size;
    if cfg.transfer_len % mps.max(1) != 0 {
        return Err(LoopbackError::InvalidArgument(
            "read transfer_len must be a multiple of the max packet size",
        ));
    }
    let (p, a) = (pipe.clone(), pipe.clone());
    Stream::start(
        cfg,
        mps,
        Vec::new(),
        check,
        pipe.request_pool(cfg.depth, cfg.transfer_len),
        Box::new(move |req, len, r| p.read_with(req, len, &SendOptions::new(), r).map(drop)),
        Box::new(move || drop(a.abort(Timeout::millis(1000)))),
    )
}

/// Write `cfg.total_bytes` of `pattern`, each transfer from offset 0.
pub(crate) fn write(
    pipe: &Pipe<Bulk, Out>,
    cfg: &StreamConfig,
    pattern: Pattern,
) -> Result<Stream, LoopbackError> {
    let mps = pipe.info().max_packet_size;
    let (p, a) = (pipe.clone(), pipe.clone());
    Stream::start(
        cfg,
        mps,
        pattern.generate(cfg.transfer_len, mps),
        None,
        pipe.request_pool(cfg.depth, cfg.transfer_len),
        Box::new(move |req, _, r| p.write_with(req, &SendOptions::new(), r).map(drop)),
        Box::new(move || drop(a.abort(Timeout::millis(1000)))),
    )
}
