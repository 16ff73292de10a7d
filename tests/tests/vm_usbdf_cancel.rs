//! Per-request cancel on real gadgets, with exact byte accounting.
//!
//! nusb only has `cancel_all`; usbdf builds per-request cancel on it
//! (`docs/design/cancellation.md`): the victim completes with the bytes that moved, every
//! other request keeps all its data and its order. These tests cancel one request out of a
//! live queue of eight, at a random point, hundreds of times, and check the data stream:
//!
//! * SourceSink IN: the concatenation of every read, in submission order, is a continuous
//!   pattern-1 stream (every byte checked at its offset in its gadget request);
//! * Loopback OUT: the device received exactly the first `bytes()` bytes of every write, in
//!   order (read back and compared byte for byte);
//! * Loopback IN: every echoed byte arrives exactly once, in order, across cancelled reads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use usbdf::{
    CancelHandle, CancelOutcome, Completion, CompletionRoutine, PipePolicy, Request, SendOptions,
    Sent, Status, Timeout, Zlp,
};

use usbdf_tests::gadget::{self, assert_bytes_eq, numbered_block, Rng, SsPattern, T};
use usbdf_tests::vm::{self, LOOPBACK, SOURCE_SINK};

/// Requests in flight while one is cancelled.
const DEPTH: usize = 8;
/// The latest point of the cancel after the queue is full.
const MAX_JITTER: Duration = Duration::from_millis(2);
/// A bound on each cancel test; the iteration counts are sized to take a few seconds.
const TEST_BOUND: Duration = Duration::from_secs(90);

/// Which in-flight request is the victim: the oldest, one in the middle or the newest.
fn victim_position(rng: &mut Rng, in_flight: usize) -> (usize, &'static str) {
    match rng.below(3) {
        0 => (0, "first"),
        1 => (in_flight / 2, "middle"),
        _ => (in_flight - 1, "last"),
    }
}

/// What happened to the victims.
#[derive(Debug, Default)]
struct Tally {
    cancels: usize,
    /// `cancel()` said `NotPending`: it had already completed.
    completed_before_cancel: usize,
    /// `Requested`, but the device finished it first: `Success`, every byte.
    won_by_completion: usize,
    /// `Cancelled` after moving some bytes.
    partial: usize,
    /// `Cancelled` before moving anything.
    cancelled_empty: usize,
    /// By position: first, middle, last.
    positions: [usize; 3],
    bytes_verified: u64,
}

impl Tally {
    fn position(&mut self, name: &str) {
        let i = match name {
            "first" => 0,
            "middle" => 1,
            _ => 2,
        };
        self.positions[i] += 1;
    }

    fn victim(&mut self, outcome: CancelOutcome, status: Status, bytes: usize, len: usize) {
        self.cancels += 1;
        match (outcome, status) {
            (CancelOutcome::NotPending, Status::Success) => self.completed_before_cancel += 1,
            (CancelOutcome::Requested, Status::Success) => self.won_by_completion += 1,
            (CancelOutcome::Requested, Status::Cancelled) if bytes > 0 => self.partial += 1,
            (CancelOutcome::Requested, Status::Cancelled) => self.cancelled_empty += 1,
            other => panic!("victim of {len} bytes: {other:?} with {bytes} bytes"),
        }
    }

    fn report(&self, test: &str, iterations: usize, took: Duration) {
        eprintln!(
            "{test}: {iterations} iterations in {took:?}; {} cancels (first/middle/last {:?}): \
             {} completed before the cancel, {} won by completion after it, {} cancelled \
             part-way, {} cancelled empty; {} bytes verified",
            self.cancels,
            self.positions,
            self.completed_before_cancel,
            self.won_by_completion,
            self.partial,
            self.cancelled_empty,
            self.bytes_verified
        );
    }
}

/// First and second cancel of the same request: the second never starts another cancel.
fn cancel_twice(cancel: impl Fn() -> CancelOutcome) -> CancelOutcome {
    let first = cancel();
    let second = cancel();
    match first {
        CancelOutcome::Requested => assert!(
            matches!(
                second,
                CancelOutcome::AlreadyRequested | CancelOutcome::NotPending
            ),
            "second cancel: {second:?}"
        ),
        CancelOutcome::NotPending => {
            assert_eq!(second, CancelOutcome::NotPending, "second cancel")
        }
        CancelOutcome::AlreadyRequested => panic!("first cancel said AlreadyRequested"),
    }
    first
}

