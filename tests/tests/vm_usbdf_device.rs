//! usbdf's device target on real gadgets (`Host::system()`): enumeration, descriptors,
//! strings, configuration and alternate-setting selection, and the checks made when a typed
//! pipe is opened.

use usbdf::descriptor::{self, Direction, TransferType, LANGID_EN_US};
use usbdf::{Bulk, Error, Host, In, Interrupt, Out, Speed};

use usbdf_tests::gadget::{self, T};
use usbdf_tests::vm::{self, Function, GADGETS, HID, LOOPBACK, SOURCE_SINK};

#[test]
fn host_system_lists_every_gadget_with_its_ids_and_strings() {
    vm::require_vm();
    let devices = Host::system().devices().expect("list devices");
    assert_eq!(Host::system().name(), "system");
    for g in &GADGETS {
        let found: Vec<_> = devices
            .iter()
            .filter(|d| d.vendor_id() == g.vendor_id && d.product_id() == g.product_id)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: exactly one {:04x}:{:04x} in {devices:?}",
            g.name,
            g.vendor_id,
            g.product_id
        );
        let d = found[0];
        assert_eq!(d.serial(), Some(g.serial), "{}", g.name);
        assert_eq!(d.manufacturer(), Some(g.manufacturer), "{}", g.name);
        assert_eq!(d.product(), Some(g.product), "{}", g.name);
        assert_eq!(
            d.class(),
            (g.device_class[0], g.device_class[1], g.device_class[2]),
            "{}",
            g.name
        );
        assert!(
            !d.interfaces().is_empty(),
            "{}: configured, so its interfaces are listed",
            g.name
        );
        assert!(gadget::selector(g).matches(d));
    }
}

#[test]
fn opening_by_selector_finds_the_right_gadget() {
    vm::require_vm();
    for g in &GADGETS {
        let device = gadget::open(g);
        let dd = device.device_descriptor();
        assert_eq!((dd.vendor_id, dd.product_id), (g.vendor_id, g.product_id));
    }
    // A serial nobody has matches nothing.
    let none = Host::system().open(
        &usbdf::DeviceSelector::id(SOURCE_SINK.vendor_id, SOURCE_SINK.product_id)
            .serial("no-such-serial"),
    );
    assert!(matches!(none, Err(Error::DeviceNotFound)), "{none:?}");
}

#[test]
fn sourcesink_device_and_configuration_descriptors_are_parsed() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let dd = device.device_descriptor();
    assert_eq!(dd.vendor_id, SOURCE_SINK.vendor_id);
    assert_eq!(dd.product_id, SOURCE_SINK.product_id);
    assert_eq!(
        [dd.class, dd.subclass, dd.protocol],
        SOURCE_SINK.device_class
    );
    assert_eq!(
        dd.usb_version, 0x0200,
        "a high-speed gadget reports USB 2.0"
    );
    assert_eq!(dd.max_packet_size_0, 64);
    assert_eq!(dd.num_configurations, 1);
    assert_eq!(device.speed(), Some(Speed::High));

    assert_eq!(device.configurations().len(), 1);
    let config = device.active_configuration().expect("active configuration");
    assert_eq!(config.value, 1);
    assert!(config.anomalies.is_empty(), "{:?}", config.anomalies);
    assert_eq!(config.interfaces.len(), 1);
    let settings = config.interface(0).expect("interface 0");
    // This dummy_hcd has no isochronous endpoints, so SourceSink has only alt setting 0.
    assert_eq!(settings.alt_settings.len(), 1);
    let alt0 = settings.alt(0).expect("alt setting 0");
    assert_eq!(alt0.class, descriptor::class::VENDOR_SPECIFIC);
    let mut endpoints: Vec<_> = alt0
        .endpoints
        .iter()
        .map(|e| {
            (
                e.address,
                e.transfer_type(),
                e.direction(),
                e.max_packet_size,
            )
        })
        .collect();
    endpoints.sort_by_key(|e| e.0);
    eprintln!("SourceSink endpoints: {endpoints:x?}");
    // The IN endpoint is 0x81. The OUT endpoint's number is whatever the UDC's endpoint
    // autoconfiguration picked (dummy_hcd gives ep2out-bulk: 0x02), so only its kind is fixed.
    assert_eq!(endpoints.len(), 2, "{endpoints:x?}");
    let (out_addr, out_type, out_dir, out_mps) = endpoints[0];
    assert_eq!(
        (out_type, out_dir, out_mps),
        (TransferType::Bulk, Direction::Out, 512)
    );
    assert_eq!(out_addr & 0x80, 0);
    assert_eq!(endpoints[1], (0x81, TransferType::Bulk, Direction::In, 512));
    assert_eq!(
        config
            .find_endpoint(0x81)
            .map(|(s, e)| (s.number, e.max_packet_size)),
        Some((0, 512))
    );
    assert_eq!(device.configuration(1), Some(config));
    assert_eq!(device.configuration(2), None);

    // The pipe reports what the descriptor says.
    let pair = gadget::bulk_pair_of(device);
    let info = pair.inp.info();
    assert_eq!(
        (info.address, info.max_packet_size, info.transfer_type),
        (0x81, 512, TransferType::Bulk)
    );
    assert_eq!(pair.out.info().address, out_addr);
}

