//! Fault injection and unplug through the public usbdf API on the simulator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use usbdf::control::{ControlDirection, Recipient, RequestKind};
use usbdf::sim::{FaultInjector, Loopback, SimHost, SimOptions, SourceSink};
use usbdf::{
    CompletionRoutine, DeviceSelector, Error, Request, SendErrorKind, SendOptions, SetupPacket,
    Status, Timeout,
};

mod common;
use common::{open_loopback, open_sourcesink};

const T: Timeout = Timeout::millis(2000);

#[test]
fn nak_forever_times_out_at_the_deadline() {
    let model = FaultInjector::new(SourceSink::default(), 1);
    let faults = model.faults();
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (_d, _out, inp) = open_sourcesink(&sim);
    faults.nak_forever(0x81, true);
    let start = Instant::now();
    let c = inp
        .read_sync(Request::with_capacity(512), 512, Timeout::millis(100))
        .unwrap();
    let took = start.elapsed();
    assert_eq!((c.status(), c.bytes()), (Status::TimedOut, 0));
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    faults.nak_forever(0x81, false);
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Success);
}

#[test]
fn injected_stall_short_packet_and_babble() {
    let model = FaultInjector::new(SourceSink::default(), 2);
    let faults = model.faults();
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (_d, _out, inp) = open_sourcesink(&sim);

    faults.short_packet(0x81, 100);
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Success, 100));

    faults.babble(0x81);
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Overflow);
    inp.abort(T).unwrap();
    inp.reset().unwrap();

    faults.stall_after_packets(0x81, 2);
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Stall, 1024));
    assert_eq!(
        inp.read(Request::with_capacity(512), 512, &SendOptions::new())
            .unwrap_err()
            .kind(),
        SendErrorKind::Halted(Status::Stall)
    );
    inp.abort(T).unwrap();
    inp.reset().unwrap();
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Success);
    assert_eq!(faults.injected(), 3);
}

#[test]
fn control_nak_times_out_and_stall_is_reported() {
    let model = FaultInjector::new(SourceSink::default(), 3);
    let faults = model.faults();
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (device, _out, _inp) = open_sourcesink(&sim);
    let read = SetupPacket::new(
        ControlDirection::In,
        RequestKind::Vendor,
        Recipient::Device,
        0x5c,
        0,
        0,
        16,
    );
    faults.nak_control(true);
    let start = Instant::now();
    let r = device.control_pipe().read(read, Timeout::millis(80));
    assert!(matches!(r, Err(Error::Transfer(Status::TimedOut))), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(80));
    faults.nak_control(false);
    faults.stall_control(1);
    let r = device.control_pipe().read(read, T);
    assert!(matches!(r, Err(Error::Transfer(Status::Stall))), "{r:?}");
    assert_eq!(device.control_pipe().read(read, T).unwrap().len(), 16);
}

/// Every pending request completes Disconnected exactly once; later sends
/// are refused with Disconnected.
#[test]
fn unplug_completes_every_pending_request_once() {
    let sim = SimHost::new();
    let dev = sim.plug(Loopback::default());
    let (device, out, inp) = open_loopback(&sim);
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let routine: CompletionRoutine = {
        let count = count.clone();
        Arc::new(move |c: usbdf::Completion| {
            count.fetch_add(1, Ordering::SeqCst);
            tx.send(c.status()).unwrap();
        })
    };
    for _ in 0..8 {
        inp.read_with(
            Request::with_capacity(512),
            512,
            &SendOptions::new(),
            &routine,
        )
        .unwrap();
    }
    dev.unplug();
    for _ in 0..8 {
        let s = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(s, Status::Disconnected);
    }
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert_eq!(count.load(Ordering::SeqCst), 8);

    let err = out
        .write(Request::with_capacity(8), &SendOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Disconnected);
    assert!(matches!(
        device.claim_interface(0),
        Err(Error::Disconnected)
    ));
    assert!(!device.is_connected());
    assert!(matches!(
        sim.host().open(&DeviceSelector::id(0x0525, 0xa4a9)),
        Err(Error::DeviceNotFound)
    ));

    // Replugged: a new connection, found and used afresh.
    assert!(dev.replug());
    let (_d, out, inp) = open_loopback(&sim);
    let mut req = Request::with_capacity(4);
    req.memory_mut().set(b"back").unwrap();
    assert_eq!(out.write_sync(req, T).unwrap().status(), Status::Success);
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.data(), b"back");
}

/// Linux reports some unplugs as a protocol error (Fault); the engine asks
/// the device and reports Disconnected.
#[test]
fn fault_on_unplug_is_reported_as_disconnected() {
    let sim = SimHost::with_options(SimOptions::new().fault_on_unplug(1.0));
    let dev = sim.plug(Loopback::default());
    let (_d, out, inp) = open_loopback(&sim);
    let sent: Vec<_> = (0..4)
        .map(|_| {
            inp.read(Request::with_capacity(512), 512, &SendOptions::new())
                .unwrap()
        })
        .collect();
    dev.unplug();
    for s in sent {
        let c = s.wait(T);
        assert_eq!(c.status(), Status::Disconnected);
    }
    let err = out
        .write(Request::with_capacity(8), &SendOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Disconnected);
}

#[test]
fn disconnect_mid_transfer() {
    let sim = SimHost::new();
    let dev = sim.plug(SourceSink::default());
    let (_d, _out, inp) = open_sourcesink(&sim);
    dev.disconnect_after_packets(5);
    let c = inp
        .read_sync(Request::with_capacity(16 * 512), 16 * 512, T)
        .unwrap();
    assert_eq!(c.status(), Status::Disconnected);
    assert!(!dev.is_plugged());
}

#[test]
fn delayed_completion_holds_the_result() {
    let sim = SimHost::new();
    let dev = sim.plug(SourceSink::default());
    let (_d, _out, inp) = open_sourcesink(&sim);
    dev.set_completion_delay(Some(Duration::from_millis(60)));
    let start = Instant::now();
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!(c.status(), Status::Success);
    assert!(start.elapsed() >= Duration::from_millis(60));
    // A timeout shorter than the delay: the transfer finished on the bus,
    // the cancel loses the race, the data is kept.
    let c = inp
        .read_sync(Request::with_capacity(512), 512, Timeout::millis(10))
        .unwrap();
    assert!(
        matches!(c.status(), Status::Success | Status::TimedOut),
        "{:?}",
        c.status()
    );
    dev.set_completion_delay(None);
}

#[test]
fn random_naks_are_seeded_and_lose_nothing() {
    let model = FaultInjector::new(Loopback::default(), 99);
    let faults = model.faults();
    faults.random_naks(0x01, 0.5);
    faults.random_naks(0x81, 0.5);
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (_d, out, inp) = open_loopback(&sim);
    for i in 0..50u8 {
        let data: Vec<u8> = (0..700).map(|k| (k as u8) ^ i).collect();
        let mut req = Request::with_capacity(700);
        req.memory_mut().set(&data).unwrap();
        assert_eq!(out.write_sync(req, T).unwrap().status(), Status::Success);
        let c = inp
            .read_sync(Request::with_capacity(1024), 1024, T)
            .unwrap();
        assert_eq!(c.data(), &data[..]);
    }
}
