//! usbdf: pool requests (zero-copy buffers from `Pipe::request_pool`) resubmitted from a
//! completion routine, `depth` in flight.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use usbdf::control::SetupPacket;
use usbdf::{
    Bulk, Completion, CompletionRoutine, DeviceSelector, Host, In, Interface, Out, Pipe,
    PipePolicy, Request, SendOptions, Status, Timeout, Zlp,
};

use crate::gadget;
use crate::measure::{self, Cell, Counters, Latency, LatencyRun, Run, Scenario};
use crate::{Config, Result};

/// `depth` pool requests on one pipe, each resubmitted from its completion routine.
struct Stream {
    counters: Arc<Counters>,
    /// Holds the routine; the routine holds only a weak reference back, so dropping the
    /// stream lets the pipe (and the interface claim) go once the queue has drained.
    me: Arc<OnceLock<CompletionRoutine>>,
    _pool: usbdf::RequestPool,
}

/// Sends one request again; `false` when it could not be sent.
type Resubmit = Box<dyn Fn(Request, &CompletionRoutine) -> bool + Send + Sync>;

impl Stream {
    fn start(pool: usbdf::RequestPool, depth: usize, resubmit: Resubmit) -> Result<Stream> {
        let counters = Arc::new(Counters::new(depth));
        let me: Arc<OnceLock<CompletionRoutine>> = Arc::new(OnceLock::new());
        let resubmit = Arc::new(resubmit);
        let routine: CompletionRoutine = {
            let (counters, me, resubmit) =
                (counters.clone(), Arc::downgrade(&me), resubmit.clone());
            Arc::new(move |c: Completion| {
                if counters.stop.load(Relaxed) {
                    counters.retire();
                    return;
                }
                if c.status() != Status::Success {
                    counters.fail();
                    return;
                }
                counters.completed(c.bytes());
                let me = me.upgrade();
                let routine = me.as_ref().and_then(|m| m.get());
                if !routine.is_some_and(|r| resubmit(c.into_request(), r)) {
                    counters.fail();
                }
            })
        };
        let _ = me.set(routine.clone());
        for _ in 0..depth {
            let r = pool.take().ok_or("pool empty")?;
            if !resubmit(r, &routine) {
                return Err("usbdf: first send failed".into());
            }
        }
        Ok(Stream {
            counters,
            me,
            _pool: pool,
        })
    }

    fn finish(self) -> Result<()> {
        self.counters.stop.store(true, Relaxed);
        self.counters.drain()?;
        if self.counters.failed.load(Relaxed) {
            return Err("usbdf: a transfer failed".into());
        }
        drop(self.me);
        Ok(())
    }
}

fn reader(iface: &Interface, depth: usize, size: usize) -> Result<(Stream, Arc<Pipe<Bulk, In>>)> {
    let pipe: Arc<Pipe<Bulk, In>> = Arc::new(iface.open_first()?);
    on_pipe(pipe, depth, size, move |p, r, opts, routine| {
        p.read_with(r, size, opts, routine).is_ok()
    })
}

fn writer(iface: &Interface, depth: usize, size: usize) -> Result<(Stream, Arc<Pipe<Bulk, Out>>)> {
    let pipe: Arc<Pipe<Bulk, Out>> = Arc::new(iface.open_first()?);
    // nusb and libusb send no ZLPs: compare like with like.
    pipe.set_policy(PipePolicy {
        zlp: Zlp::Never,
        ..pipe.policy()
    });
    on_pipe(pipe, depth, size, move |p, mut r, opts, routine| {
        if r.memory().len() != size {
            // Pattern 0: the sink checks for zeros.
            if r.memory_mut().fill_with(size, |_| 0).is_err() {
                return false;
            }
        }
        p.write_with(r, opts, routine).is_ok()
    })
}

/// A stream of `depth` pool requests of `size` bytes on `pipe`, each (re)sent by `send`.
fn on_pipe<D: usbdf::PipeDirection>(
    pipe: Arc<Pipe<Bulk, D>>,
    depth: usize,
    size: usize,
    send: impl Fn(&Pipe<Bulk, D>, Request, &SendOptions, &CompletionRoutine) -> bool
        + Send
        + Sync
        + 'static,
) -> Result<(Stream, Arc<Pipe<Bulk, D>>)> {
    let pool = pipe.request_pool(depth, size);
    let opts = SendOptions::new();
    let p = pipe.clone();
    let stream = Stream::start(
        pool,
        depth,
        Box::new(move |r, routine| send(&p, r, &opts, routine)),
    )?;
    Ok((stream, pipe))
}

/// The drain counts routines that have *run*; wait until they have also returned and let
/// go of the pipe (abort on an idle pipe waits for exactly that), so the interface is free
/// for the next implementation's claim.
const IDLE: Timeout = Timeout::millis(5000);

/// Measure one stream on one pipe, then stop it and wait for the pipe to be idle.
fn one_pipe<D: usbdf::PipeDirection>(
    (stream, pipe): (Stream, Arc<Pipe<Bulk, D>>),
    cfg: &Config,
) -> Result<Run> {
    let run = measure::window(&stream.counters, cfg);
    stream.finish()?;
    pipe.abort(IDLE)?;
    Ok(run)
}

/// Measure one cell.
pub fn throughput(cell: &Cell, cfg: &Config) -> Result<Run> {
    let (vid, pid) = cell.scenario.vid_pid();
    let device = Host::system().open(&DeviceSelector::id(vid, pid))?;
    let iface = measure::claim_retrying(
        || device.claim_interface(0),
        |e| matches!(e, usbdf::Error::Busy { .. }),
    )?;
    match cell.scenario {
        Scenario::SourceSinkIn => one_pipe(reader(&iface, cell.depth, cell.size)?, cfg),
        Scenario::SourceSinkOut => one_pipe(writer(&iface, cell.depth, cell.size)?, cfg),
        Scenario::LoopbackEcho => {
            // Reads first, so every echo finds a read waiting.
            let (r, in_pipe) = reader(&iface, cell.depth, cell.size)?;
            let (w, out_pipe) = writer(&iface, cell.depth, cell.size)?;
            let run = measure::window(&r.counters, cfg);
            w.finish()?;
            out_pipe.abort(IDLE)?;
            // Writes stopped: the reads still pending never complete; abort them.
            r.counters.stop.store(true, Relaxed);
            in_pipe.abort(IDLE)?;
            r.finish()?;
            Ok(run)
        }
        _ => Err("usbdf: not a throughput scenario".into()),
    }
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
