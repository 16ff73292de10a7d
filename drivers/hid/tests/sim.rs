//! The HID driver against the simulator's `Hid` model (Linux f_hid).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use usbdf::driver::{Driver, Probe, ProbeContext};
use usbdf::sim::{self, HidLayout, SimHost};
use usbdf::{Device, DeviceSelector, ReaderState, Timeout};
use usbdf_hid::{
    generic_desktop as gd, HidConfig, HidDevice, HidDriver, HidError, InputReport, ParseError,
    Protocol, ReportKind, Usage, ID_TABLE,
};

const T: Timeout = Timeout::millis(2000);
const VENDOR_IN: Usage = Usage::new(0xff00, 0x02);

#[rustfmt::skip]
const BOOT_MOUSE: [u8; 50] = [
    0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01,
    0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05, 0x81, 0x01,
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81, 0x25, 0x7f,
    0x75, 0x08, 0x95, 0x02, 0x81, 0x06, 0xc0, 0xc0,
];

fn plug(model: sim::Hid) -> (SimHost, sim::SimDeviceHandle, sim::HidDevice, Device) {
    let gadget = model.device();
    let sim = SimHost::new();
    let handle = sim.plug(model);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4ac))
        .unwrap();
    (sim, handle, gadget, device)
}

/// A report of the default descriptor: ID 1 and 8 bytes from `n`.
fn input_report(n: u32) -> Vec<u8> {
    let mut r = vec![1];
    r.extend_from_slice(&n.to_le_bytes());
    r.extend_from_slice(&(!n).to_le_bytes());
    r
}

/// A config whose callback forwards every input report to a channel.
fn forwarding(config: HidConfig) -> (HidConfig, mpsc::Receiver<InputReport>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let config = config.on_input(move |r| {
        let _ = tx.lock().unwrap().send(r.clone());
    });
    (config, rx)
}

#[test]
fn descriptor_is_fetched_and_parsed() {
    let (_sim, _h, _gadget, device) = plug(sim::Hid::default());
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    assert_eq!(hid.raw_report_descriptor(), sim::DEFAULT_REPORT_DESCRIPTOR);
    assert_eq!(hid.hid_descriptor().report_descriptor_length(), Some(37));
    let rd = hid.descriptor();
    assert!(rd.uses_report_ids());
    let lens: Vec<_> = rd
        .reports()
        .iter()
        .map(|r| (r.kind, r.id, r.data_len()))
        .collect();
    assert_eq!(
        lens,
        [
            (ReportKind::Input, 1, 8),
            (ReportKind::Output, 2, 8),
            (ReportKind::Feature, 3, 4)
        ]
    );
    assert!(hid.has_output_endpoint());
    assert_eq!(hid.input_endpoint(), 0x81);
    assert_eq!(hid.reader_state(), ReaderState::Stopped);
    assert!(matches!(
        hid.read_input(Timeout::millis(10)),
        Err(HidError::NotRunning)
    ));
}

#[test]
fn input_reports_arrive_decoded_in_order_none_lost() {
    const N: u32 = 1000;
    let (_sim, _h, gadget, device) = plug(sim::Hid::default());
    let (config, rx) = forwarding(HidConfig::default().queue_len(N as usize));
    let hid = HidDevice::open(&device, 0, config).unwrap();
    hid.start().unwrap();
    for n in 0..N {
        gadget.send_input_report(&input_report(n));
        // f_hid sends a ZLP after a report that fills the max packet size:
        // not a report, skipped.
        if n % 10 == 0 {
            gadget.send_input_report(&[]);
        }
    }
    for n in 0..N {
        let r = hid.read_input(T).unwrap();
        assert_eq!((r.id, r.error.as_ref()), (1, None));
        assert_eq!(r.raw, input_report(n));
        let values: Vec<i64> = r.values(VENDOR_IN).collect();
        let expect: Vec<i64> = input_report(n)[1..].iter().map(|&b| i64::from(b)).collect();
        assert_eq!(values, expect, "report {n}");
        // The callback saw the same report, in the same order.
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), r);
    }
    assert_eq!(
        (hid.inputs_received(), hid.inputs_dropped()),
        (u64::from(N), 0)
    );
    assert!(matches!(
        hid.read_input(Timeout::millis(20)),
        Err(HidError::TimedOut)
    ));
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::default());
    let (config, rx) = forwarding(HidConfig::default().queue_len(4));
    let hid = HidDevice::open(&device, 0, config).unwrap();
    hid.start().unwrap();
    for n in 0..10 {
        gadget.send_input_report(&input_report(n));
    }
    for _ in 0..10 {
        rx.recv_timeout(Duration::from_secs(2)).unwrap();
    }
    assert_eq!((hid.inputs_received(), hid.inputs_dropped()), (10, 6));
    for n in 6..10 {
        assert_eq!(hid.try_read_input().unwrap().raw, input_report(n));
    }
    assert!(hid.try_read_input().is_none());
}

