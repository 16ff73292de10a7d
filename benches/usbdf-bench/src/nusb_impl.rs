//! Raw nusb 0.2: the same access pattern as the usbdf runs, directly on an endpoint:
//! `Endpoint::allocate` (zero-copy) buffers, `depth` submitted, each completion reaped and
//! resubmitted on nusb's event thread from a waker.
//!
//! An earlier version reaped with `wait_next_complete` on the measuring thread: every
//! completion then costs a park/unpark hop between nusb's event thread and the caller, and
//! under TCG that made raw nusb 2–7× slower than usbdf at small transfers — a handicap of
//! the loop, not of nusb. This is the pattern usbdf itself uses underneath.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use nusb::transfer::{
    Bulk, ControlIn, ControlType, Direction, EndpointDirection, In, Out, Recipient,
};
use nusb::{Endpoint, MaybeFuture};

use crate::gadget;
use crate::measure::{self, Cell, Counters, Latency, LatencyRun, Run, Scenario};
use crate::{Config, Result};

fn open(vid_pid: (u16, u16)) -> Result<nusb::Device> {
    let info = nusb::list_devices()
        .wait()?
        .find(|d| (d.vendor_id(), d.product_id()) == vid_pid)
        .ok_or("nusb: device not found")?;
    Ok(info.open().wait()?)
}

fn endpoint_address(iface: &nusb::Interface, dir_in: bool) -> Result<u8> {
    let desc = iface.descriptor().ok_or("no interface descriptor")?;
    desc.endpoints()
        .find(|e| {
            e.transfer_type() == nusb::descriptors::TransferType::Bulk
                && (e.address() & 0x80 != 0) == dir_in
        })
        .map(|e| e.address())
        .ok_or_else(|| "no bulk endpoint".into())
}

/// A stream of `depth` transfers on one endpoint, reaped and resubmitted on nusb's event
/// thread by a waker: the completion-driven pattern usbdf and libusb use, written directly
/// on nusb (`poll_next_complete` + `submit`, no thread hop per transfer).
struct Stream<D: EndpointDirection> {
    ep: Mutex<Option<Endpoint<Bulk, D>>>,
    counters: Counters,
    size: usize,
}

impl<D: EndpointDirection + 'static> Stream<D>
where
    Endpoint<Bulk, D>: Send,
{
    fn start(mut ep: Endpoint<Bulk, D>, depth: usize, size: usize) -> Arc<Self> {
        for _ in 0..depth {
            let mut b = ep.allocate(size);
            if D::DIR == Direction::In {
                b.set_requested_len(size);
            } else {
                b.extend_fill(size, 0);
            }
            ep.submit(b);
        }
        let stream = Arc::new(Stream {
            ep: Mutex::new(Some(ep)),
            counters: Counters::new(depth),
            size,
        });
        // Register the waker (and reap whatever already completed).
        stream.reap();
        stream
    }

    fn reap(self: &Arc<Self>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut guard = self.ep.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ep) = guard.as_mut() else { return };
        // nusb panics when polled with nothing pending (a late wake after the drain).
        while ep.pending() > 0 {
            let Poll::Ready(c) = ep.poll_next_complete(&mut cx) else {
                break;
            };
            if self.counters.stop.load(Relaxed) {
                // Cancelled or not, a completion after the stop only leaves the queue.
                self.counters.retire();
                continue;
            }
            if c.status.is_err() {
                self.counters.fail();
                continue;
            }
            self.counters.completed(c.actual_len);
            let mut b = c.buffer;
            if D::DIR == Direction::In {
                b.set_requested_len(self.size);
            }
            ep.submit(b);
        }
    }

    /// Stop resubmitting, wait for the queue to drain, close the endpoint.
    fn finish(&self) -> Result<()> {
        self.counters.stop.store(true, Relaxed);
        self.counters.drain()?;
        // Drop the endpoint outside the reaper: it breaks the waker → stream → endpoint cycle.
        let ep = self.ep.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(ep);
        if self.counters.failed.load(Relaxed) {
            return Err("nusb: a transfer failed".into());
        }
        Ok(())
    }
}

