//! Loopback (f_loopback) through the public usbdf API on the simulator.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use usbdf::sim::{Loopback, SimHost, SimOptions, SourceSink};
use usbdf::{
    Bulk, CompletionRoutine, DeviceSelector, In, Out, Pipe, PipePolicy, Request, SendOptions,
    Status, Timeout, Zlp,
};

mod common;
use common::open_loopback;

const T: Timeout = Timeout::millis(2000);

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(salt))
        .collect()
}

fn write(out: &Pipe<Bulk, Out>, data: &[u8]) {
    let mut req = Request::with_capacity(data.len());
    req.memory_mut().set(data).unwrap();
    let c = out.write_sync(req, T).unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Success, data.len()));
}

/// Read until `n` bytes arrived (an echo may span several IN transfers).
fn read_exact(inp: &Pipe<Bulk, In>, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} bytes", got.len());
        let c = inp
            .read_sync(Request::with_capacity(16384), 16384, T)
            .unwrap();
        assert_eq!(c.status(), Status::Success);
        got.extend_from_slice(c.data());
    }
    got
}

#[test]
fn echo_small() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    write(&out, b"hello");
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Success);
    assert_eq!(c.data(), b"hello");
}

#[test]
fn echo_of_many_sizes_at_every_speed() {
    for speed in [usbdf::Speed::Full, usbdf::Speed::High, usbdf::Speed::Super] {
        let sim = SimHost::with_options(SimOptions::new().speed(speed));
        let _dev = sim.plug(Loopback::default());
        let (device, out, inp) = open_loopback(&sim);
        assert_eq!(device.speed(), Some(speed));
        let mps = out.info().max_packet_size;
        assert_eq!(mps, usbdf::sim::bulk_max_packet_size(speed) as usize);
        for (k, n) in [1, 63, 64, 65, 511, 512, 513, 1024, 4095, 4096, 4097, 10_000]
            .into_iter()
            .enumerate()
        {
            let data = payload(n, k as u8);
            write(&out, &data);
            assert_eq!(read_exact(&inp, n), data, "size {n} at {speed:?}");
        }
    }
}

#[test]
fn zero_length_write_echoes_a_zlp() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    let c = out.write_sync(Request::with_capacity(0), T).unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Success, 0));
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Success, 0));
}

/// A write shorter than bulk_buflen that ends on a full packet, without a
/// ZLP, leaves the gadget's OUT request open: nothing is echoed until more
/// data completes it (the real gadget's quirk).
#[test]
fn full_packet_write_is_not_echoed_until_more_data() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    out.set_policy(PipePolicy {
        zlp: Zlp::Never,
        ..PipePolicy::default()
    });
    let first = payload(512, 1);
    write(&out, &first);
    let start = Instant::now();
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, Timeout::millis(150))
        .unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::TimedOut, 0));
    assert!(start.elapsed() >= Duration::from_millis(150));

    let second = payload(100, 2);
    write(&out, &second);
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!(c.status(), Status::Success);
    let mut both = first.clone();
    both.extend_from_slice(&second);
    assert_eq!(c.data(), &both[..]);
}

/// With Zlp::Auto the same write is echoed at once (the ZLP ends the OUT
/// request, and the echo ends with a ZLP too).
#[test]
fn full_packet_write_with_zlp_is_echoed() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    let data = payload(1024, 3);
    write(&out, &data);
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!((c.status(), c.data()), (Status::Success, &data[..]));
}

/// When qlen gadget buffers wait to be read back, OUT NAKs; reading drains it.
#[test]
fn flow_control_when_all_buffers_are_echoing() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::new(2, 512));
    let (_d, out, inp) = open_loopback(&sim);
    write(&out, &payload(100, 0));
    write(&out, &payload(100, 1));
    let mut req = Request::with_capacity(100);
    req.memory_mut().set(&payload(100, 2)).unwrap();
    let c = out.write_sync(req, Timeout::millis(100)).unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::TimedOut, 0));
    for salt in 0..2 {
        let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
        assert_eq!(c.data(), &payload(100, salt)[..]);
    }
    write(&out, &payload(100, 3));
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.data(), &payload(100, 3)[..]);
}

