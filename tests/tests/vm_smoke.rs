//! Proves the VM machinery: every gadget of the layout is enumerated by the guest's host stack,
//! data moves on Loopback and CDC-ACM, and unbind/rebind is seen by nusb.
//!
//! Raw nusb on purpose: these tests check the environment, not usbdf.

use std::time::Duration;

use nusb::descriptors::TransferType;
use nusb::transfer::{
    Buffer, Bulk, ControlIn, ControlType, Direction, In, Interrupt, Out, Recipient,
};
use nusb::{Interface, MaybeFuture};
use std::io::Write;

use usbdf_tests::vm::{self, Gadget, ACM, GADGETS, HID, LOOPBACK};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Removal is seen within tens of ms and enumeration takes ~0.4 s under TCG: generous.
const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(10);

fn open(gadget: &Gadget) -> nusb::Device {
    let info = vm::find_gadget(gadget)
        .expect("list devices")
        .unwrap_or_else(|| {
            panic!(
                "{} ({:04x}:{:04x}) is not enumerated",
                gadget.name, gadget.vendor_id, gadget.product_id
            )
        });
    info.open().wait().expect("open the gadget")
}

/// The first bulk endpoint of `interface` in `direction`: (address, max packet size).
fn bulk_endpoint(interface: &Interface, direction: Direction) -> (u8, usize) {
    endpoint(interface, TransferType::Bulk, direction)
}

/// The first `kind` endpoint of `interface` in `direction`: (address, max packet size).
fn endpoint(interface: &Interface, kind: TransferType, direction: Direction) -> (u8, usize) {
    let descriptor = interface.descriptor().expect("interface descriptor");
    let endpoint = descriptor
        .endpoints()
        .find(|ep| ep.transfer_type() == kind && ep.direction() == direction)
        .unwrap_or_else(|| {
            panic!(
                "interface {} has no bulk {kind:?} {direction:?} endpoint",
                interface.interface_number()
            )
        });
    (endpoint.address(), endpoint.max_packet_size())
}

#[test]
fn all_gadgets_are_enumerated() {
    vm::require_vm();
    for gadget in &GADGETS {
        let info = vm::find_gadget(gadget)
            .expect("list devices")
            .unwrap_or_else(|| panic!("{} is not enumerated", gadget.name));
        assert_eq!(
            (info.vendor_id(), info.product_id()),
            (gadget.vendor_id, gadget.product_id)
        );
        assert_eq!(info.manufacturer_string(), Some(gadget.manufacturer));
        assert_eq!(info.product_string(), Some(gadget.product));
        assert_eq!(info.class(), gadget.device_class[0], "{}", gadget.name);
    }
}

#[test]
fn loopback_echoes_a_full_buffer() {
    vm::require_vm();
    let vm::Function::Loopback { bulk_buflen, .. } = LOOPBACK.function else {
        unreachable!()
    };
    let len = bulk_buflen as usize;
    let device = open(&LOOPBACK);
    let interface = device.claim_interface(0).wait().expect("claim interface 0");
    let (out_addr, _) = bulk_endpoint(&interface, Direction::Out);
    let (in_addr, max_packet) = bulk_endpoint(&interface, Direction::In);
    let mut out = interface.endpoint::<Bulk, Out>(out_addr).expect("bulk OUT");
    let mut inp = interface.endpoint::<Bulk, In>(in_addr).expect("bulk IN");
    assert_eq!(
        len % max_packet,
        0,
        "the test assumes bulk_buflen is whole packets"
    );

    // Exactly one gadget buffer: the gadget's OUT request completes full and is echoed.
    let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let mut buffer = Buffer::new(len);
    buffer.extend_from_slice(&pattern);
    let sent = out.transfer_blocking(buffer, TIMEOUT);
    sent.status.expect("bulk OUT");
    assert_eq!(sent.actual_len, len);

    let received = inp.transfer_blocking(Buffer::new(len), TIMEOUT);
    received.status.expect("bulk IN");
    assert_eq!(received.actual_len, len);
    assert!(
        received.buffer[..] == pattern[..],
        "the echo differs from what was sent"
    );
}

