//! CDC-ACM, HID and composite models through the public usbdf API.

use std::time::{Duration, Instant};

use usbdf::control::{ControlDirection, Recipient, RequestKind};
use usbdf::sim::{CdcAcm, Composite, Hid, HidLayout, LineCoding, SimHost};
use usbdf::{Bulk, DeviceSelector, In, Interrupt, Out, Request, SetupPacket, Status, Timeout};

const T: Timeout = Timeout::millis(2000);

fn class_out(request: u8, value: u16, index: u16) -> SetupPacket {
    SetupPacket::new(
        ControlDirection::Out,
        RequestKind::Class,
        Recipient::Interface,
        request,
        value,
        index,
        0,
    )
}

fn class_in(request: u8, value: u16, index: u16, length: u16) -> SetupPacket {
    SetupPacket::new(
        ControlDirection::In,
        RequestKind::Class,
        Recipient::Interface,
        request,
        value,
        index,
        length,
    )
}

#[test]
fn cdc_acm_line_coding_and_data_both_ways() {
    let acm = CdcAcm::new();
    let port = acm.port();
    let sim = SimHost::new();
    let _dev = sim.plug(acm);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a7))
        .unwrap();
    let config = device.active_configuration().unwrap();
    assert_eq!(config.interfaces.len(), 2);
    assert!(config.association_of(1).is_some());

    let comm = device.claim_interface(0).unwrap();
    let data = device.claim_interface(1).unwrap();
    let cp = device.control_pipe();
    let lc = LineCoding {
        rate: 115_200,
        stop_bits: 0,
        parity: 2,
        data_bits: 7,
    };
    cp.write(class_out(0x20, 0, 0), &lc.to_bytes(), T).unwrap();
    assert_eq!(port.line_coding(), lc);
    let back = cp.read(class_in(0x21, 0, 0, 7), T).unwrap();
    assert_eq!(LineCoding::from_bytes(&back), Some(lc));
    cp.write(class_out(0x22, 0x3, 0), &[], T).unwrap();
    assert_eq!(port.control_lines(), 3);
    cp.write(class_out(0x23, 250, 0), &[], T).unwrap();
    assert_eq!(port.breaks(), vec![250]);

    let out = data.open_pipe::<Bulk, Out>(0x02).unwrap();
    let inp = data.open_pipe::<Bulk, In>(0x82).unwrap();
    let mut req = Request::with_capacity(64);
    req.memory_mut().set(b"AT\r\n").unwrap();
    assert_eq!(out.write_sync(req, T).unwrap().status(), Status::Success);
    assert_eq!(port.read(), b"AT\r\n");

    port.write(b"OK\r\n");
    let c = inp.read_sync(Request::with_capacity(512), 512, T).unwrap();
    assert_eq!((c.status(), c.data()), (Status::Success, &b"OK\r\n"[..]));
    // A write of exactly one packet ends with a ZLP, so the read returns.
    port.write(&[0x55; 512]);
    let c = inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .unwrap();
    assert_eq!(c.bytes(), 512);

    let notify = comm.open_pipe::<Interrupt, In>(0x83).unwrap();
    port.notify_serial_state(0b11);
    let c = notify.read_sync(Request::with_capacity(16), 16, T).unwrap();
    assert_eq!(c.data(), &[0xA1, 0x20, 0, 0, 0, 0, 2, 0, 3, 0]);
}

#[test]
fn cdc_acm_read_waits_for_device_data() {
    let acm = CdcAcm::new();
    let port = acm.port();
    let sim = SimHost::new();
    let _dev = sim.plug(acm);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a7))
        .unwrap();
    let data = device.claim_interface(1).unwrap();
    let inp = data.open_pipe::<Bulk, In>(0x82).unwrap();
    let sent = inp
        .read(Request::with_capacity(512), 512, &usbdf::SendOptions::new())
        .unwrap();
    let writer = std::thread::spawn(move || port.write(b"late"));
    let c = sent.wait(T);
    writer.join().unwrap();
    assert_eq!((c.status(), c.data()), (Status::Success, &b"late"[..]));
}