struct InFlight {
    tag: u64,
    len: usize,
    handle: CancelHandle,
}

/// The SourceSink IN stream under test: reads in flight, completions that arrived, and the
/// checked prefix of the stream.
struct InStream {
    rx: mpsc::Receiver<Completion>,
    pattern: SsPattern,
    mps: usize,
    in_flight: VecDeque<InFlight>,
    /// Completions not yet checked, by tag (= submission order).
    arrived: BTreeMap<u64, Completion>,
    /// Length and, for a victim, its cancel outcome, by tag.
    sent: BTreeMap<u64, (usize, Option<CancelOutcome>)>,
    next_check: u64,
    offset: u64,
    tally: Tally,
}

impl InStream {
    /// Take the completions that have arrived, waiting for request `until` if given, then
    /// check the stream as far as it is contiguous.
    fn collect(&mut self, until: Option<u64>) {
        loop {
            let waiting =
                until.is_some_and(|t| !self.arrived.contains_key(&t) && self.next_check <= t);
            let c = if waiting {
                self.rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("request {until:?} did not complete: {e}"))
            } else {
                match self.rx.try_recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            };
            let tag = c.request().tag();
            let pos = self
                .in_flight
                .iter()
                .position(|r| r.tag == tag)
                .unwrap_or_else(|| panic!("completion of request {tag}, which is not in flight"));
            self.in_flight.remove(pos);
            assert!(
                self.arrived.insert(tag, c).is_none(),
                "request {tag} completed twice"
            );
        }
        while let Some(c) = self.arrived.remove(&self.next_check) {
            let tag = self.next_check;
            let (len, victim) = self.sent.remove(&tag).expect("sent");
            let (status, bytes) = (c.status(), c.bytes());
            match victim {
                None => assert_eq!(
                    (status, bytes),
                    (Status::Success, len),
                    "request {tag} was not cancelled"
                ),
                Some(outcome) => {
                    self.tally.victim(outcome, status, bytes, len);
                    assert!(bytes <= len);
                    assert_eq!(
                        bytes % self.mps,
                        0,
                        "a cancelled read ends on a packet boundary"
                    );
                }
            }
            if let Err(e) = self.pattern.check(self.offset, c.data()) {
                panic!("request {tag} ({status:?}, {bytes} of {len} bytes): {e}");
            }
            self.offset += bytes as u64;
            self.tally.bytes_verified += bytes as u64;
            self.next_check += 1;
        }
    }
}

