//! Simulator benches (`cargo bench -p usbdf --bench sim`): the framework's own CPU cost
//! with no kernel underneath: requests per second for format + send + complete, the
//! latency of a per-request cancel, and continuous-reader throughput.
//!
//! Criterion benches build only under `cargo bench` (and `clippy --all-targets`), never
//! under `cargo test`. Targets (docs/performance.md): ≥ 1,000,000 req/s on one core for
//! 64 B requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use usbdf::sim::{Loopback, Pattern, SimHost, SourceSink};
use usbdf::{
    Bulk, Completion, CompletionRoutine, DeviceSelector, In, Out, Pipe, ReaderConfig, Request,
    RequestPool, SendOptions, Status, Timeout,
};

const T: Timeout = Timeout::millis(5000);

fn open(sim: &SimHost, pid: u16) -> usbdf::Interface {
    let device = sim.host().open(&DeviceSelector::id(0x0525, pid)).unwrap();
    device.claim_interface(0).unwrap()
}

/// Exactly `iters` completions on one pipe: `depth` requests from `pool` sent by `send`,
/// each resubmitted from its completion routine while more than `depth` are still to come.
/// Returns the routine's owner (drop it after the run) and the flag set by the last one.
fn routed(
    iters: u64,
    depth: usize,
    pool: &RequestPool,
    send: impl Fn(Request, &CompletionRoutine) + Send + Sync + 'static,
) -> (Arc<OnceLock<CompletionRoutine>>, Arc<AtomicBool>) {
    let first = (depth as u64).min(iters);
    let remaining = Arc::new(AtomicU64::new(iters));
    let done = Arc::new(AtomicBool::new(first == 0));
    let main = std::thread::current();
    let me: Arc<OnceLock<CompletionRoutine>> = Arc::new(OnceLock::new());
    let in_flight = Arc::new(AtomicU64::new(first));
    let send = Arc::new(send);
    let routine: CompletionRoutine = {
        let (done, me, send) = (done.clone(), Arc::downgrade(&me), send.clone());
        Arc::new(move |c: Completion| {
            assert_eq!(c.status(), Status::Success);
            let left = remaining.fetch_sub(1, Relaxed);
            if left > first {
                if let Some(me) = me.upgrade() {
                    send(c.into_request(), me.get().unwrap());
                    return;
                }
            }
            if in_flight.fetch_sub(1, Relaxed) == 1 {
                done.store(true, Relaxed);
                main.unpark();
            }
        })
    };
    let _ = me.set(routine.clone());
    for _ in 0..first {
        send(pool.take_wait(T).unwrap(), &routine);
    }
    (me, done)
}

/// Wait until every stream's last routine has set its flag.
fn wait_done(done: &[&AtomicBool]) {
    while !done.iter().all(|d| d.load(Relaxed)) {
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Wait until the pools hold `depth` requests again (the last requests go home as their
/// routines return).
fn wait_full(pools: &[(&RequestPool, usize)]) {
    for (pool, depth) in pools {
        while pool.available() < *depth {
            std::thread::yield_now();
        }
    }
}

/// 64 B writes to the sim SourceSink sink, `depth` in flight, each resubmitted from its
/// completion routine: the framework's request path (format, send, complete, routine).
fn routine_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("requests");
    group.throughput(Throughput::Elements(1));
    for depth in [1usize, 8] {
        let sim = SimHost::new();
        let _dev = sim.plug(SourceSink::new(Pattern::None, 4096));
        let iface = open(&sim, 0xa4a0);
        let out: Pipe<Bulk, Out> = iface.open_pipe(0x01).unwrap();
        let pool = out.request_pool(depth, 64);
        group.bench_function(format!("write_64B_routine_depth{depth}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let (me, done) = routed(iters, depth, &pool, write_64(out.clone()));
                wait_done(&[&done]);
                let elapsed = start.elapsed();
                drop(me);
                wait_full(&[(&pool, depth)]);
                elapsed
            })
        });
    }
    group.finish();
}

/// A routine's send for 64 B writes (pool requests keep their 64 bytes across sends).
fn write_64(out: Pipe<Bulk, Out>) -> impl Fn(Request, &CompletionRoutine) + Send + Sync {
    move |mut r: Request, routine: &CompletionRoutine| {
        if r.memory().len() != 64 {
            r.memory_mut().fill_with(64, |i| i as u8).unwrap();
        }
        out.write_with(r, &SendOptions::new(), routine).unwrap();
    }
}

