//! Raw nusb 0.2: the same access pattern as the usbdf runs, directly on an endpoint:
//! `Endpoint::allocate` (zero-copy) buffers, submit `depth`, `wait_next_complete`, resubmit.

use std::time::{Duration, Instant};

use nusb::transfer::{Bulk, ControlIn, ControlType, In, Out, Recipient};
use nusb::MaybeFuture;

use crate::gadget;
use crate::measure::{Cell, Latency, LatencyRun};
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

/// Measure one cell, MB/s.
pub fn throughput(cell: &Cell, cfg: &Config) -> Result<f64> {
    let device = open(gadget::VID_PID)?;
    let iface = device.claim_interface(0).wait()?;
    if cell.scenario.is_in() {
        let ep = iface.endpoint::<Bulk, In>(endpoint_address(&iface, true)?)?;
        let mut bufs = Vec::new();
        for _ in 0..cell.depth {
            let mut b = ep.allocate(cell.size);
            b.set_requested_len(cell.size);
            bufs.push(b);
        }
        // Two closures use the endpoint mutably: go through a RefCell.
        let ep = std::cell::RefCell::new(ep);
        run(
            cell,
            cfg,
            bufs,
            |b| ep.borrow_mut().submit(b),
            |t| ep.borrow_mut().wait_next_complete(t),
        )
    } else {
        let ep = iface.endpoint::<Bulk, Out>(endpoint_address(&iface, false)?)?;
        let mut bufs = Vec::new();
        for _ in 0..cell.depth {
            let mut b = ep.allocate(cell.size);
            b.extend_fill(cell.size, 0);
            bufs.push(b);
        }
        let ep = std::cell::RefCell::new(ep);
        run(
            cell,
            cfg,
            bufs,
            |b| ep.borrow_mut().submit(b),
            |t| ep.borrow_mut().wait_next_complete(t),
        )
    }
}

fn run(
    cell: &Cell,
    cfg: &Config,
    bufs: Vec<nusb::transfer::Buffer>,
    mut submit: impl FnMut(nusb::transfer::Buffer),
    mut next: impl FnMut(Duration) -> Option<nusb::transfer::Completion>,
) -> Result<f64> {
    for b in bufs {
        submit(b);
    }
    let start = Instant::now();
    let window_start = start + cfg.warmup;
    let window_end = window_start + cfg.window;
    let mut bytes = 0u64;
    let mut measuring: Option<Instant> = None;
    let mut outstanding = cell.depth;
    let mut result = None;
    while outstanding > 0 {
        let c = next(Duration::from_secs(5)).ok_or("nusb: transfer timed out")?;
        outstanding -= 1;
        c.status.map_err(|e| format!("nusb: {e}"))?;
        let now = Instant::now();
        if result.is_some() {
            continue;
        }
        match measuring {
            None if now >= window_start => measuring = Some(now),
            None => {}
            Some(t0) => {
                bytes += c.actual_len as u64;
                if now >= window_end {
                    result = Some(bytes as f64 / (now - t0).as_secs_f64() / 1e6);
                    continue;
                }
            }
        }
        let mut b = c.buffer;
        if cell.scenario.is_in() {
            b.set_requested_len(cell.size);
        } else if b.len() != cell.size {
            b.clear();
            b.extend_fill(cell.size, 0);
        }
        submit(b);
        outstanding += 1;
    }
    result.ok_or_else(|| "nusb: no result".into())
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