#[test]
fn sourcesink_in_cancel_one_of_eight_keeps_the_pattern_stream_continuous() {
    vm::require_vm();
    const ITERATIONS: usize = 300;
    let mut rng = Rng::from_env("sourcesink_in_cancel");
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let mps = pair.max_packet();
    let buflen = gadget::bulk_buflen(&SOURCE_SINK);
    // SourceSink never sends a short packet, so any multiple of the packet size is fine;
    // the longer reads span several dummy_hcd frames, where a cancel catches them part-way.
    let lengths = [buflen, 4 * buflen, 16 * buflen];
    let pool = pair.inp.request_pool(2 * DEPTH, 16 * buflen);

    let (tx, rx) = mpsc::channel::<Completion>();
    let tx = Mutex::new(tx);
    let routine: CompletionRoutine = Arc::new(move |c| {
        let _ = tx.lock().unwrap().send(c);
    });
    let mut stream = InStream {
        rx,
        pattern: SsPattern::new(&SOURCE_SINK, mps, 16 * buflen),
        mps,
        in_flight: VecDeque::new(),
        arrived: BTreeMap::new(),
        sent: BTreeMap::new(),
        next_check: 0,
        offset: 0,
        tally: Tally::default(),
    };
    let mut next_tag = 0u64;
    let start = Instant::now();

    for iteration in 0..ITERATIONS {
        assert!(
            start.elapsed() < TEST_BOUND,
            "only {iteration} iterations in {TEST_BOUND:?}"
        );
        while stream.in_flight.len() < DEPTH {
            let mut request = pool.take_wait(T).expect("an idle pooled request");
            let len = lengths[rng.below(lengths.len())];
            request.set_tag(next_tag);
            let handle = pair
                .inp
                .read_with(request, len, &SendOptions::new(), &routine)
                .expect("send a read");
            stream.sent.insert(next_tag, (len, None));
            stream.in_flight.push_back(InFlight {
                tag: next_tag,
                len,
                handle,
            });
            next_tag += 1;
        }
        let (pos, name) = victim_position(&mut rng, stream.in_flight.len());
        stream.tally.position(name);
        let victim = stream.in_flight[pos].handle.clone();
        let victim_tag = stream.in_flight[pos].tag;
        debug_assert!(stream.in_flight[pos].len > 0);
        gadget::jitter(rng.delay(MAX_JITTER));
        let outcome = cancel_twice(|| victim.cancel());
        stream.sent.get_mut(&victim_tag).expect("sent").1 = Some(outcome);
        stream.collect(Some(victim_tag));
        assert_eq!(
            victim.cancel(),
            CancelOutcome::NotPending,
            "cancel after completion"
        );
    }
    // Let the rest finish on their own.
    while stream.next_check < next_tag {
        let next = stream.next_check;
        stream.collect(Some(next));
    }
    let took = start.elapsed();
    assert!(
        stream.in_flight.is_empty(),
        "{} never completed",
        stream.in_flight.len()
    );
    gadget::wait_idle(&pair.inp);
    assert!(
        stream.rx.try_recv().is_err(),
        "no completion beyond one per request"
    );
    assert_eq!(pool.available(), 2 * DEPTH, "every request went home");
    stream.tally.report("sourcesink IN", ITERATIONS, took);
    eprintln!(
        "sourcesink IN: {next_tag} reads of {lengths:?} bytes at depth {DEPTH}, a continuous \
         stream of {} bytes",
        stream.offset
    );
}

/// A write length for the Loopback tests: whole packets (ZLP path), exactly one gadget
/// request, anything up to one request, or more than one request.
fn write_len(rng: &mut Rng, mps: usize, buflen: usize) -> usize {
    match rng.below(4) {
        0 => mps * rng.range(1, buflen / mps),
        1 => buflen,
        2 => rng.range(1, buflen),
        _ => rng.range(buflen + 1, 2 * buflen),
    }
}