#[test]
fn pooled_async_reads_and_writes_keep_order() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    let wpool = out.request_pool(8, 512);
    let rpool = inp.request_pool(8, 512);
    for round in 0..20u8 {
        let reads: Vec<_> = (0..8)
            .map(|_| {
                inp.read(rpool.take().unwrap(), 512, &SendOptions::new())
                    .unwrap()
            })
            .collect();
        let writes: Vec<_> = (0..8u8)
            .map(|i| {
                let mut r = wpool.take().unwrap();
                r.memory_mut().set(&payload(100, round ^ i)).unwrap();
                out.write(r, &SendOptions::new()).unwrap()
            })
            .collect();
        for w in writes {
            assert_eq!(futures::executor::block_on(w).status(), Status::Success);
        }
        for (i, r) in reads.into_iter().enumerate() {
            let c = futures::executor::block_on(r);
            assert_eq!(c.status(), Status::Success);
            assert_eq!(c.data(), &payload(100, round ^ i as u8)[..]);
        }
    }
    assert_eq!(wpool.available(), 8);
    assert_eq!(rpool.available(), 8);
}

#[test]
fn completion_routines_deliver_every_echo() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    let (tx, rx) = mpsc::channel();
    let on_read: CompletionRoutine = Arc::new(move |c: usbdf::Completion| {
        tx.send((c.status(), c.data().to_vec())).unwrap();
    });
    let (wtx, wrx) = mpsc::channel();
    let on_write: CompletionRoutine = Arc::new(move |c: usbdf::Completion| {
        wtx.send(c.status()).unwrap();
    });
    for i in 0..16u8 {
        inp.read_with(
            Request::with_capacity(512),
            512,
            &SendOptions::new(),
            &on_read,
        )
        .unwrap();
        let mut r = Request::with_capacity(64);
        r.memory_mut()
            .set(&payload(10 + usize::from(i), i))
            .unwrap();
        out.write_with(r, &SendOptions::new(), &on_write).unwrap();
    }
    let mut echoes = Vec::new();
    for _ in 0..16 {
        let (s, data) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(s, Status::Success);
        echoes.push(data);
        assert_eq!(
            wrx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Status::Success
        );
    }
    let want: Vec<Vec<u8>> = (0..16u8).map(|i| payload(10 + usize::from(i), i)).collect();
    assert_eq!(echoes, want);
}

/// Cancel one read while the (throttled) source is mid-transfer: it ends
/// Cancelled with whole packets, in pattern, and the pipe goes on.
#[test]
fn cancel_mid_flight_keeps_whole_packets() {
    let sim = SimHost::with_options(SimOptions::new().packets_per_ms(Some(1)));
    let dev = sim.plug(SourceSink::default());
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let inp = iface.open_pipe::<Bulk, In>(0x81).unwrap();
    let sent = inp
        .read(
            Request::with_capacity(64 * 512),
            64 * 512,
            &SendOptions::new(),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while dev.packets_moved() < 3 {
        assert!(Instant::now() < deadline, "no packets moved");
        std::thread::yield_now();
    }
    assert_eq!(
        sent.cancel_handle().cancel(),
        usbdf::CancelOutcome::Requested
    );
    let c = futures::executor::block_on(sent);
    assert_eq!(c.status(), Status::Cancelled);
    assert!(c.bytes() > 0 && c.bytes() < 64 * 512, "{}", c.bytes());
    assert_eq!(c.bytes() % 512, 0);
    for (i, &b) in c.data().iter().enumerate() {
        assert_eq!(b, ((i % 512) % 63) as u8, "byte {i}");
    }
    dev.set_packets_per_ms(None);
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Success);
}
