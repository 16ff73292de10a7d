//! The demo's logic, as a library so the VM suite can run it against the
//! real gadgets: [`run`] picks real devices or the simulator, [`run_on`]
//! runs the demos on a given host.

use std::time::{Duration, Instant};

use usbdf::control::{ControlDirection, Recipient, RequestKind};
use usbdf::sim::{Loopback, Pattern, SimHost, SourceSink};
use usbdf::{
    Bulk, Device, DeviceSelector, Host, In, Out, Pipe, SendOptions, SetupPacket, Status, Timeout,
};

/// Gadget zero's Loopback function in usbdf's VM.
pub const LOOPBACK: (u16, u16) = (0x0525, 0xa4a9);
/// Gadget zero's SourceSink function.
pub const SOURCESINK: (u16, u16) = (0x0525, 0xa4a0);
const T: Timeout = Timeout::millis(2000);

/// The demo's error type: any error, with its causes.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Run the demos on real gadgets when both are attached, else (or with
/// `force_sim`) on the built-in simulated devices. Says which.
pub fn run(force_sim: bool) -> Result<()> {
    let system = Host::system();
    let present = |(v, p): (u16, u16)| {
        system
            .devices()
            .map(|d| d.iter().any(|i| i.vendor_id() == v && i.product_id() == p))
            .unwrap_or(false)
    };
    // Keep the simulator alive for the whole run when it is used.
    let mut _sim = None;
    let host = if !force_sim && present(LOOPBACK) && present(SOURCESINK) {
        println!("Using REAL devices on the system USB stack (gadget zero Loopback + SourceSink).");
        system
    } else {
        let why = if force_sim {
            "--sim given"
        } else {
            match system.devices() {
                Ok(_) => "no gadget-zero device attached",
                Err(_) => "no USB subsystem on this machine",
            }
        };
        println!("Using the built-in SIMULATED devices ({why}): Loopback + SourceSink.");
        let sim = SimHost::new();
        let handles = (
            sim.plug(Loopback::default()),
            sim.plug(SourceSink::new(Pattern::Mod63, 4096)),
        );
        let host = sim.host();
        _sim = Some((sim, handles));
        host
    };

    run_on(&host)
}

/// Run every demo on `host`'s Loopback and SourceSink devices.
pub fn run_on(host: &Host) -> Result<()> {
    let lb = host.open(&DeviceSelector::id(LOOPBACK.0, LOOPBACK.1))?;
    let ss = host.open(&DeviceSelector::id(SOURCESINK.0, SOURCESINK.1))?;
    loopback_echo(&lb)?;
    sourcesink(&ss)?;
    println!("All demos passed on the {} host.", host.name());
    Ok(())
}

fn pipes(device: &Device) -> Result<(Pipe<Bulk, Out>, Pipe<Bulk, In>)> {
    let iface = device.claim_interface(0)?;
    // Addresses come from the descriptor: dummy_hcd gives SourceSink's OUT
    // endpoint address 0x02, the simulator 0x01.
    Ok((iface.open_first()?, iface.open_first()?))
}