#[test]
fn loopback_and_hid_descriptors_are_parsed() {
    vm::require_vm();
    let lb = gadget::open(&LOOPBACK);
    let config = lb.active_configuration().expect("active configuration");
    let alt0 = config.setting(0, 0).expect("interface 0 alt 0");
    assert_eq!(alt0.endpoints.len(), 2);
    assert!(alt0
        .endpoints
        .iter()
        .all(|e| e.transfer_type() == TransferType::Bulk && e.max_packet_size == 512));

    let hid = gadget::open(&HID);
    let config = hid.active_configuration().expect("active configuration");
    let alt0 = config.setting(0, 0).expect("interface 0 alt 0");
    assert_eq!(alt0.class, descriptor::class::HID);
    let Function::Hid { report_length, .. } = HID.function else {
        unreachable!()
    };
    for dir in [Direction::In, Direction::Out] {
        let ep = alt0
            .endpoints
            .iter()
            .find(|e| e.direction() == dir)
            .unwrap_or_else(|| panic!("HID has an interrupt {dir:?} endpoint"));
        assert_eq!(ep.transfer_type(), TransferType::Interrupt);
        assert_eq!(ep.max_packet_size, report_length);
        assert!(ep.interval > 0);
    }
    // The HID class descriptor travels with the interface.
    assert_eq!(
        alt0.class_specific_of_type(descriptor::HID).count(),
        1,
        "{:?}",
        alt0.class_specific
    );
}

#[test]
fn string_descriptors_are_read_and_decoded() {
    vm::require_vm();
    for g in &GADGETS {
        let device = gadget::open(g);
        assert_eq!(
            device.languages(T).expect("language table"),
            vec![LANGID_EN_US]
        );
        let dd = device.device_descriptor().clone();
        let string = |index: Option<std::num::NonZeroU8>, what: &str| {
            let index = index.unwrap_or_else(|| panic!("{}: no {what} string", g.name));
            device
                .string(index.get(), LANGID_EN_US, T)
                .unwrap_or_else(|e| panic!("{}: {what} string: {e}", g.name))
        };
        assert_eq!(
            string(dd.manufacturer_string_index, "manufacturer"),
            g.manufacturer
        );
        assert_eq!(string(dd.product_string_index, "product"), g.product);
        assert_eq!(string(dd.serial_number_string_index, "serial"), g.serial);
    }
    let device = gadget::open(&SOURCE_SINK);
    // Index 0 is the language table, not a string.
    assert!(matches!(
        device.string(0, LANGID_EN_US, T),
        Err(Error::InvalidArgument(_))
    ));
    // A string the device does not have: the gadget stalls the request.
    let missing = device.string(200, LANGID_EN_US, T);
    assert!(
        matches!(missing, Err(Error::Transfer(usbdf::Status::Stall))),
        "{missing:?}"
    );
}

#[test]
fn select_configuration_checks_claims_and_values() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let active = device.active_configuration().expect("active").value;
    // Nothing claimed: selecting the active configuration again works.
    device
        .select_configuration(active)
        .expect("re-select the active configuration");
    assert_eq!(device.active_configuration().expect("active").value, active);

    // A value the device does not describe.
    assert!(matches!(
        device.select_configuration(7),
        Err(Error::NoSuchConfiguration(7))
    ));

    // While an interface is claimed, the configuration cannot change under it.
    let interface = device.claim_interface(0).expect("claim interface 0");
    assert!(matches!(
        device.select_configuration(active),
        Err(Error::InterfacesClaimed)
    ));
    // Claiming it twice through the same device is refused too.
    assert!(matches!(
        device.claim_interface(0),
        Err(Error::Busy { interface: 0, .. })
    ));
    assert!(matches!(
        device.claim_interface(5),
        Err(Error::NoSuchInterface(5))
    ));
    drop(interface);
    device
        .select_configuration(active)
        .expect("select again once the interface is released");

    // The device still moves data after the re-selection.
    let pair = gadget::bulk_pair_of(device);
    let c = pair
        .inp
        .read_sync(usbdf::Request::with_capacity(512), 512, T)
        .expect("send a read");
    assert_eq!(c.status(), usbdf::Status::Success);
    assert_eq!(c.bytes(), 512);
}