#[test]
fn loopback_out_cancel_one_of_eight_device_receives_exactly_the_reported_bytes() {
    vm::require_vm();
    const ITERATIONS: usize = 300;
    let mut rng = Rng::from_env("loopback_out_cancel");
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    let mps = pair.max_packet();
    let buflen = gadget::bulk_buflen(&LOOPBACK);
    let mut tally = Tally::default();
    let mut block_id = 0u64;
    let mut writes = 0usize;
    let start = Instant::now();

    for iteration in 0..ITERATIONS {
        assert!(
            start.elapsed() < TEST_BOUND,
            "only {iteration} iterations in {TEST_BOUND:?}"
        );
        // Eight numbered writes in flight (at most 3 gadget requests each, plus the
        // terminator: within the gadget's 32, so nothing needs reading meanwhile).
        let blocks: Vec<Vec<u8>> = (0..DEPTH)
            .map(|_| {
                block_id += 1;
                numbered_block(block_id, write_len(&mut rng, mps, buflen))
            })
            .collect();
        let sents: Vec<Sent> = blocks
            .iter()
            .map(|data| {
                let mut request = Request::with_capacity(data.len());
                request.memory_mut().set(data).expect("fits");
                pair.out
                    .write(request, &SendOptions::new())
                    .expect("send a write")
            })
            .collect();
        let (pos, name) = victim_position(&mut rng, DEPTH);
        tally.position(name);
        gadget::jitter(rng.delay(MAX_JITTER));
        let outcome = cancel_twice(|| sents[pos].cancel());
        let handle = sents[pos].cancel_handle();

        let mut expected = Vec::new();
        for (k, (sent, data)) in sents.into_iter().zip(&blocks).enumerate() {
            let c = sent.wait(T);
            let (status, bytes) = (c.status(), c.bytes());
            if k == pos {
                tally.victim(outcome, status, bytes, data.len());
                assert!(bytes <= data.len());
                assert!(
                    bytes == data.len() || bytes % mps == 0,
                    "a write cut short stops on a packet boundary: {bytes} of {}",
                    data.len()
                );
            } else {
                assert_eq!(
                    (status, bytes),
                    (Status::Success, data.len()),
                    "write {k} of iteration {iteration} was not cancelled"
                );
            }
            assert_eq!(
                c.data(),
                &data[..bytes],
                "the completion shows what was sent"
            );
            expected.extend_from_slice(&data[..bytes]);
        }
        assert_eq!(handle.cancel(), CancelOutcome::NotPending);
        writes += DEPTH;

        // A short write ends whatever gadget request a cut-short write left open.
        block_id += 1;
        let terminator = numbered_block(block_id, rng.range(1, mps - 1));
        let mut request = Request::with_capacity(terminator.len());
        request.memory_mut().set(&terminator).expect("fits");
        let c = pair
            .out
            .write_sync(request, T)
            .expect("send the terminator");
        assert_eq!(c.result(), Ok(terminator.len()));
        expected.extend_from_slice(&terminator);

        let echoed = gadget::read_stream_queued(&pair.inp, expected.len(), buflen, DEPTH);
        assert_bytes_eq(
            &echoed,
            &expected,
            &format!("iteration {iteration}: what the device received"),
        );
        tally.bytes_verified += expected.len() as u64;
    }
    let took = start.elapsed();
    assert_eq!(pair.out.in_flight(), 0);
    tally.report("loopback OUT", ITERATIONS, took);
    eprintln!("loopback OUT: {writes} writes (plus {ITERATIONS} terminators)");
    gadget::drain_loopback(&pair);
}

#[test]
fn loopback_in_cancel_one_of_eight_reads_gets_every_echoed_byte_once() {
    vm::require_vm();
    const ITERATIONS: usize = 300;
    let mut rng = Rng::from_env("loopback_in_cancel");
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    let buflen = gadget::bulk_buflen(&LOOPBACK);
    let pool = pair.inp.request_pool(DEPTH, 2 * buflen);
    let mut tally = Tally::default();
    let mut block_id = 0u64;
    let mut long_iterations = 0;
    let start = Instant::now();

    for iteration in 0..ITERATIONS {
        assert!(
            start.elapsed() < TEST_BOUND,
            "only {iteration} iterations in {TEST_BOUND:?}"
        );
        // Two shapes, alternating at random:
        // * short: reads of one gadget buffer, 12 writes of random length (each echo ends
        //   on a short packet or a ZLP), so every read ends with an echo;
        // * long: reads of two gadget buffers, 2 * DEPTH writes of exactly one buffer and no
        //   ZLPs, so echoes are full and a read waits, part-filled, for the next one (where
        //   a cancel catches it part-way).
        let long = rng.below(2) == 1;
        let (read_len, writes, zlp) = if long {
            long_iterations += 1;
            (2 * buflen, 2 * DEPTH, Zlp::Never)
        } else {
            (buflen, 12, Zlp::Auto)
        };
        pair.out.set_policy(PipePolicy {
            zlp,
            ..PipePolicy::default()
        });
        let reads: Vec<Sent> = (0..DEPTH)
            .map(|_| {
                let request = pool.take_wait(T).expect("an idle pooled request");
                pair.inp
                    .read(request, read_len, &SendOptions::new())
                    .expect("send a read")
            })
            .collect();
        let mut expected = Vec::new();
        let writes: Vec<Sent> = (0..writes)
            .map(|_| {
                block_id += 1;
                let len = if long { buflen } else { rng.range(1, buflen) };
                let data = numbered_block(block_id, len);
                expected.extend_from_slice(&data);
                let mut request = Request::with_capacity(data.len());
                request.memory_mut().set(&data).expect("fits");
                pair.out
                    .write(request, &SendOptions::new())
                    .expect("send a write")
            })
            .collect();
        let (pos, name) = victim_position(&mut rng, DEPTH);
        tally.position(name);
        gadget::jitter(rng.delay(MAX_JITTER));
        let outcome = cancel_twice(|| reads[pos].cancel());

        let mut got = Vec::with_capacity(expected.len());
        for (k, read) in reads.into_iter().enumerate() {
            let c = read.wait(T);
            let (status, bytes) = (c.status(), c.bytes());
            if k == pos {
                tally.victim(outcome, status, bytes, read_len);
            } else {
                assert_eq!(
                    status,
                    Status::Success,
                    "read {k} of iteration {iteration} was not cancelled"
                );
            }
            got.extend_from_slice(c.data());
        }
        for w in writes {
            let c = w.wait(T);
            assert_eq!(c.status(), Status::Success, "write");
        }
        let rest = gadget::read_stream_queued(&pair.inp, expected.len() - got.len(), buflen, DEPTH);
        got.extend_from_slice(&rest);
        assert_bytes_eq(
            &got,
            &expected,
            &format!("iteration {iteration}: bytes read back"),
        );
        tally.bytes_verified += expected.len() as u64;
    }
    let took = start.elapsed();
    assert_eq!(pair.inp.in_flight(), 0);
    assert_eq!(pool.available(), DEPTH);
    tally.report("loopback IN", ITERATIONS, took);
    eprintln!(
        "loopback IN: {long_iterations} iterations with reads of {} and full echoes, the rest \
         with reads of {buflen} and short echoes",
        2 * buflen
    );
    pair.out.set_policy(PipePolicy::default());
    gadget::drain_loopback(&pair);
}