#[test]
fn reports_without_ids_decode_by_usage() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::new(BOOT_MOUSE.to_vec(), 3).with_layout(
        HidLayout {
            interface: 0,
            report_in: 0x81,
            report_out: None,
        },
    ));
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    assert!(!hid.descriptor().uses_report_ids());
    hid.start().unwrap();
    gadget.send_input_report(&[0b101, 0xfe, 0x05]);
    let r = hid.read_input(T).unwrap();
    assert_eq!(r.id, 0);
    assert_eq!(r.get(Usage::new(0x09, 1)), Some(1));
    assert_eq!(r.get(Usage::new(0x09, 2)), Some(0));
    assert_eq!(r.get(Usage::new(0x09, 3)), Some(1));
    assert_eq!((r.get(gd::X), r.get(gd::Y)), (Some(-2), Some(5)));
    assert_eq!(r.data(), [0b101, 0xfe, 0x05]);
    // No output report in this descriptor.
    assert!(matches!(
        hid.write_output(0, &[1]),
        Err(HidError::UnknownReport {
            kind: ReportKind::Output,
            id: 0
        })
    ));
}

#[test]
fn output_reports_reach_the_model_on_interrupt_out() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::default());
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    hid.write_output(2, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    hid.write_output(2, &[9]).unwrap();
    assert_eq!(
        gadget.output_reports(),
        [
            vec![2, 1, 2, 3, 4, 5, 6, 7, 8],
            vec![2, 9, 0, 0, 0, 0, 0, 0, 0]
        ]
    );
    let encoded = hid
        .descriptor()
        .output(2)
        .unwrap()
        .encode_usages(&[(Usage::new(0xff00, 3), 0x11), (Usage::new(0xff00, 3), 0x22)])
        .unwrap();
    hid.write_output(2, &encoded).unwrap();
    assert_eq!(
        gadget.output_reports(),
        [vec![2, 0x11, 0x22, 0, 0, 0, 0, 0, 0]]
    );
    assert!(matches!(
        hid.write_output(2, &[0; 9]),
        Err(HidError::ReportTooLong { len: 9, max: 8, .. })
    ));
    assert!(matches!(
        hid.write_output(1, &[0]),
        Err(HidError::UnknownReport { .. })
    ));
}

#[test]
fn output_reports_use_set_report_without_an_out_endpoint() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::default().with_layout(HidLayout {
        interface: 0,
        report_in: 0x81,
        report_out: None,
    }));
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    assert!(!hid.has_output_endpoint());
    hid.write_output(2, &[0xaa; 8]).unwrap();
    let mut expect = vec![2];
    expect.extend([0xaa; 8]);
    assert_eq!(gadget.output_reports(), [expect]);
}

