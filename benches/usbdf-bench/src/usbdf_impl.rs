//! usbdf: pool requests (zero-copy buffers from `Pipe::request_pool`) resubmitted from a
//! completion routine, `depth` in flight.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use usbdf::control::SetupPacket;
use usbdf::{
    Bulk, Completion, CompletionRoutine, DeviceSelector, Host, In, Out, Pipe, PipePolicy, Request,
    SendOptions, Status, Timeout, Zlp,
};

use crate::gadget;
use crate::measure::{Cell, Latency, LatencyRun};
use crate::{alloc, Config, Result};

/// One throughput run.
pub struct Run {
    /// MB/s (10^6 bytes per second).
    pub mbps: f64,
    /// Allocations per completed request inside the measured window.
    pub allocs_per_request: f64,
}

struct Counters {
    bytes: AtomicU64,
    requests: AtomicU64,
    outstanding: AtomicUsize,
    stop: AtomicBool,
    failed: AtomicBool,
}

/// Measure one cell.
pub fn throughput(cell: &Cell, cfg: &Config) -> Result<Run> {
    let (vid, pid) = gadget::VID_PID;
    let device = Host::system().open(&DeviceSelector::id(vid, pid))?;
    let iface = device.claim_interface(0)?;
    let counters = Arc::new(Counters {
        bytes: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        outstanding: AtomicUsize::new(cell.depth),
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let size = cell.size;
    let me: Arc<OnceLock<CompletionRoutine>> = Arc::new(OnceLock::new());
    let opts = SendOptions::new();

    // The send closure is the only difference between IN and OUT.
    type Resubmit = Box<dyn Fn(Request, &CompletionRoutine) -> bool + Send + Sync>;
    let (pool, resubmit): (usbdf::RequestPool, Resubmit) = if cell.scenario.is_in() {
        let pipe: Pipe<Bulk, In> = iface.open_first()?;
        let pool = pipe.request_pool(cell.depth, size);
        (
            pool,
            Box::new(move |r, routine| pipe.read_with(r, size, &opts, routine).is_ok()),
        )
    } else {
        let pipe: Pipe<Bulk, Out> = iface.open_first()?;
        // nusb and libusb send no ZLPs: compare like with like.
        pipe.set_policy(PipePolicy {
            zlp: Zlp::Never,
            ..pipe.policy()
        });
        let pool = pipe.request_pool(cell.depth, size);
        (
            pool,
            Box::new(move |mut r, routine| {
                if r.memory().len() != size {
                    // Pattern 0: the sink checks for zeros.
                    if r.memory_mut().fill_with(size, |_| 0).is_err() {
                        return false;
                    }
                }
                pipe.write_with(r, &opts, routine).is_ok()
            }),
        )
    };
    let resubmit: Arc<Resubmit> = Arc::new(resubmit);

    let routine: CompletionRoutine = {
        // Weak: the routine must not keep itself (and so the pipe and the interface claim)
        // alive after the run.
        let (counters, me, resubmit) = (counters.clone(), Arc::downgrade(&me), resubmit.clone());
        Arc::new(move |c: Completion| {
            if c.status() != Status::Success {
                counters.failed.store(true, Relaxed);
                counters.outstanding.fetch_sub(1, Relaxed);
                return;
            }
            counters.bytes.fetch_add(c.bytes() as u64, Relaxed);
            counters.requests.fetch_add(1, Relaxed);
            let me = me.upgrade();
            let routine = me.as_ref().and_then(|m| m.get());
            if counters.stop.load(Relaxed)
                || !routine.is_some_and(|r| resubmit(c.into_request(), r))
            {
                counters.outstanding.fetch_sub(1, Relaxed);
            }
        })
    };
    let _ = me.set(routine.clone());

    for _ in 0..cell.depth {
        let r = pool.take().ok_or("pool empty")?;
        if !resubmit(r, &routine) {
            return Err("usbdf: first send failed".into());
        }
    }
    std::thread::sleep(cfg.warmup);
    let (b0, r0, a0, t0) = (
        counters.bytes.load(Relaxed),
        counters.requests.load(Relaxed),
        alloc::count(),
        Instant::now(),
    );
    std::thread::sleep(cfg.window);
    let (b1, r1, a1, t1) = (
        counters.bytes.load(Relaxed),
        counters.requests.load(Relaxed),
        alloc::count(),
        Instant::now(),
    );
    counters.stop.store(true, Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while counters.outstanding.load(Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(me);
    if counters.failed.load(Relaxed) {
        return Err(format!("usbdf: a transfer failed in {cell:?}").into());
    }
    let requests = (r1 - r0).max(1);
    Ok(Run {
        mbps: (b1 - b0) as f64 / (t1 - t0).as_secs_f64() / 1e6,
        allocs_per_request: (a1 - a0) as f64 / requests as f64,
    })
}

/// One latency run: `samples` round trips, in µs.
pub fn latency(which: Latency, samples: usize) -> Result<LatencyRun> {
    let timeout = Timeout::millis(2000);
    let mut times = Vec::with_capacity(samples);
    match which {
        Latency::Echo64 => {
            let (vid, pid) = gadget::LOOPBACK_VID_PID;
            let device = Host::system().open(&DeviceSelector::id(vid, pid))?;
            let iface = device.claim_interface(0)?;
            let out: Pipe<Bulk, Out> = iface.open_first()?;
            let inp: Pipe<Bulk, In> = iface.open_first()?;
            let mut w = Request::new(out.allocate(64));
            w.memory_mut().fill_with(64, |i| i as u8)?;
            let mut r = Request::new(inp.allocate(512));
            for i in 0..samples + samples / 10 {
                let t = Instant::now();
                let c = out.write_sync(w, timeout).map_err(|e| e.to_string())?;
                if c.status() != Status::Success {
                    return Err(format!("echo write: {:?}", c.status()).into());
                }
                w = c.into_request();
                let c = inp.read_sync(r, 512, timeout).map_err(|e| e.to_string())?;
                if c.status() != Status::Success || c.bytes() != 64 {
                    return Err(format!("echo read: {:?} {}", c.status(), c.bytes()).into());
                }
                r = c.into_request();
                if i >= samples / 10 {
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        Latency::Control => {
            let (vid, pid) = gadget::LOOPBACK_VID_PID;
            let device = Host::system().open(&DeviceSelector::id(vid, pid))?;
            let control = device.control_pipe();
            let setup = SetupPacket {
                request_type: 0x80,
                request: usbdf::control::standard::GET_DESCRIPTOR,
                value: 0x0100,
                index: 0,
                length: 18,
            };
            let mut req = Request::with_capacity(64);
            for i in 0..samples + samples / 10 {
                let t = Instant::now();
                let c = control
                    .send(
                        req,
                        setup,
                        &SendOptions::new().timeout(Duration::from_secs(2)),
                    )
                    .map_err(|e| e.to_string())?
                    .wait();
                if c.status() != Status::Success || c.bytes() != 18 {
                    return Err(format!("GET_DESCRIPTOR: {:?} {}", c.status(), c.bytes()).into());
                }
                req = c.into_request();
                if i >= samples / 10 {
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    Ok(LatencyRun::from_samples(times))
}