#[test]
fn acm_bulk_out_arrives_on_the_gadget_tty() {
    vm::require_vm();
    // The tty must be open (and raw: no echo back to the host) before data can flow.
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open the gadget tty raw");
    let device = open(&ACM);
    let data_interface = device
        .active_configuration()
        .expect("active configuration")
        .interface_alt_settings()
        .find(|alt| alt.class() == 0x0a)
        .expect("a CDC data interface")
        .interface_number();
    let interface = device
        .claim_interface(data_interface)
        .wait()
        .expect("claim the data interface");
    let (out_addr, _) = bulk_endpoint(&interface, Direction::Out);
    let mut out = interface.endpoint::<Bulk, Out>(out_addr).expect("bulk OUT");

    let message: Vec<u8> = b"usbdf over CDC-ACM: \x00\x01\x7f\xfe\xff\r\n".to_vec();
    let mut buffer = Buffer::new(message.len());
    buffer.extend_from_slice(&message);
    out.transfer_blocking(buffer, TIMEOUT)
        .status
        .expect("bulk OUT");

    let mut received = vec![0; message.len()];
    vm::read_exact_timeout(&mut tty, &mut received, TIMEOUT).expect("read the gadget tty");
    assert_eq!(received, message);
}

#[test]
fn loopback_unbind_and_rebind_is_seen_by_nusb() {
    vm::require_vm();
    let (vid, pid) = (LOOPBACK.vendor_id, LOOPBACK.product_id);
    assert!(
        vm::find_gadget(&LOOPBACK).expect("list").is_some(),
        "loopback present before the test"
    );

    let unbound = vm::Unbound::new(&LOOPBACK).expect("unbind loopback");
    vm::wait_for_removal(vid, pid, HOTPLUG_TIMEOUT).expect("loopback disappears after unbind");
    assert!(!vm::is_bound(&LOOPBACK).expect("read UDC"));

    unbound.rebind().expect("rebind loopback");
    let info =
        vm::wait_for_device(vid, pid, HOTPLUG_TIMEOUT).expect("loopback reappears after rebind");
    assert_eq!(info.serial_number(), Some(LOOPBACK.serial));
    // The new device works: it can be opened and claimed.
    let device = info.open().wait().expect("open the re-enumerated loopback");
    device
        .claim_interface(0)
        .wait()
        .expect("claim interface 0 after rebind");
}

#[test]
fn hid_reports_flow_both_ways_and_the_descriptor_is_ours() {
    vm::require_vm();
    let mut hidg = vm::open_gadget_device(vm::HID_DEVICE).expect("open the gadget's hidg");
    let device = open(&HID);
    let interface = device
        .claim_interface(0)
        .wait()
        .expect("claim the HID interface");

    // GET_DESCRIPTOR(Report) on the interface returns the declared descriptor.
    let request = ControlIn {
        control_type: ControlType::Standard,
        recipient: Recipient::Interface,
        request: 0x06,
        value: 0x2200,
        index: 0,
        length: 256,
    };
    let descriptor = interface
        .control_in(request, TIMEOUT)
        .wait()
        .expect("GET_DESCRIPTOR(Report)");
    assert_eq!(descriptor, vm::HID_REPORT_DESCRIPTOR);

    // Input report: written on the gadget side, read on the host's interrupt IN.
    let (in_addr, in_max_packet) = endpoint(&interface, TransferType::Interrupt, Direction::In);
    assert_eq!(in_max_packet, usize::from(vm::HID_REPORT_LENGTH));
    let mut input = vec![vm::HID_INPUT_REPORT_ID];
    input.extend((0..vm::HID_IO_REPORT_LEN).map(|i| 0xa0 + i as u8));
    hidg.write_all(&input)
        .expect("write an input report to hidg");
    let mut interrupt_in = interface
        .endpoint::<Interrupt, In>(in_addr)
        .expect("interrupt IN");
    let got = interrupt_in.transfer_blocking(Buffer::new(in_max_packet), TIMEOUT);
    got.status.expect("interrupt IN");
    assert_eq!(got.buffer[..got.actual_len], input[..]);

    // Output report: sent on the host's interrupt OUT, read on the gadget side.
    let (out_addr, _) = endpoint(&interface, TransferType::Interrupt, Direction::Out);
    let mut output = vec![vm::HID_OUTPUT_REPORT_ID];
    output.extend((0..vm::HID_IO_REPORT_LEN).map(|i| 0x50 + i as u8));
    let mut interrupt_out = interface
        .endpoint::<Interrupt, Out>(out_addr)
        .expect("interrupt OUT");
    let mut buffer = Buffer::new(output.len());
    buffer.extend_from_slice(&output);
    interrupt_out
        .transfer_blocking(buffer, TIMEOUT)
        .status
        .expect("interrupt OUT");
    let mut received = vec![0; output.len()];
    vm::read_exact_timeout(&mut hidg, &mut received, TIMEOUT)
        .expect("read the output report from hidg");
    assert_eq!(received, output);
}