/// Echo 4 KiB blocks through Loopback with 8 requests in flight, verify
/// every byte, and report the throughput.
fn loopback_echo(device: &Device) -> Result<()> {
    let (out, inp) = pipes(device)?;
    // Each 4 KiB write fills one Loopback buffer exactly, which ends the
    // gadget's request; an automatic ZLP would be echoed as an empty read.
    out.set_policy(usbdf::PipePolicy {
        zlp: usbdf::Zlp::Never,
        ..out.policy()
    });
    const BLOCK: usize = 4096;
    const BLOCKS: usize = 2000;
    let wpool = out.request_pool(8, BLOCK);
    let rpool = inp.request_pool(8, BLOCK);
    let started = Instant::now();
    let mut block = 0usize;
    while block < BLOCKS {
        let n = (BLOCKS - block).min(8);
        let reads: Vec<_> = (0..n)
            .map(|_| inp.read(rpool.take().expect("pool"), BLOCK, &SendOptions::new()))
            .collect::<std::result::Result<_, _>>()?;
        let writes: Vec<_> = (0..n)
            .map(|i| {
                let mut r = wpool.take().expect("pool");
                r.memory_mut()
                    .fill_with(BLOCK, |j| (block + i + j) as u8)
                    .expect("fits");
                out.write(r, &SendOptions::new())
            })
            .collect::<std::result::Result<_, _>>()?;
        for w in writes {
            let c = w.wait(T);
            if c.status() != Status::Success {
                return Err(format!("loopback write: {}", c.status()).into());
            }
        }
        for (i, r) in reads.into_iter().enumerate() {
            let c = r.wait(T);
            if c.status() != Status::Success || c.bytes() != BLOCK {
                return Err(format!("loopback read: {} ({} bytes)", c.status(), c.bytes()).into());
            }
            if c.data()
                .iter()
                .enumerate()
                .any(|(j, &b)| b != (block + i + j) as u8)
            {
                return Err("loopback echo corrupted".into());
            }
        }
        block += n;
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = (BLOCKS * BLOCK) as f64 / 1e6;
    println!(
        "loopback: echoed {BLOCKS} x {BLOCK} B, every byte verified, {:.1} MB/s each way",
        mb / secs
    );
    Ok(())
}

/// Read the source pattern, write it to the sink, round-trip the vendor
/// buffer, and cancel one request of a live queue.
fn sourcesink(device: &Device) -> Result<()> {
    let (out, inp) = pipes(device)?;
    let pool = inp.request_pool(8, 4096);
    let mut checked = 0usize;
    for _ in 0..64 {
        let c = inp
            .read(pool.take().expect("pool"), 4096, &SendOptions::new())?
            .wait(T);
        if c.status() != Status::Success {
            return Err(format!("source read: {}", c.status()).into());
        }
        for (i, &b) in c.data().iter().enumerate() {
            if b != Pattern::Mod63.byte(i, inp.info().max_packet_size) {
                return Err(format!("source pattern wrong at byte {i}").into());
            }
        }
        checked += c.bytes();
    }
    let mut w = usbdf::Request::with_capacity(4096);
    w.memory_mut()
        .fill_with(4096, |i| Pattern::Mod63.byte(i, out.info().max_packet_size))?;
    let c = out.write_sync(w, T)?;
    if c.status() != Status::Success {
        return Err(format!("sink write: {}", c.status()).into());
    }
    println!("sourcesink: {checked} bytes of pattern 1 verified; 4096 bytes accepted by the sink");

    let ctl = device.control_pipe();
    let data: Vec<u8> = (0..64u8).collect();
    let vendor = |dir, len| {
        SetupPacket::new(
            dir,
            RequestKind::Vendor,
            Recipient::Device,
            if dir == ControlDirection::Out {
                0x5b
            } else {
                0x5c
            },
            0,
            0,
            len,
        )
    };
    ctl.write(vendor(ControlDirection::Out, 64), &data, T)?;
    let back = ctl.read(vendor(ControlDirection::In, 64), T)?;
    if back != data {
        return Err("vendor buffer 0x5b/0x5c did not round-trip".into());
    }
    println!("control: vendor 0x5b/0x5c round trip of 64 bytes");

    // Cancel the middle request of 8 in flight; the others keep their data.
    let sent: Vec<_> = (0..8)
        .map(|_| inp.read(pool.take().expect("pool"), 4096, &SendOptions::new()))
        .collect::<std::result::Result<_, _>>()?;
    let outcome = sent[4].cancel();
    let mut statuses = Vec::new();
    for s in sent {
        statuses.push(s.wait(Timeout::After(Duration::from_secs(5))).status());
    }
    let ok = statuses.iter().filter(|s| **s == Status::Success).count();
    println!(
        "cancel: request 4 of 8 -> {outcome:?}; it completed {}; {ok} of 8 succeeded",
        statuses[4]
    );
    Ok(())
}