#[test]
fn alternate_settings_are_checked() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let interface = device.claim_interface(0).expect("claim interface 0");
    assert_eq!(interface.number(), 0);
    assert_eq!(interface.current_setting(), 0);
    assert_eq!(interface.settings().len(), 1);
    interface.select_setting(0).expect("select alt setting 0");
    assert_eq!(interface.current_setting(), 0);

    let missing = interface.select_setting(3);
    assert!(
        matches!(
            missing,
            Err(Error::NoSuchAltSetting {
                interface: 0,
                alt: 3
            })
        ),
        "{missing:?}"
    );

    let (_, in_addr) = gadget::bulk_addresses(&interface);
    let pipe = interface
        .open_pipe::<Bulk, In>(in_addr)
        .expect("open bulk IN");
    assert!(matches!(
        interface.select_setting(0),
        Err(Error::PipesOpen(0))
    ));
    // A clone keeps the pipe open; the last one closes it.
    let clone = pipe.clone();
    drop(pipe);
    assert!(matches!(
        interface.select_setting(0),
        Err(Error::PipesOpen(0))
    ));
    drop(clone);
    interface
        .select_setting(0)
        .expect("select once every pipe is closed");
    // And the pipe opens again afterwards.
    let pipe = interface
        .open_pipe::<Bulk, In>(in_addr)
        .expect("reopen bulk IN");
    let c = pipe
        .read_sync(usbdf::Request::with_capacity(512), 512, T)
        .expect("send a read");
    assert_eq!(c.status(), usbdf::Status::Success);
}

#[test]
fn typed_pipes_are_checked_against_the_descriptor_when_opened() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let interface = device.claim_interface(0).expect("claim interface 0");
    let (out_addr, in_addr) = gadget::bulk_addresses(&interface);

    let e = interface.open_pipe::<Bulk, Out>(in_addr).unwrap_err();
    assert!(
        matches!(e, Error::WrongDirection { address, expected: Direction::Out, found: Direction::In } if address == in_addr),
        "{e:?}"
    );
    let e = interface.open_pipe::<Bulk, In>(out_addr).unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongDirection {
                expected: Direction::In,
                found: Direction::Out,
                ..
            }
        ),
        "{e:?}"
    );
    let e = interface.open_pipe::<Interrupt, In>(in_addr).unwrap_err();
    assert!(
        matches!(e, Error::WrongPipeType { address, expected: TransferType::Interrupt, found: TransferType::Bulk } if address == in_addr),
        "{e:?}"
    );
    let e = interface.open_pipe::<Bulk, In>(0x85).unwrap_err();
    assert!(matches!(e, Error::NoSuchEndpoint(0x85)), "{e:?}");
    let e = interface.open_pipe::<Bulk, Out>(0x07).unwrap_err();
    assert!(matches!(e, Error::NoSuchEndpoint(0x07)), "{e:?}");

    let pipe = interface
        .open_pipe::<Bulk, In>(in_addr)
        .expect("open bulk IN");
    let e = interface.open_pipe::<Bulk, In>(in_addr).unwrap_err();
    assert!(
        matches!(e, Error::PipeAlreadyOpen(a) if a == in_addr),
        "{e:?}"
    );
    // A failed open leaves nothing behind: the OUT pipe still opens.
    let out = interface
        .open_pipe::<Bulk, Out>(out_addr)
        .expect("open bulk OUT");
    drop((pipe, out));
    let _again = interface
        .open_pipe::<Bulk, In>(in_addr)
        .expect("reopen once closed");

    // The HID gadget's interrupt endpoint is not a bulk pipe.
    let hid = gadget::open(&HID);
    let hid_interface = hid.claim_interface(0).expect("claim the HID interface");
    let int_in = hid_interface
        .descriptor()
        .expect("current setting")
        .endpoints
        .iter()
        .find(|e| e.direction() == Direction::In)
        .expect("interrupt IN")
        .address;
    let e = hid_interface.open_pipe::<Bulk, In>(int_in).unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongPipeType {
                expected: TransferType::Bulk,
                found: TransferType::Interrupt,
                ..
            }
        ),
        "{e:?}"
    );
    let pipe = hid_interface
        .open_pipe::<Interrupt, In>(int_in)
        .expect("open interrupt IN");
    assert_eq!(pipe.info().transfer_type, TransferType::Interrupt);
}

#[test]
fn device_answers_is_connected() {
    vm::require_vm();
    let device = gadget::open(&LOOPBACK);
    assert!(device.is_connected());
}
