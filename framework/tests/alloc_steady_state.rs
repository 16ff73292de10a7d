//! Sending and completing pooled requests allocates nothing in steady
//! state: a counting global allocator, counts not timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use usbdf::sim::{Pattern, SimHost, SourceSink};
use usbdf::{Bulk, CompletionRoutine, DeviceSelector, In, Out, Pipe, SendOptions, Status, Timeout};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const WARMUP: usize = 2_000;
const MEASURED: usize = 20_000;

/// Self-resubmitting reads from a completion routine, 8 in flight: the
/// routine samples the allocation counter at the start and the end of the
/// measured window.
#[test]
fn routine_driven_reads_allocate_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::new(Pattern::Mod63, 4096));
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let inp: Pipe<Bulk, In> = iface.open_pipe(0x81).unwrap();
    let pool = inp.request_pool(8, 512);

    let done = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(AtomicU64::new(0));
    let end = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let main = std::thread::current();
    let me: Arc<OnceLock<CompletionRoutine>> = Arc::new(OnceLock::new());
    let routine: CompletionRoutine = {
        let (done, start, end, finished, me, pipe) = (
            done.clone(),
            start.clone(),
            end.clone(),
            finished.clone(),
            me.clone(),
            inp.clone(),
        );
        Arc::new(move |c: usbdf::Completion| {
            let n = done.fetch_add(1, SeqCst) + 1;
            if n > WARMUP + MEASURED {
                // The reads still out after the window are aborted below.
                return;
            }
            assert_eq!(c.status(), Status::Success);
            assert_eq!(c.bytes(), 512);
            if n == WARMUP {
                start.store(ALLOCS.load(SeqCst), SeqCst);
            }
            if n == WARMUP + MEASURED {
                end.store(ALLOCS.load(SeqCst), SeqCst);
                finished.store(true, SeqCst);
                main.unpark();
            }
            if n < WARMUP + MEASURED {
                let r = me.get().expect("routine set");
                pipe.read_with(c.into_request(), 512, &SendOptions::new(), r)
                    .unwrap();
            }
        })
    };
    let _ = me.set(routine.clone());
    for _ in 0..8 {
        inp.read_with(pool.take().unwrap(), 512, &SendOptions::new(), &routine)
            .unwrap();
    }
    while !finished.load(SeqCst) {
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let allocs = end.load(SeqCst) - start.load(SeqCst);
    eprintln!("{MEASURED} routine-driven reads: {allocs} allocations");
    assert_eq!(allocs, 0, "allocations per request in steady state");
    inp.abort(Timeout::millis(2000)).unwrap();
}

/// The blocking form (`Sent::wait`) and the future form
/// (`futures::executor::block_on`) on writes allocate nothing either.
#[test]
fn waited_and_awaited_writes_allocate_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sim2 = SimHost::new();
    let _sink = sim2.plug(SourceSink::new(Pattern::None, 4096));
    let device = sim2
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let out: Pipe<Bulk, Out> = iface.open_pipe(0x01).unwrap();
    let pool = out.request_pool(4, 600);
    let opts = SendOptions::new().timeout(Duration::from_secs(5));
    let run = |n: usize| {
        for i in 0..n {
            let mut r = pool.take().unwrap();
            r.memory_mut().fill_with(600, |j| (i + j) as u8).unwrap();
            let sent = out.write(r, &opts).unwrap();
            let c = if i % 2 == 0 {
                sent.wait(Timeout::millis(5000))
            } else {
                futures::executor::block_on(sent)
            };
            assert_eq!(c.status(), Status::Success);
        }
    };
    run(WARMUP);
    let before = ALLOCS.load(SeqCst);
    run(MEASURED / 4);
    let allocs = ALLOCS.load(SeqCst) - before;
    eprintln!(
        "{} waited/awaited writes with timeouts: {allocs} allocations",
        MEASURED / 4
    );
    assert_eq!(allocs, 0, "allocations per request in steady state");
}