#[test]
fn feature_reports_both_ways() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::default());
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    gadget.set_feature_report(3, &[3, 0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(hid.get_feature(3).unwrap(), [0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(
        hid.get_report(ReportKind::Feature, 3).unwrap(),
        [3, 0xaa, 0xbb, 0xcc, 0xdd]
    );
    hid.set_feature(3, &[1, 2]).unwrap();
    assert_eq!(gadget.feature_reports_set(), [(3, vec![3, 1, 2, 0, 0])]);
    assert_eq!(hid.get_feature(3).unwrap(), [1, 2, 0, 0]);
    // A device answering with another ID is caught.
    gadget.set_feature_report(3, &[7, 1, 2, 3, 4]);
    assert!(matches!(
        hid.get_feature(3),
        Err(HidError::ReportIdMismatch {
            expected: 3,
            got: Some(7)
        })
    ));
    // GET_REPORT(Input) returns the last input report.
    gadget.send_input_report(&input_report(5));
    assert_eq!(
        hid.get_report(ReportKind::Input, 1).unwrap(),
        input_report(5)
    );
}

#[test]
fn idle_and_protocol_reach_the_model() {
    let (_sim, _h, gadget, device) = plug(sim::Hid::default());
    let hid = HidDevice::open(&device, 0, HidConfig::default()).unwrap();
    hid.set_idle(0, Some(Duration::from_millis(500))).unwrap();
    assert_eq!(gadget.idle(), 125);
    assert_eq!(hid.get_idle(0).unwrap(), Some(Duration::from_millis(500)));
    hid.set_idle(0, None).unwrap();
    assert_eq!(gadget.idle(), 0);
    assert_eq!(hid.get_idle(0).unwrap(), None);
    for bad in [3, 1024, 0].map(Duration::from_millis) {
        assert!(matches!(
            hid.set_idle(0, Some(bad)),
            Err(HidError::InvalidIdle(_))
        ));
    }
    assert_eq!(hid.get_protocol().unwrap(), Protocol::Report);
    hid.set_protocol(Protocol::Boot).unwrap();
    assert_eq!(gadget.protocol(), 0);
    assert_eq!(hid.get_protocol().unwrap(), Protocol::Boot);
}

#[test]
fn unplug_mid_read_is_disconnected_and_later_calls_fail_fast() {
    let (_sim, handle, gadget, device) = plug(sim::Hid::default());
    let (config, rx) = forwarding(HidConfig::default());
    let hid = HidDevice::open(&device, 0, config).unwrap();
    hid.start().unwrap();
    // Two reports queued before the unplug are still delivered first.
    gadget.send_input_report(&input_report(1));
    gadget.send_input_report(&input_report(2));
    rx.recv_timeout(Duration::from_secs(2)).unwrap();
    rx.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(hid.read_input(T).unwrap().raw, input_report(1));

    let reader = hid.clone();
    let blocked = std::thread::spawn(move || {
        // Takes report 2, then blocks until the unplug.
        let first = reader.read_input(Timeout::millis(10_000)).map(|r| r.raw);
        let start = Instant::now();
        (first, reader.read_input(Timeout::millis(10_000)), start)
    });
    // The continuous reader has interrupt IN reads pending on the bus:
    // the unplug catches them mid-read.
    assert!(handle.unplug());
    let (first, second, start) = blocked.join().unwrap();
    assert_eq!(first.unwrap(), input_report(2));
    assert!(matches!(second, Err(HidError::Disconnected)), "{second:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(hid.reader_state(), ReaderState::Gone);

    let t = Instant::now();
    assert!(hid.read_input(T).unwrap_err().is_disconnected());
    assert!(hid.write_output(2, &[1]).unwrap_err().is_disconnected());
    assert!(hid.get_feature(3).unwrap_err().is_disconnected());
    assert!(hid.set_idle(0, None).unwrap_err().is_disconnected());
    assert!(matches!(hid.start(), Err(HidError::Disconnected)));
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn malformed_report_descriptor_is_a_typed_error() {
    let (_sim, _h, _gadget, device) = plug(sim::Hid::new(vec![0xa1, 0x01, 0x81], 9));
    match HidDevice::open(&device, 0, HidConfig::default()) {
        Err(HidError::ReportDescriptor(e)) => {
            assert_eq!(e, ParseError::Truncated { offset: 2 })
        }
        other => panic!("{other:?}"),
    }
    // Nothing stays claimed.
    drop(device.claim_interface(0).unwrap());

    let iface = device.active_configuration().unwrap().interfaces[0]
        .first()
        .unwrap()
        .clone();
    let ctx = ProbeContext {
        device: &device,
        interface: &iface,
        matched: &ID_TABLE[0],
    };
    assert!(matches!(
        HidDriver::new().probe(&ctx),
        Err(usbdf::Error::InvalidArgument(_))
    ));
}

#[test]
fn driver_binds_starts_stops_and_is_removed() {
    let (_sim, handle, gadget, device) = plug(sim::Hid::default());
    let iface = device.active_configuration().unwrap().interfaces[0]
        .first()
        .unwrap()
        .clone();
    assert!(ID_TABLE[0].matches(device.device_descriptor(), &iface));
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let driver = HidDriver::new().on_bound(move |hid| {
        let _ = tx.lock().unwrap().send(hid.clone());
    });
    assert_eq!(driver.name(), "usbdf-hid");
    let ctx = ProbeContext {
        device: &device,
        interface: &iface,
        matched: &driver.id_table()[0],
    };
    let Probe::Bound(mut instance) = driver.probe(&ctx).unwrap() else {
        panic!("not bound")
    };
    let user = rx.try_recv().unwrap();
    driver.start(&mut instance).unwrap();
    gadget.send_input_report(&input_report(42));
    assert_eq!(user.read_input(T).unwrap().raw, input_report(42));
    driver.stop(&mut instance);
    assert_eq!(user.reader_state(), ReaderState::Stopped);
    assert!(matches!(
        user.read_input(Timeout::millis(10)),
        Err(HidError::NotRunning)
    ));
    driver.start(&mut instance).unwrap();

    // Surprise removal: the registry calls `removed`; a blocked reader wakes.
    let blocked = std::thread::spawn({
        let user = user.clone();
        move || user.read_input(Timeout::millis(10_000))
    });
    handle.unplug();
    driver.stop(&mut instance);
    driver.removed(instance);
    assert!(blocked.join().unwrap().unwrap_err().is_disconnected());
}