impl<D: EndpointDirection + 'static> Wake for Stream<D>
where
    Endpoint<Bulk, D>: Send,
{
    fn wake(self: Arc<Self>) {
        self.reap();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reap();
    }
}

/// Measure one stream on one endpoint, then stop it and let it drain.
fn one_stream<D: EndpointDirection + 'static>(
    ep: Endpoint<Bulk, D>,
    cell: &Cell,
    cfg: &Config,
) -> Result<Run>
where
    Endpoint<Bulk, D>: Send,
{
    let s = Stream::start(ep, cell.depth, cell.size);
    let run = measure::window(&s.counters, cfg);
    s.finish()?;
    Ok(run)
}

/// Measure one cell.
pub fn throughput(cell: &Cell, cfg: &Config) -> Result<Run> {
    let device = open(cell.scenario.vid_pid())?;
    let iface = measure::claim_retrying(
        || device.claim_interface(0).wait(),
        |e| e.kind() == nusb::ErrorKind::Busy,
    )?;
    let in_ep = || -> Result<Endpoint<Bulk, In>> {
        Ok(iface.endpoint::<Bulk, In>(endpoint_address(&iface, true)?)?)
    };
    let out_ep = || -> Result<Endpoint<Bulk, Out>> {
        Ok(iface.endpoint::<Bulk, Out>(endpoint_address(&iface, false)?)?)
    };
    match cell.scenario {
        Scenario::SourceSinkIn => one_stream(in_ep()?, cell, cfg),
        Scenario::SourceSinkOut => one_stream(out_ep()?, cell, cfg),
        Scenario::LoopbackEcho => {
            // Reads first, so every echo finds a read waiting.
            let r = Stream::start(in_ep()?, cell.depth, cell.size);
            let w = Stream::start(out_ep()?, cell.depth, cell.size);
            let run = measure::window(&r.counters, cfg);
            w.finish()?;
            // Writes stopped: the reads still pending never complete; cancel them.
            r.counters.stop.store(true, Relaxed);
            if let Some(ep) = r.ep.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                ep.cancel_all();
            }
            r.finish()?;
            Ok(run)
        }
        _ => Err("nusb: not a throughput scenario".into()),
    }
}

/// One latency run: `samples` round trips, in µs.
pub fn latency(which: Latency, samples: usize) -> Result<LatencyRun> {
    let timeout = Duration::from_secs(2);
    let device = open(gadget::LOOPBACK_VID_PID)?;
    let mut times = Vec::with_capacity(samples);
    match which {
        Latency::Echo64 => {
            let iface = device.claim_interface(0).wait()?;
            let mut out = iface.endpoint::<Bulk, Out>(endpoint_address(&iface, false)?)?;
            let mut inp = iface.endpoint::<Bulk, In>(endpoint_address(&iface, true)?)?;
            let mut w = out.allocate(64);
            w.extend_fill(64, 7);
            let mut r = inp.allocate(512);
            r.set_requested_len(512);
            for i in 0..samples + samples / 10 {
                let t = Instant::now();
                let c = out.transfer_blocking(w, timeout);
                c.status.map_err(|e| format!("echo write: {e}"))?;
                w = c.buffer;
                let c = inp.transfer_blocking(r, timeout);
                c.status.map_err(|e| format!("echo read: {e}"))?;
                if c.actual_len != 64 {
                    return Err(format!("echo read {} bytes", c.actual_len).into());
                }
                r = c.buffer;
                r.set_requested_len(512);
                if i >= samples / 10 {
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        Latency::Control => {
            for i in 0..samples + samples / 10 {
                let t = Instant::now();
                let data = device
                    .control_in(
                        ControlIn {
                            control_type: ControlType::Standard,
                            recipient: Recipient::Device,
                            request: 0x06,
                            value: 0x0100,
                            index: 0,
                            length: 18,
                        },
                        timeout,
                    )
                    .wait()
                    .map_err(|e| format!("GET_DESCRIPTOR: {e}"))?;
                if data.len() != 18 {
                    return Err("GET_DESCRIPTOR: short".into());
                }
                if i >= samples / 10 {
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    Ok(LatencyRun::from_samples(times))
}
