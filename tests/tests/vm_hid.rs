//! usbdf-hid on the real HID gadget (`f_hid`, `hid.usb0`) through nusb: no `usbhid.ko`
//! is loaded, so nothing else holds the interface.
//!
//! What `f_hid` of this kernel (Debian 6.1) does with class requests, as these tests
//! assert it: GET_REPORT (input or feature) is answered with zeros (no report ID, the
//! length asked for, capped at `report_length`); SET_REPORT stalls because the function
//! has an interrupt OUT endpoint; SET_IDLE is accepted and GET_IDLE returns it;
//! GET_PROTOCOL answers report protocol; SET_PROTOCOL stalls (subclass 0, no boot
//! interface). And it ends every report that fills the max packet size (9 bytes here)
//! with a zero-length packet, which the driver must skip as Linux's usbhid does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use usbdf::{DeviceSelector, Host, ReaderState, Status, Timeout};
use usbdf_hid::{HidConfig, HidDevice, HidError, Protocol, ReportKind, Usage, UsageRange};
use usbdf_tests::vm::{self, HID};

const T: Timeout = Timeout::millis(5000);
const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(10);

fn open_hid(config: HidConfig) -> HidDevice {
    let device = Host::system()
        .open(&DeviceSelector::id(HID.vendor_id, HID.product_id))
        .expect("open the HID gadget");
    HidDevice::open(&device, 0, config).expect("open the HID interface")
}

/// `/dev/hidg0`, non-blocking, with anything an earlier test left unread drained.
fn gadget_side() -> File {
    let mut hidg = vm::open_gadget_device(vm::HID_DEVICE).expect("open /dev/hidg0");
    let mut buf = [0u8; 64];
    loop {
        match hidg.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("draining /dev/hidg0: {e}"),
        }
    }
    hidg
}

/// `/dev/hidg0` for blocking writes: `f_hid` takes one report per write and blocks
/// while the previous one is still queued for the host.
fn gadget_writer() -> File {
    OpenOptions::new()
        .write(true)
        .open(vm::HID_DEVICE)
        .expect("open /dev/hidg0 for writing")
}

fn vendor(id: u16) -> Vec<UsageRange> {
    let u = Usage::new(0xff00, id);
    vec![UsageRange { first: u, last: u }]
}

#[test]
fn hid_report_descriptor_parses_to_the_gadget_fields() {
    vm::require_vm();
    let hid = open_hid(HidConfig::default());
    assert_eq!(hid.raw_report_descriptor(), vm::HID_REPORT_DESCRIPTOR);
    let rd = hid.descriptor();
    assert!(rd.uses_report_ids());
    let io_bits = vm::HID_IO_REPORT_LEN as u32;
    let feature_bits = vm::HID_FEATURE_REPORT_LEN as u32;
    let got: Vec<_> = rd
        .reports()
        .iter()
        .map(|r| {
            let f = &r.fields[..];
            assert_eq!(f.len(), 1, "{:?} {}", r.kind, r.id);
            let f = &f[0];
            (
                r.kind,
                r.id,
                r.wire_len(),
                (f.bit_offset, f.bit_size, f.count, f.flags.0),
                f.usages.clone(),
                (f.logical_min, f.logical_max),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ReportKind::Input,
                vm::HID_INPUT_REPORT_ID,
                usize::from(vm::HID_REPORT_LENGTH),
                (0, 8, io_bits, 0x02),
                vendor(2),
                (0, 255)
            ),
            (
                ReportKind::Output,
                vm::HID_OUTPUT_REPORT_ID,
                usize::from(vm::HID_REPORT_LENGTH),
                (0, 8, io_bits, 0x02),
                vendor(3),
                (0, 255)
            ),
            (
                ReportKind::Feature,
                vm::HID_FEATURE_REPORT_ID,
                1 + vm::HID_FEATURE_REPORT_LEN,
                (0, 8, feature_bits, 0x02),
                vendor(4),
                (0, 255)
            ),
        ]
    );
    assert_eq!(
        rd.collections()[0].usage,
        Some(Usage::new(0xff00, 0x01)),
        "one vendor application collection"
    );
    assert!(hid.has_output_endpoint());
}

#[test]
fn hid_input_reports_from_hidg_arrive_decoded_in_order() {
    vm::require_vm();
    let hid = open_hid(HidConfig::default());
    hid.start().expect("start the input reader");
    let mut writer = gadget_writer();
    let reports: Vec<Vec<u8>> = (0..32u8)
        .map(|n| {
            let mut r = vec![vm::HID_INPUT_REPORT_ID];
            r.extend((0..vm::HID_IO_REPORT_LEN as u8).map(|i| n.wrapping_mul(8).wrapping_add(i)));
            r
        })
        .collect();
    for r in &reports {
        writer.write_all(r).expect("write an input report to hidg0");
    }
    let usage = Usage::new(0xff00, 0x02);
    for (n, sent) in reports.iter().enumerate() {
        let got = hid.read_input(T).expect("an input report");
        assert_eq!(got.error, None);
        assert_eq!(
            (got.id, &got.raw),
            (vm::HID_INPUT_REPORT_ID, sent),
            "report {n}"
        );
        let values: Vec<i64> = got.values(usage).collect();
        let expect: Vec<i64> = sent[1..].iter().map(|&b| i64::from(b)).collect();
        assert_eq!(values, expect, "report {n}");
    }
    assert_eq!(hid.inputs_dropped(), 0);
    // f_hid follows each 9-byte (one full packet) report with a ZLP: skipped, not queued.
    assert_eq!(hid.inputs_received(), reports.len() as u64);
    assert!(hid.try_read_input().is_none());
    hid.stop(T).expect("stop the reader");
}

