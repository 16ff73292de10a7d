//! SourceSink (f_sourcesink) through the public usbdf API on the simulator.

use usbdf::control::{ControlDirection, Recipient, RequestKind};
use usbdf::sim::{Pattern, SimHost, SourceSink};
use usbdf::{Bulk, Out, Pipe, Request, SetupPacket, Status, Timeout};

mod common;
use common::open_sourcesink;

const T: Timeout = Timeout::millis(2000);

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i % 4096 % 512) % 63) as u8).collect()
}

fn write(out: &Pipe<Bulk, Out>, data: &[u8]) -> usbdf::Completion {
    let mut req = Request::with_capacity(data.len());
    req.memory_mut().set(data).unwrap();
    out.write_sync(req, T).unwrap()
}

#[test]
fn source_sends_pattern_1() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::default());
    let (device, _out, inp) = open_sourcesink(&sim);
    assert_eq!(device.string(2, 0x0409, T).unwrap(), "usbdf SourceSink");
    for _ in 0..3 {
        let c = inp
            .read_sync(Request::with_capacity(8192), 8192, T)
            .unwrap();
        assert_eq!(c.status(), Status::Success);
        assert_eq!(c.data(), &pattern(8192)[..]);
    }
}

#[test]
fn source_zeros_and_short_gadget_requests() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::new(Pattern::Zeros, 1000));
    let (_d, _out, inp) = open_sourcesink(&sim);
    // 1000 = 512 + 488: every gadget request ends on a short packet.
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!((c.status(), c.bytes()), (Status::Success, 1000));
    assert!(c.data().iter().all(|&b| b == 0));
}

#[test]
fn sink_accepts_the_pattern() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::default());
    let (_d, out, _inp) = open_sourcesink(&sim);
    for _ in 0..4 {
        let c = write(&out, &pattern(4096));
        assert_eq!((c.status(), c.bytes()), (Status::Success, 4096));
    }
}

#[test]
fn sink_mismatch_halts_until_reset() {
    let sim = SimHost::new();
    let dev = sim.plug(SourceSink::default());
    let (device, out, _inp) = open_sourcesink(&sim);
    // The gadget checks the request when it completes (here: on the ZLP
    // after 512 bytes), so the bad write itself was accepted…
    let mut bad = pattern(512);
    bad[10] ^= 0xff;
    let c = write(&out, &bad);
    assert_eq!(c.status(), Status::Success);
    // …and the endpoint is halted from then on.
    assert!(dev.is_halted(0x01));
    let status = device
        .control_pipe()
        .read(SetupPacket::get_status(Recipient::Endpoint, 0x01), T)
        .unwrap();
    assert_eq!(status, [1, 0]);
    let c = write(&out, &pattern(100));
    assert_eq!(c.status(), Status::Stall);
    assert_eq!(out.halted(), Some(Status::Stall));

    out.abort(T).unwrap();
    out.reset().unwrap();
    assert!(!dev.is_halted(0x01));
    assert!(
        !dev.data_toggle(0x01),
        "clear-halt resets the toggle to DATA0"
    );
    let c = write(&out, &pattern(100));
    assert_eq!(c.status(), Status::Success);
    let status = device
        .control_pipe()
        .read(SetupPacket::get_status(Recipient::Endpoint, 0x01), T)
        .unwrap();
    assert_eq!(status, [0, 0]);
}

#[test]
fn vendor_buffer_round_trip() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::default());
    let (device, _out, _inp) = open_sourcesink(&sim);
    let data: Vec<u8> = (0..300u32).map(|i| (i * 3) as u8).collect();
    let write = SetupPacket::new(
        ControlDirection::Out,
        RequestKind::Vendor,
        Recipient::Device,
        0x5b,
        0,
        0,
        0,
    );
    let n = device.control_pipe().write(write, &data, T).unwrap();
    assert_eq!(n, 300);
    let read = SetupPacket::new(
        ControlDirection::In,
        RequestKind::Vendor,
        Recipient::Device,
        0x5c,
        0,
        0,
        300,
    );
    assert_eq!(device.control_pipe().read(read, T).unwrap(), data);

    // A non-zero wValue is refused, as the gadget does.
    let bad = SetupPacket { value: 1, ..read };
    assert!(matches!(
        device.control_pipe().read(bad, T),
        Err(usbdf::Error::Transfer(Status::Stall))
    ));
}

#[test]
fn standard_requests_answered_by_the_simulator() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::default());
    let (device, _out, _inp) = open_sourcesink(&sim);
    let cp = device.control_pipe();
    let dd = cp
        .read(
            SetupPacket::get_descriptor(usbdf::descriptor::DEVICE, 0, 0, 18),
            T,
        )
        .unwrap();
    assert_eq!(
        usbdf::descriptor::DeviceDescriptor::parse(&dd).unwrap(),
        *device.device_descriptor()
    );
    // A short read of the configuration descriptor is cut to wLength.
    let head = cp
        .read(
            SetupPacket::get_descriptor(usbdf::descriptor::CONFIGURATION, 0, 0, 9),
            T,
        )
        .unwrap();
    assert_eq!(head.len(), 9);
    assert_eq!(device.languages(T).unwrap(), vec![0x0409]);
    assert_eq!(device.string(3, 0x0409, T).unwrap(), "usbdf-ss");
    assert!(device.string(9, 0x0409, T).is_err());
    assert_eq!(device.active_configuration().unwrap().value, 1);
    assert!(device.is_connected());
}
