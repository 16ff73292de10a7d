//! The race soak: random interleavings of send, cancel, timeout and completion on several
//! pipes from several threads, with byte accounting.
//!
//! One engine for the simulator (`framework/tests/soak_races.rs` includes this file with
//! `#[path]`, so it depends on `usbdf` and `std` only) and for the real gadgets in the VM
//! (`tests/tests/vm_soak.rs`). It drives a Loopback pair (random data out, echo back) and a
//! SourceSink pair (pattern 1 both ways) at once; each pipe is a lane fed by one or more
//! threads. A round is one request with a random fate:
//!
//! | op | what |
//! |---|---|
//! | plain | sent with no timeout; completes when the device answers |
//! | timeout | sent with a short `SendOptions::timeout` (50 µs – 3 ms) |
//! | cancel | sent, cancelled by the sending thread after a random spin (sometimes twice) |
//! | handoff | sent, its `CancelHandle` handed to a canceller thread that cancels it later |
//!
//! Checks: every request completes exactly once; the data of a pipe, concatenated in send
//! order (each request's [`Completion::data`], whatever its status), is the device's stream:
//! for Loopback the IN stream equals the OUT stream byte for byte (0 lost, 0 duplicated,
//! order kept); for SourceSink every IN byte matches pattern 1 and no OUT transfer stalls
//! (the gadget halts OUT on a wrong byte); a `Success` moved every byte of an OUT request;
//! cancels that lose the race complete `Success` ("races won by completion").
//!
//! Timing is not reproducible (threads), the choices are: every thread draws its ops and
//! lengths from a generator seeded by the soak seed, printed at the start; replay with
//! `USBDF_SOAK_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use usbdf::{
    Bulk, CancelHandle, CancelOutcome, Completion, CompletionRoutine, In, Out, Pipe, Request,
    SendOptions, Status, Timeout,
};

/// A small seeded generator (splitmix64), the same on every platform.
#[derive(Debug, Clone)]
pub struct SoakRng(u64);

impl SoakRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SoakRng {
        SoakRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// The seed: `USBDF_SOAK_SEED` if set (decimal or 0x hex), else from the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var("USBDF_SOAK_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("USBDF_SOAK_SEED={s:?} is not a number"))
        }
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