#[test]
fn hid_output_reports_arrive_at_hidg() {
    vm::require_vm();
    let mut hidg = gadget_side();
    let hid = open_hid(HidConfig::default());
    for n in 0..4u8 {
        let data: Vec<u8> = (0..vm::HID_IO_REPORT_LEN as u8)
            .map(|i| 0x40 + n * 16 + i)
            .collect();
        hid.write_output(vm::HID_OUTPUT_REPORT_ID, &data)
            .expect("write an output report");
        let mut got = vec![0; 1 + vm::HID_IO_REPORT_LEN];
        vm::read_exact_timeout(&mut hidg, &mut got, Duration::from_secs(5))
            .expect("read the output report from hidg0");
        assert_eq!(got[0], vm::HID_OUTPUT_REPORT_ID);
        assert_eq!(got[1..], data[..], "report {n}");
    }
    // A short report is zero-padded to the declared length.
    hid.write_output(vm::HID_OUTPUT_REPORT_ID, &[0xee]).unwrap();
    let mut got = vec![0; 1 + vm::HID_IO_REPORT_LEN];
    vm::read_exact_timeout(&mut hidg, &mut got, Duration::from_secs(5)).unwrap();
    assert_eq!(got, [2, 0xee, 0, 0, 0, 0, 0, 0, 0]);
}

fn is_stall(e: &HidError) -> bool {
    matches!(e, HidError::Usb(usbdf::Error::Transfer(Status::Stall)))
}

#[test]
fn hid_class_requests_as_f_hid_answers_them() {
    vm::require_vm();
    let hid = open_hid(HidConfig::default());
    let feature = vm::HID_FEATURE_REPORT_ID;

    let got = hid.get_report(ReportKind::Feature, feature);
    println!("GET_REPORT(feature 3): {got:?}");
    let got_feature = hid.get_feature(feature);
    println!("get_feature(3): {got_feature:?}");
    let set = hid.set_feature(feature, &[1, 2, 3, 4]);
    println!("SET_REPORT(feature 3): {set:?}");
    let input = hid.get_report(ReportKind::Input, vm::HID_INPUT_REPORT_ID);
    println!("GET_REPORT(input 1): {input:?}");
    let set_out = hid.set_report(ReportKind::Output, vm::HID_OUTPUT_REPORT_ID, &[1]);
    println!("SET_REPORT(output 2): {set_out:?}");
    let idle = hid.set_idle(0, Some(Duration::from_millis(500)));
    println!("SET_IDLE(500 ms): {idle:?}");
    let get_idle = hid.get_idle(0);
    println!("GET_IDLE: {get_idle:?}");
    let protocol = hid.get_protocol();
    println!("GET_PROTOCOL: {protocol:?}");
    let set_protocol = hid.set_protocol(Protocol::Boot);
    println!("SET_PROTOCOL(boot): {set_protocol:?}");
    let _ = hid.set_idle(0, None);

    // GET_REPORT: zeros, the length asked for (ID byte + 4), no report ID.
    assert_eq!(got.unwrap(), vec![0; 1 + vm::HID_FEATURE_REPORT_LEN]);
    assert!(matches!(
        got_feature,
        Err(HidError::ReportIdMismatch {
            expected: 3,
            got: Some(0)
        })
    ));
    assert_eq!(input.unwrap(), vec![0; usize::from(vm::HID_REPORT_LENGTH)]);
    // SET_REPORT stalls: the function has an interrupt OUT endpoint.
    assert!(is_stall(&set.unwrap_err()));
    assert!(is_stall(&set_out.unwrap_err()));
    // Idle: stored and returned.
    idle.unwrap();
    assert_eq!(get_idle.unwrap(), Some(Duration::from_millis(500)));
    // Protocol: report protocol; no boot interface, so SET_PROTOCOL stalls.
    assert_eq!(protocol.unwrap(), Protocol::Report);
    assert!(is_stall(&set_protocol.unwrap_err()));
    // The control pipe is fine after the stalls.
    assert_eq!(hid.get_idle(0).unwrap(), None);
}

#[test]
fn hid_unbind_mid_read_is_disconnected() {
    vm::require_vm();
    let hid = open_hid(HidConfig::default());
    hid.start().expect("start the input reader");
    let reader = hid.clone();
    let blocked = std::thread::spawn(move || reader.read_input(Timeout::millis(10_000)));
    let unbound = vm::Unbound::new(&HID).expect("unbind the HID gadget");
    let start = Instant::now();
    let got = blocked.join().unwrap();
    assert!(matches!(got, Err(HidError::Disconnected)), "{got:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(hid.reader_state(), ReaderState::Gone);
    let t = Instant::now();
    assert!(hid.write_output(2, &[1]).unwrap_err().is_disconnected());
    assert!(hid.get_feature(3).unwrap_err().is_disconnected());
    assert!(hid.read_input(T).unwrap_err().is_disconnected());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    drop(hid);

    unbound.rebind().expect("rebind the HID gadget");
    vm::wait_for_device(HID.vendor_id, HID.product_id, HOTPLUG_TIMEOUT)
        .expect("the HID gadget comes back");
    // Usable again for the next test.
    let hid = open_hid(HidConfig::default());
    assert_eq!(hid.raw_report_descriptor(), vm::HID_REPORT_DESCRIPTOR);
}