#[test]
fn hid_report_descriptor_and_reports() {
    let hid = Hid::default();
    let keys = hid.device();
    let sim = SimHost::new();
    let _dev = sim.plug(hid);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4ac))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let setting = iface.descriptor().unwrap().clone();
    let hid_desc = setting
        .class_specific_of_type(usbdf::descriptor::HID)
        .next()
        .map(usbdf::descriptor::HidDescriptor::from_raw_owned)
        .unwrap()
        .unwrap();
    let len = hid_desc.report_descriptor_length().unwrap();
    let get_report_desc = SetupPacket::new(
        ControlDirection::In,
        RequestKind::Standard,
        Recipient::Interface,
        usbdf::control::standard::GET_DESCRIPTOR,
        u16::from(usbdf::descriptor::HID_REPORT) << 8,
        0,
        len,
    );
    let rd = device.control_pipe().read(get_report_desc, T).unwrap();
    assert_eq!(rd, usbdf::sim::DEFAULT_REPORT_DESCRIPTOR);

    // Input report on interrupt IN.
    let inp = iface.open_pipe::<Interrupt, In>(0x81).unwrap();
    let report = [1, 10, 20, 30, 40, 50, 60, 70, 80];
    keys.send_input_report(&report);
    let c = inp.read_sync(Request::with_capacity(9), 9, T).unwrap();
    assert_eq!((c.status(), c.data()), (Status::Success, &report[..]));
    let cp = device.control_pipe();
    assert_eq!(cp.read(class_in(0x01, 0x0101, 0, 9), T).unwrap(), report);

    // Output reports: interrupt OUT and SET_REPORT.
    let out = iface.open_pipe::<Interrupt, Out>(0x01).unwrap();
    let mut req = Request::with_capacity(9);
    req.memory_mut().set(&[2, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(out.write_sync(req, T).unwrap().status(), Status::Success);
    cp.write(class_out(0x09, 0x0202, 0), &[2, 9, 9, 9, 9, 9, 9, 9, 9], T)
        .unwrap();
    assert_eq!(
        keys.output_reports(),
        vec![
            vec![2, 1, 2, 3, 4, 5, 6, 7, 8],
            vec![2, 9, 9, 9, 9, 9, 9, 9, 9]
        ]
    );

    // Feature report both ways.
    keys.set_feature_report(3, &[3, 0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(
        cp.read(class_in(0x01, 0x0303, 0, 5), T).unwrap(),
        [3, 0xaa, 0xbb, 0xcc, 0xdd]
    );
    cp.write(class_out(0x09, 0x0303, 0), &[3, 1, 2, 3, 4], T)
        .unwrap();
    assert_eq!(keys.feature_reports_set(), vec![(3, vec![3, 1, 2, 3, 4])]);
    assert_eq!(
        cp.read(class_in(0x01, 0x0303, 0, 5), T).unwrap(),
        [3, 1, 2, 3, 4]
    );

    // Idle and protocol.
    cp.write(class_out(0x0A, 0x7d00, 0), &[], T).unwrap();
    assert_eq!(keys.idle(), 0x7d);
    assert_eq!(cp.read(class_in(0x02, 0, 0, 1), T).unwrap(), [0x7d]);
    cp.write(class_out(0x0B, 0, 0), &[], T).unwrap();
    assert_eq!(cp.read(class_in(0x03, 0, 0, 1), T).unwrap(), [0]);
}

#[test]
fn hid_interrupt_read_waits_for_a_report() {
    let hid = Hid::default();
    let keys = hid.device();
    let sim = SimHost::new();
    let _dev = sim.plug(hid);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4ac))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let inp = iface.open_pipe::<Interrupt, In>(0x81).unwrap();
    let c = inp
        .read_sync(Request::with_capacity(9), 9, Timeout::millis(30))
        .unwrap();
    assert_eq!(c.status(), Status::TimedOut);
    let start = Instant::now();
    let sent = inp
        .read(Request::with_capacity(9), 9, &usbdf::SendOptions::new())
        .unwrap();
    keys.send_input_report(&[1, 0, 0, 0, 0, 0, 0, 0, 1]);
    let c = sent.wait(T);
    assert_eq!(c.data(), &[1, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn composite_acm_and_hid_on_one_device() {
    let acm = CdcAcm::new();
    let hid = Hid::default().with_layout(HidLayout {
        interface: 2,
        report_in: 0x81,
        report_out: Some(0x01),
    });
    let (port, keys) = (acm.port(), hid.device());
    let sim = SimHost::new();
    let _dev = sim.plug(Composite::new(0x1209, 0x0001).function(acm).function(hid));
    let info = sim
        .host()
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.vendor_id() == 0x1209)
        .unwrap();
    assert_eq!(
        info.interfaces()
            .iter()
            .map(|i| (i.0, i.1))
            .collect::<Vec<_>>(),
        vec![(0, 2), (1, 0x0A), (2, 3)]
    );
    let device = info.open().unwrap();
    let data = device.claim_interface(1).unwrap();
    let hid_if = device.claim_interface(2).unwrap();
    let acm_in = data.open_pipe::<Bulk, In>(0x82).unwrap();
    let hid_in = hid_if.open_pipe::<Interrupt, In>(0x81).unwrap();
    port.write(b"serial");
    keys.send_input_report(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        acm_in
            .read_sync(Request::with_capacity(512), 512, T)
            .unwrap()
            .data(),
        b"serial"
    );
    assert_eq!(
        hid_in
            .read_sync(Request::with_capacity(9), 9, T)
            .unwrap()
            .data(),
        [1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
    let lc = LineCoding {
        rate: 57_600,
        ..LineCoding::default()
    };
    device
        .control_pipe()
        .write(class_out(0x20, 0, 0), &lc.to_bytes(), T)
        .unwrap();
    assert_eq!(port.line_coding(), lc);
    let rd = device
        .control_pipe()
        .read(
            SetupPacket::new(
                ControlDirection::In,
                RequestKind::Standard,
                Recipient::Interface,
                usbdf::control::standard::GET_DESCRIPTOR,
                0x2200,
                2,
                37,
            ),
            T,
        )
        .unwrap();
    assert_eq!(rd, usbdf::sim::DEFAULT_REPORT_DESCRIPTOR);
}