/// 64 B echoes on the sim Loopback with routines: `depth` writes and `depth` reads in
/// flight, each resubmitted from its routine (2 requests per echo). The issue's "64 B
/// loopback requests" figure.
fn routine_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("requests");
    group.throughput(Throughput::Elements(2));
    for depth in [1usize, 8] {
        let sim = SimHost::new();
        let _dev = sim.plug(Loopback::new(32, 4096));
        let iface = open(&sim, 0xa4a9);
        let out: Pipe<Bulk, Out> = iface.open_pipe(0x01).unwrap();
        let inp: Pipe<Bulk, In> = iface.open_pipe(0x81).unwrap();
        let wpool = out.request_pool(depth, 64);
        let rpool = inp.request_pool(depth, 512);
        group.bench_function(format!("echo_64B_routine_depth{depth}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let read = {
                    let inp = inp.clone();
                    move |r: Request, routine: &CompletionRoutine| {
                        inp.read_with(r, 512, &SendOptions::new(), routine).unwrap();
                    }
                };
                let (rme, rdone) = routed(iters, depth, &rpool, read);
                let (wme, wdone) = routed(iters, depth, &wpool, write_64(out.clone()));
                wait_done(&[&rdone, &wdone]);
                let elapsed = start.elapsed();
                drop((rme, wme));
                wait_full(&[(&rpool, depth), (&wpool, depth)]);
                elapsed
            })
        });
    }
    group.finish();
}

/// Synchronous 64 B echo on the sim Loopback: write_sync + read_sync (2 requests).
fn sync_echo(c: &mut Criterion) {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::new(32, 4096));
    let iface = open(&sim, 0xa4a9);
    let out: Pipe<Bulk, Out> = iface.open_pipe(0x01).unwrap();
    let inp: Pipe<Bulk, In> = iface.open_pipe(0x81).unwrap();
    let mut w = Some(Request::with_capacity(64));
    w.as_mut()
        .unwrap()
        .memory_mut()
        .fill_with(64, |i| i as u8)
        .unwrap();
    let mut r = Some(Request::with_capacity(512));
    let mut group = c.benchmark_group("requests");
    group.throughput(Throughput::Elements(2));
    group.bench_function("echo_64B_sync", |b| {
        b.iter(|| {
            let c = out.write_sync(w.take().unwrap(), T).unwrap();
            w = Some(c.into_request());
            let c = inp.read_sync(r.take().unwrap(), 512, T).unwrap();
            assert_eq!(c.bytes(), 64);
            r = Some(c.into_request());
        })
    });
    group.finish();
}

/// Send a read that cannot complete (Loopback IN with nothing written), cancel it, wait
/// for its `Cancelled` completion.
fn cancel(c: &mut Criterion) {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::new(32, 4096));
    let iface = open(&sim, 0xa4a9);
    let inp: Pipe<Bulk, In> = iface.open_pipe(0x81).unwrap();
    let mut r = Some(Request::with_capacity(512));
    c.bench_function("cancel/pending_read", |b| {
        b.iter(|| {
            let sent = inp
                .read(r.take().unwrap(), 512, &SendOptions::new())
                .unwrap();
            sent.cancel_handle().cancel();
            let c = sent.wait(T);
            assert_eq!(c.status(), Status::Cancelled);
            r = Some(c.into_request());
        })
    });
}

/// A continuous reader on the sim SourceSink source, 4 KiB reads, 4 pending.
fn reader(c: &mut Criterion) {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::new(Pattern::None, 4096));
    let iface = open(&sim, 0xa4a0);
    let inp: Pipe<Bulk, In> = iface.open_pipe(0x81).unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = bytes.clone();
    let reader = inp
        .continuous_reader(
            ReaderConfig::new(
                4096,
                Arc::new(move |d: &[u8]| {
                    counter.fetch_add(d.len() as u64, Relaxed);
                }),
            )
            .pending_reads(4),
        )
        .unwrap();
    let mut group = c.benchmark_group("reader");
    group.throughput(Throughput::Bytes(4096));
    group.bench_function("continuous_4KiB_x4", |b| {
        b.iter_custom(|iters| {
            let target = bytes.load(Relaxed) + iters * 4096;
            reader.start().unwrap();
            let start = Instant::now();
            while bytes.load(Relaxed) < target {
                std::hint::spin_loop();
            }
            let elapsed = start.elapsed();
            reader.stop(T).unwrap();
            elapsed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = routine_writes, routine_echo, sync_echo, cancel, reader
}
criterion_main!(benches);