#[test]
fn cancel_outcomes_after_completion_twice_and_for_a_reused_request() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);

    // An idle read: the first cancel starts it, the second finds it under way.
    let sent = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send a read");
    let handle = sent.cancel_handle();
    assert_eq!(handle.cancel(), CancelOutcome::Requested);
    assert!(matches!(
        handle.cancel(),
        CancelOutcome::AlreadyRequested | CancelOutcome::NotPending
    ));
    let c = sent.wait(T);
    assert_eq!((c.status(), c.bytes()), (Status::Cancelled, 0));
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);

    // A cancel handle from an earlier send never reaches a later send of the same request.
    let request = c.into_request();
    let again = pair
        .inp
        .read(request, 4096, &SendOptions::new())
        .expect("send the request again");
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);
    let data = numbered_block(5, 200);
    let mut w = Request::with_capacity(200);
    w.memory_mut().set(&data).expect("fits");
    assert_eq!(
        pair.out.write_sync(w, T).expect("write").status(),
        Status::Success
    );
    let c = again.wait(T);
    assert_eq!(
        c.status(),
        Status::Success,
        "the old handle did not cancel it"
    );
    assert_bytes_eq(c.data(), &data, "echo");

    // Cancel after a completed transfer: NotPending, the completion is untouched.
    let source = gadget::open_bulk_pair(&SOURCE_SINK);
    let sent = source
        .inp
        .read(Request::with_capacity(512), 512, &SendOptions::new())
        .expect("send a read");
    let handle = sent.cancel_handle();
    let c = sent.wait(T);
    assert_eq!(c.result(), Ok(512));
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);

    // A cancelled request that also had a timeout reports Cancelled, not TimedOut.
    let sent = pair
        .inp
        .read(
            Request::with_capacity(4096),
            4096,
            &SendOptions::new().timeout(Duration::from_secs(30)),
        )
        .expect("send a read");
    assert_eq!(sent.cancel(), CancelOutcome::Requested);
    assert_eq!(sent.wait(Timeout::Infinite).status(), Status::Cancelled);

    // Dropping a Sent cancels it and the pooled request goes home.
    let pool = pair.inp.request_pool(1, 4096);
    let sent = pair
        .inp
        .read(pool.take().expect("idle"), 4096, &SendOptions::new())
        .expect("send a read");
    drop(sent);
    assert!(
        pool.take_wait(T).is_some(),
        "the request comes back after its Sent is dropped"
    );
    gadget::wait_idle(&pair.inp);
}