/// `USBDF_SOAK_ROUNDS` if set, else `default`.
pub fn rounds_from_env(default: u64) -> u64 {
    std::env::var("USBDF_SOAK_ROUNDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Seed of every choice.
    pub seed: u64,
    /// Rounds (requests) to send, over all lanes; more may run while the Loopback IN lane
    /// catches up with the data.
    pub rounds: u64,
    /// Most requests in flight per lane.
    pub window: usize,
    /// Longest request, bytes.
    pub max_len: usize,
    /// The max packet size of the bulk pipes.
    pub max_packet: usize,
    /// How long the whole soak may take before it is declared hung (after `send_for`, if
    /// set).
    pub deadline: Duration,
    /// Stop sending new rounds after this long even if `rounds` is not reached (time-bound
    /// soaks: `cargo xtask soak`).
    pub send_for: Option<Duration>,
}

/// Counts of one soak run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoakReport {
    /// The seed.
    pub seed: u64,
    /// Requests sent (rounds), all lanes.
    pub rounds: u64,
    /// Completions delivered (must equal `rounds`).
    pub completions: u64,
    /// Completions that arrived a second time for the same request (must be 0).
    pub duplicates: u64,
    /// Cancels issued (first calls).
    pub cancels: u64,
    /// Requests that ended `Cancelled`.
    pub cancelled: u64,
    /// Requests sent with a timeout.
    pub timeouts_set: u64,
    /// Requests that ended `TimedOut`.
    pub timed_out: u64,
    /// Cancelled or timed-out requests that had moved some bytes first.
    pub partial: u64,
    /// Cancels and timeouts that lost to the device: the request completed `Success`.
    pub races_won_by_completion: u64,
    /// `CancelOutcome::NotPending` seen (cancel after completion).
    pub not_pending: u64,
    /// `CancelOutcome::AlreadyRequested` seen (double cancel).
    pub already_requested: u64,
    /// Bytes compared against the expected stream.
    pub bytes_verified: u64,
    /// Bytes of the Loopback OUT stream missing from (or extra in) the echo (must be 0).
    pub bytes_lost: u64,
    /// Problems found; empty on a pass.
    pub failures: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl SoakReport {
    /// Add `other`'s counts to these.
    pub fn add(&mut self, other: &SoakReport) {
        self.rounds += other.rounds;
        self.completions += other.completions;
        self.duplicates += other.duplicates;
        self.cancels += other.cancels;
        self.cancelled += other.cancelled;
        self.timeouts_set += other.timeouts_set;
        self.timed_out += other.timed_out;
        self.partial += other.partial;
        self.races_won_by_completion += other.races_won_by_completion;
        self.not_pending += other.not_pending;
        self.already_requested += other.already_requested;
        self.bytes_verified += other.bytes_verified;
        self.bytes_lost += other.bytes_lost;
        self.failures.extend(other.failures.iter().cloned());
        self.elapsed += other.elapsed;
    }

    /// Panic with the seed and every failure unless the run passed.
    pub fn assert_ok(&self) {
        assert!(
            self.failures.is_empty()
                && self.duplicates == 0
                && self.bytes_lost == 0
                && self.completions == self.rounds,
            "soak failed (replay with USBDF_SOAK_SEED={}): {self}\nfailures:\n  {}",
            self.seed,
            self.failures.join("\n  ")
        );
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} | rounds {} completions {} duplicates {} | cancels {} (cancelled {}, \
             not-pending {}, already-requested {}) | timeouts set {} (timed out {}) | \
             partial {} | races won by completion {} | bytes verified {} lost {} | {:.2?}",
            self.seed,
            self.rounds,
            self.completions,
            self.duplicates,
            self.cancels,
            self.cancelled,
            self.not_pending,
            self.already_requested,
            self.timeouts_set,
            self.timed_out,
            self.partial,
            self.races_won_by_completion,
            self.bytes_verified,
            self.bytes_lost,
            self.elapsed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain = 0,
    Timeout = 1,
    Cancel = 2,
    Handoff = 3,
}

impl Op {
    fn from_tag(tag: u64) -> Op {
        match tag & 3 {
            0 => Op::Plain,
            1 => Op::Timeout,
            2 => Op::Cancel,
            _ => Op::Handoff,
        }
    }
}

struct Record {
    status: Status,
    bytes: usize,
    requested: usize,
    data: Vec<u8>,
}

/// One pipe's bookkeeping: tags in send order, completions by tag, the in-flight window.
struct Lane {
    name: &'static str,
    is_in: bool,
    /// Next sequence number; held across the send so tag order is the pipe's send order.
    next: Mutex<u64>,
    records: Mutex<BTreeMap<u64, Record>>,
    duplicates: AtomicU64,
    in_flight: Mutex<usize>,
    changed: Condvar,
    bytes: AtomicU64,
    /// Cancelled or timed-out sends that completed `Success` anyway.
    races: AtomicU64,
}

impl Lane {
    fn new(name: &'static str, is_in: bool) -> Arc<Lane> {
        Arc::new(Lane {
            name,
            is_in,
            next: Mutex::new(0),
            records: Mutex::new(BTreeMap::new()),
            duplicates: AtomicU64::new(0),
            in_flight: Mutex::new(0),
            changed: Condvar::new(),
            bytes: AtomicU64::new(0),
            races: AtomicU64::new(0),
        })
    }

    fn routine(self: &Arc<Lane>) -> CompletionRoutine {
        let lane = self.clone();
        Arc::new(move |c: Completion| lane.complete(c))
    }

    fn complete(&self, c: Completion) {
        let tag = c.request().tag();
        let rec = Record {
            status: c.status(),
            bytes: c.bytes(),
            requested: c.request().memory().len(),
            data: c.data().to_vec(),
        };
        self.bytes.fetch_add(c.bytes() as u64, Ordering::SeqCst);
        if Op::from_tag(tag) != Op::Plain && c.status() == Status::Success {
            self.races.fetch_add(1, Ordering::SeqCst);
        }
        {
            let mut g = self.records.lock().unwrap();
            if g.insert(tag >> 2, rec).is_some() {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut n = self.in_flight.lock().unwrap();
        *n -= 1;
        self.changed.notify_all();
    }

    /// Wait for room in the window; false if `stop` was raised meanwhile.
    fn acquire(&self, window: usize, stop: &AtomicBool, deadline: Instant) -> bool {
        let mut n = self.in_flight.lock().unwrap();
        while *n >= window {
            if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                return false;
            }
            n = self
                .changed
                .wait_timeout(n, Duration::from_millis(20))
                .unwrap()
                .0;
        }
        *n += 1;
        true
    }

    fn release_unsent(&self) {
        let mut n = self.in_flight.lock().unwrap();
        *n -= 1;
        self.changed.notify_all();
    }

    /// Wait until nothing is in flight; false at the deadline.
    fn wait_idle(&self, deadline: Instant) -> bool {
        let mut n = self.in_flight.lock().unwrap();
        while *n > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            n = self.changed.wait_timeout(n, deadline - now).unwrap().0;
        }
        true
    }

    fn in_flight(&self) -> usize {
        *self.in_flight.lock().unwrap()
    }
}

/// The pipes a soak drives.
pub struct SoakPipes {
    /// Loopback bulk OUT.
    pub lb_out: Pipe<Bulk, Out>,
    /// Loopback bulk IN.
    pub lb_in: Pipe<Bulk, In>,
    /// SourceSink (pattern 1) bulk OUT.
    pub ss_out: Pipe<Bulk, Out>,
    /// SourceSink (pattern 1) bulk IN.
    pub ss_in: Pipe<Bulk, In>,
}

/// Pattern 1 of SourceSink: byte `i` of a gadget request is `(i % max_packet) % 63`.
pub fn pattern_byte(i: usize, max_packet: usize) -> u8 {
    ((i % max_packet) % 63) as u8
}

#[derive(Default)]
struct Counters {
    cancels: AtomicU64,
    timeouts_set: AtomicU64,
    not_pending: AtomicU64,
    already_requested: AtomicU64,
}

enum Pipes<'a> {
    Out(&'a Pipe<Bulk, Out>),
    In(&'a Pipe<Bulk, In>),
}

/// Byte `j` of Loopback OUT request `seq`: a hash of both, so a lost, repeated or reordered
/// run of the echo shows up wherever it lands.
fn request_byte(seed: u64, seq: u64, j: usize) -> u8 {
    let mut z = (seq << 24 ^ j as u64)
        .wrapping_add(seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^= z >> 29;
    (z.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 56) as u8
}

struct Worker<'a> {
    lane: Arc<Lane>,
    pipe: Pipes<'a>,
    rng: SoakRng,
    routine: CompletionRoutine,
    handoff: mpsc::Sender<(CancelHandle, u64)>,
    counters: &'a Counters,
    cfg: &'a SoakConfig,
    /// SourceSink OUT writes pattern data, Loopback OUT numbered-stream data.
    pattern_out: bool,
}

impl Worker<'_> {
    /// One round: returns false when the window never opened (stop or deadline).
    fn round(&mut self, stop: &AtomicBool, deadline: Instant) -> bool {
        if !self.lane.acquire(self.cfg.window, stop, deadline) {
            return false;
        }
        let op = match self.rng.range(0, 9) {
            0..=3 => Op::Plain,
            4..=5 => Op::Timeout,
            6..=7 => Op::Cancel,
            _ => Op::Handoff,
        };
        let mps = self.cfg.max_packet;
        let len = if self.lane.is_in {
            mps * self.rng.range(1, (self.cfg.max_len / mps).max(1))
        } else {
            match self.rng.range(0, 3) {
                // whole packets (a ZLP follows), or any length
                0 => mps * self.rng.range(1, (self.cfg.max_len / mps).max(1)),
                _ => self.rng.range(1, self.cfg.max_len),
            }
        };
        let mut opts = SendOptions::new();
        if op == Op::Timeout {
            let us = self.rng.range(50, 3000) as u64;
            opts = opts.timeout(Duration::from_micros(us));
            self.counters.timeouts_set.fetch_add(1, Ordering::Relaxed);
        }
        let spin = self.rng.range(0, 400);
        let double = self.rng.range(0, 4) == 0;
        let mut req = Request::with_capacity(len);
        let handle = {
            let mut next = self.lane.next.lock().unwrap();
            let seq = *next;
            req.set_tag(seq << 2 | op as u64);
            let sent = match &self.pipe {
                Pipes::In(p) => p.read_with(req, len, &opts, &self.routine),
                Pipes::Out(p) => {
                    if self.pattern_out {
                        let data: Vec<u8> = (0..len).map(|i| pattern_byte(i, mps)).collect();
                        req.memory_mut().set(&data).unwrap();
                    } else {
                        let data: Vec<u8> = (0..len)
                            .map(|j| request_byte(self.cfg.seed, seq, j))
                            .collect();
                        req.memory_mut().set(&data).unwrap();
                    }
                    p.write_with(req, &opts, &self.routine)
                }
            };
            match sent {
                Ok(h) => {
                    *next += 1;
                    h
                }
                Err(e) => {
                    drop(next);
                    self.lane.release_unsent();
                    panic!("{}: send refused: {e:?}", self.lane.name);
                }
            }
        };
        match op {
            Op::Cancel => {
                for _ in 0..spin {
                    std::hint::spin_loop();
                }
                if spin % 3 == 0 {
                    std::thread::yield_now();
                }
                self.count_outcome(handle.cancel(), true);
                if double {
                    self.count_outcome(handle.cancel(), false);
                }
            }
            Op::Handoff => {
                let _ = self.handoff.send((handle, spin as u64));
            }
            Op::Plain | Op::Timeout => {}
        }
        true
    }

    fn count_outcome(&self, o: CancelOutcome, first: bool) {
        match o {
            CancelOutcome::Requested => {
                if first {
                    self.counters.cancels.fetch_add(1, Ordering::Relaxed);
                }
            }
            CancelOutcome::AlreadyRequested => {
                self.counters
                    .already_requested
                    .fetch_add(1, Ordering::Relaxed);
            }
            CancelOutcome::NotPending => {
                self.counters.not_pending.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Run the soak on `pipes`.
///
/// Loopback OUT data must come back on Loopback IN; the Loopback gadget must hold no stale
/// data when the soak starts (drain it first). Send no other traffic on these pipes meanwhile.
pub fn run(pipes: &SoakPipes, cfg: &SoakConfig) -> SoakReport {
    let start = Instant::now();
    let send_until = start + cfg.send_for.unwrap_or(cfg.deadline);
    let deadline = start + cfg.send_for.unwrap_or_default() + cfg.deadline;
    let lanes = [
        Lane::new("loopback OUT", false),
        Lane::new("loopback IN", true),
        Lane::new("sourcesink OUT", false),
        Lane::new("sourcesink IN", true),
    ];
    let counters = Counters::default();
    let out_done = AtomicBool::new(false);
    let never = AtomicBool::new(false);
    let (htx, hrx) = mpsc::channel::<(CancelHandle, u64)>();
    // rounds per worker thread: 2 on loopback OUT, 1 on loopback IN (runs until the echo is
    // all back), 1 on sourcesink OUT, 2 on sourcesink IN
    let per = (cfg.rounds / 5).max(1);

    let mut report = std::thread::scope(|s| {
        // the canceller: cancels handed-off requests after a small random spin
        let canceller = {
            let counters = &counters;
            s.spawn(move || {
                for (h, spin) in hrx {
                    for _ in 0..spin * 4 {
                        std::hint::spin_loop();
                    }
                    match h.cancel() {
                        CancelOutcome::Requested => {
                            counters.cancels.fetch_add(1, Ordering::Relaxed);
                        }
                        CancelOutcome::AlreadyRequested => {
                            counters.already_requested.fetch_add(1, Ordering::Relaxed);
                        }
                        CancelOutcome::NotPending => {
                            counters.not_pending.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };

        let mut threads = Vec::new();
        let specs: [(usize, u64); 6] = [(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (3, 6)];
        for (lane_ix, salt) in specs {
            let lane = lanes[lane_ix].clone();
            let htx = htx.clone();
            let counters = &counters;
            let out_done = &out_done;
            let never = &never;
            threads.push((
                lane_ix,
                s.spawn(move || {
                    let pipe = match lane_ix {
                        0 => Pipes::Out(&pipes.lb_out),
                        1 => Pipes::In(&pipes.lb_in),
                        2 => Pipes::Out(&pipes.ss_out),
                        _ => Pipes::In(&pipes.ss_in),
                    };
                    let routine = lane.routine();
                    let mut w = Worker {
                        lane,
                        pipe,
                        rng: SoakRng::new(cfg.seed ^ salt.wrapping_mul(0xA076_1D64_78BD_642F)),
                        routine,
                        handoff: htx,
                        counters,
                        cfg,
                        pattern_out: lane_ix == 2,
                    };
                    let mut done = 0u64;
                    if lane_ix == 1 {
                        while !out_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                            // keeps reading (the echo) until the OUT side is flushed
                            if !w.round(out_done, deadline) {
                                break;
                            }
                            done += 1;
                        }
                    } else {
                        while done < per && Instant::now() < send_until {
                            if !w.round(never, deadline) {
                                break;
                            }
                            done += 1;
                        }
                    }
                    done
                }),
            ));
        }
        drop(htx);

        let mut failures = Vec::new();
        let mut lb_in = None;
        for (lane_ix, t) in threads {
            if lane_ix == 1 {
                lb_in = Some(t);
                continue;
            }
            let _ = t
                .join()
                .map_err(|_| failures.push("a soak thread panicked".into()));
        }
        // every Loopback OUT request completed: flush the gadget's partial request with a
        // short write (its byte is part of the stream), then let IN catch up
        let lb_out = &lanes[0];
        if !lb_out.wait_idle(deadline) {
            failures.push(format!(
                "loopback OUT: {} requests still in flight at the deadline",
                lb_out.in_flight()
            ));
        }
        {
            let mut next = lb_out.next.lock().unwrap();
            let mut req = Request::with_capacity(1);
            req.memory_mut()
                .set(&[request_byte(cfg.seed, *next, 0)])
                .unwrap();
            req.set_tag(*next << 2);
            *next += 1;
            *lb_out.in_flight.lock().unwrap() += 1;
            if let Err(e) = pipes
                .lb_out
                .write_with(req, &SendOptions::new(), &lb_out.routine())
            {
                lb_out.release_unsent();
                failures.push(format!("flush write refused: {e:?}"));
            }
        }
        lb_out.wait_idle(deadline);
        let out_total = lb_out.bytes.load(Ordering::SeqCst);
        // wait for the echo: the IN thread keeps reading until told to stop
        let lb_in_lane = &lanes[1];
        loop {
            let got = lb_in_lane.bytes.load(Ordering::SeqCst);
            if got >= out_total || Instant::now() > deadline {
                break;
            }
            let g = lb_in_lane.in_flight.lock().unwrap();
            let _ = lb_in_lane
                .changed
                .wait_timeout(g, Duration::from_millis(20))
                .unwrap();
        }
        out_done.store(true, Ordering::SeqCst);
        if !matches!(lb_in.map(|t| t.join()), Some(Ok(_))) {
            failures.push("the loopback IN thread panicked".into());
        }
        // reads still waiting for data that will never come: cancel them
        if let Err(e) = pipes.lb_in.abort(Timeout::millis(5000)) {
            failures.push(format!("loopback IN abort: {e}"));
        }
        for lane in &lanes {
            if !lane.wait_idle(deadline + Duration::from_secs(5)) {
                failures.push(format!(
                    "{}: {} requests never completed",
                    lane.name,
                    lane.in_flight()
                ));
            }
        }
        let _ = canceller.join();
        let mut r = SoakReport {
            failures,
            ..SoakReport::default()
        };
        r.rounds = lanes.iter().map(|l| *l.next.lock().unwrap()).sum();
        r
    });

    // verification
    report.seed = cfg.seed;
    report.cancels = counters.cancels.load(Ordering::SeqCst);
    report.timeouts_set = counters.timeouts_set.load(Ordering::SeqCst);
    report.not_pending = counters.not_pending.load(Ordering::SeqCst);
    report.already_requested = counters.already_requested.load(Ordering::SeqCst);
    let mut streams: Vec<Vec<u8>> = Vec::new();
    for lane in &lanes {
        let recs = lane.records.lock().unwrap();
        let sent = *lane.next.lock().unwrap();
        report.completions += recs.len() as u64;
        report.duplicates += lane.duplicates.load(Ordering::SeqCst);
        if recs.len() as u64 != sent {
            let missing: Vec<u64> = (0..sent)
                .filter(|k| !recs.contains_key(k))
                .take(5)
                .collect();
            report.failures.push(format!(
                "{}: {} sent, {} completed (first missing seq {missing:?})",
                lane.name,
                sent,
                recs.len()
            ));
        }
        let mut stream = Vec::new();
        for (seq, rec) in recs.iter() {
            match rec.status {
                Status::Success => {
                    if !lane.is_in && rec.bytes != rec.requested {
                        report.failures.push(format!(
                            "{} seq {seq}: Success with {} of {} bytes",
                            lane.name, rec.bytes, rec.requested
                        ));
                    }
                }
                Status::Cancelled => {
                    report.cancelled += 1;
                    if rec.bytes > 0 {
                        report.partial += 1;
                    }
                }
                Status::TimedOut => {
                    report.timed_out += 1;
                    if rec.bytes > 0 {
                        report.partial += 1;
                    }
                }
                other => report.failures.push(format!(
                    "{} seq {seq}: unexpected status {other:?} ({} bytes)",
                    lane.name, rec.bytes
                )),
            }
            if rec.bytes > rec.requested {
                report.failures.push(format!(
                    "{} seq {seq}: {} bytes for a {}-byte request",
                    lane.name, rec.bytes, rec.requested
                ));
            }
            stream.extend_from_slice(&rec.data);
        }
        streams.push(stream);
    }
    report.races_won_by_completion = lanes.iter().map(|l| l.races.load(Ordering::SeqCst)).sum();

    // Loopback: the echo is the OUT stream
    let (out, inn) = (&streams[0], &streams[1]);
    if out != inn {
        let common = out
            .iter()
            .zip(inn.iter())
            .take_while(|(a, b)| a == b)
            .count();
        report.bytes_lost = out.len().abs_diff(inn.len()) as u64;
        if report.bytes_lost == 0 {
            report.bytes_lost = (out.len() - common) as u64;
        }
        report.failures.push(format!(
            "loopback: OUT stream {} bytes, echo {} bytes, first difference at byte {common}",
            out.len(),
            inn.len()
        ));
    }
    report.bytes_verified += (out.len() + inn.len()) as u64;
    // SourceSink IN: pattern 1 over the whole stream (gadget requests are whole packets)
    let ss_in = &streams[3];
    if let Some(k) = ss_in
        .iter()
        .enumerate()
        .position(|(k, b)| *b != pattern_byte(k, cfg.max_packet))
    {
        report
            .failures
            .push(format!("sourcesink IN: pattern broken at stream byte {k}"));
    }
    report.bytes_verified += (ss_in.len() + streams[2].len()) as u64;
    report.elapsed = start.elapsed();
    report
}
