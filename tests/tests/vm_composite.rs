//! The composite gadget ([`COMPOSITE`]: CDC-ACM on interfaces 0–1 and HID on interface 2,
//! one configuration, one dummy UDC): its endpoints do not collide, and a driver
//! [`Registry`] binds two different drivers to its two functions, moves data through
//! both, sees both removed on unbind and probes both afresh on rebind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use usbdf::descriptor::class;
use usbdf::driver::{
    Binder, DeviceId, DeviceMatch, Driver, Probe, ProbeContext, Registry, RegistryEvent,
};
use usbdf::{Error, Host, Timeout};
use usbdf_cdc_acm::{AcmReader, AcmWriter, CdcAcm, CdcAcmDriver};
use usbdf_hid::{HidDevice, HidDriver, Usage};
use usbdf_tests::gadget;
use usbdf_tests::vm::{self, COMPOSITE, COMPOSITE_INTERFACES as IFACES};

const T: Timeout = Timeout::millis(5000);
const TIMEOUT: Duration = Duration::from_secs(5);
/// Removal is seen within tens of ms and enumeration takes ~0.4 s under TCG: generous.
const HOTPLUG: Timeout = Timeout::millis(10_000);

/// The configfs directory of one of the composite's functions.
fn function_dir(instance: &str) -> std::path::PathBuf {
    Path::new(vm::CONFIGFS_GADGETS)
        .join(COMPOSITE.name)
        .join("functions")
        .join(instance)
}

#[test]
fn composite_functions_have_their_own_interfaces_endpoints_and_gadget_nodes() {
    vm::require_vm();
    let device = gadget::open(&COMPOSITE);
    let config = device.active_configuration().expect("configuration");
    let mut layout = Vec::new();
    let mut addresses = Vec::new();
    for setting in config.settings() {
        for ep in &setting.endpoints {
            layout.push(format!(
                "if{} ({:02x}/{:02x}) ep {:#04x} {:?} mps {}",
                setting.number,
                setting.class,
                setting.subclass,
                ep.address,
                ep.transfer_type(),
                ep.max_packet_size
            ));
            addresses.push(ep.address);
        }
    }
    println!("composite endpoint layout:\n  {}", layout.join("\n  "));
    let n = addresses.len();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), n, "endpoint addresses collide: {layout:?}");
    assert_eq!(
        n, 5,
        "ACM: interrupt IN + bulk pair; HID: interrupt IN + OUT"
    );

    let classes: Vec<(u8, u8, u8)> = config
        .settings()
        .map(|s| (s.number, s.class, s.subclass))
        .collect();
    assert_eq!(
        classes,
        [
            (IFACES.acm_comm, class::CDC, 2),
            (IFACES.acm_data, class::CDC_DATA, 0),
            (IFACES.hid, class::HID, 0)
        ]
    );
    let iad = config
        .association_of(IFACES.acm_comm)
        .expect("f_acm's interface association");
    assert_eq!((iad.first_interface, iad.interface_count), (0, 2));
    assert!(config.association_of(IFACES.hid).is_none());

    // The gadget-side nodes the layout names: u_serial's port and f_hid's minor.
    let port = fs::read_to_string(function_dir("acm.GS1").join("port_num")).expect("port_num");
    assert_eq!(format!("/dev/ttyGS{}", port.trim()), vm::COMPOSITE_ACM_TTY);
    let dev = fs::read_to_string(function_dir("hid.usb1").join("dev")).expect("hid dev");
    let meta = fs::metadata(vm::COMPOSITE_HID_DEVICE).expect("stat the hidg node");
    assert!(meta.file_type().is_char_device());
    let rdev = meta.rdev();
    let (major, minor) = (
        ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
        (rdev & 0xff) | ((rdev >> 12) & !0xff),
    );
    assert_eq!(dev.trim(), format!("{major}:{minor}"));
}

/// What a [`Tap`]ped driver did, as "<driver> <callback>" lines.
type Log = Arc<Mutex<Vec<String>>>;

/// A driver wrapped for the test: it only takes the composite gadget (the real drivers'
/// tables also match the single-function ACM and HID gadgets), logs every callback and
/// hands each bound instance's handles to the test. Everything else is the real driver.
struct Tap<D: Driver, H> {
    inner: D,
    log: Log,
    handles: Mutex<Sender<H>>,
    handle: fn(&D::Instance) -> H,
}

impl<D: Driver, H: Send + 'static> Tap<D, H> {
    fn new(inner: D, log: &Log, handle: fn(&D::Instance) -> H) -> (Tap<D, H>, Receiver<H>) {
        let (tx, rx) = mpsc::channel();
        let tap = Tap {
            inner,
            log: log.clone(),
            handles: Mutex::new(tx),
            handle,
        };
        (tap, rx)
    }

    fn note(&self, what: &str) {
        let line = format!("{} {what}", self.inner.name());
        self.log.lock().unwrap().push(line);
    }
}

impl<D: Driver, H: Send + 'static> Driver for Tap<D, H> {
    type Instance = D::Instance;
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        self.inner.id_table()
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<D::Instance>, Error> {
        let dd = ctx.device.device_descriptor();
        if (dd.vendor_id, dd.product_id) != (COMPOSITE.vendor_id, COMPOSITE.product_id) {
            return Ok(Probe::NotMine);
        }
        self.note(&format!("probe {}", ctx.interface.number));
        let probe = self.inner.probe(ctx)?;
        if let Probe::Bound(instance) = &probe {
            let _ = self.handles.lock().unwrap().send((self.handle)(instance));
        }
        Ok(probe)
    }
    fn start(&self, instance: &mut D::Instance) -> Result<(), Error> {
        self.note("start");
        self.inner.start(instance)
    }
    fn stop(&self, instance: &mut D::Instance) {
        self.note("stop");
        self.inner.stop(instance);
    }
    fn removed(&self, instance: D::Instance) {
        self.note("removed");
        self.inner.removed(instance);
    }
}

fn acm_handles(acm: &CdcAcm) -> (AcmWriter, AcmReader) {
    (acm.writer(), acm.reader())
}

fn hid_handle(hid: &HidDevice) -> HidDevice {
    hid.clone()
}

/// Wait for one `Bound` per driver; returns the device they share.
fn wait_both_bound(binder: &Binder) -> DeviceId {
    let mut bound: Vec<(&'static str, Vec<u8>, DeviceId)> = Vec::new();
    while bound.len() < 2 {
        match binder.next_event(HOTPLUG) {
            Some(RegistryEvent::Bound {
                device,
                driver,
                interfaces,
            }) => bound.push((driver, interfaces, device)),
            Some(other) => panic!("unexpected event while binding: {other:?}"),
            None => panic!("only {bound:?} bound within {HOTPLUG:?}"),
        }
    }
    bound.sort();
    let device = bound[0].2;
    assert_eq!(
        bound,
        [
            ("cdc-acm", vec![IFACES.acm_comm, IFACES.acm_data], device),
            ("usbdf-hid", vec![IFACES.hid], device),
        ],
        "two drivers on one device"
    );
    device
}

/// Bytes both ways through the registry's ACM instance and one input report through its
/// HID instance.
fn data_flows(acm: &(AcmWriter, AcmReader), hid: &HidDevice, round: u8) {
    // ACM host -> gadget: the tty must be open and raw first (else it echoes).
    let mut tty = vm::configure_tty_raw(vm::COMPOSITE_ACM_TTY).expect("open ttyGS1 raw");
    let message = [b'c', b'o', b'm', b'p', round, 0x00, 0xff, b'\n'];
    let (writer, reader) = acm;
    let mut written = 0;
    while written < message.len() {
        written += writer
            .write_timeout(&message[written..], T)
            .expect("write to the ACM port");
    }
    let mut got = [0u8; 8];
    vm::read_exact_timeout(&mut tty, &mut got, TIMEOUT).expect("read ttyGS1");
    assert_eq!(got, message, "host -> gadget");
    // Gadget -> host.
    let back = [round, 1, 2, 3];
    tty.write_all(&back).expect("write ttyGS1");
    let mut got = Vec::new();
    while got.len() < back.len() {
        let mut buf = [0u8; 64];
        let n = reader.read_timeout(&mut buf, T).expect("read the ACM port");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, back, "gadget -> host");
    drop(tty);

    // HID: one input report written to hidg1 arrives decoded.
    let mut hidg = fs::OpenOptions::new()
        .write(true)
        .open(vm::COMPOSITE_HID_DEVICE)
        .expect("open hidg1");
    let mut report = vec![vm::HID_INPUT_REPORT_ID];
    report.extend((0..vm::HID_IO_REPORT_LEN as u8).map(|i| round.wrapping_mul(16) + i));
    hidg.write_all(&report)
        .expect("write an input report to hidg1");
    let input = hid.read_input(T).expect("an input report");
    assert_eq!(input.error, None);
    assert_eq!((input.id, &input.raw), (vm::HID_INPUT_REPORT_ID, &report));
    let values: Vec<i64> = input.values(Usage::new(0xff00, 0x02)).collect();
    let expect: Vec<i64> = report[1..].iter().map(|&b| i64::from(b)).collect();
    assert_eq!(values, expect);
}

#[test]
fn registry_binds_acm_and_hid_drivers_to_the_composite_and_rebinds_after_unplug() {
    vm::require_vm();
    let log: Log = Arc::default();
    let (acm_driver, acm_rx) = Tap::new(CdcAcmDriver::new(), &log, acm_handles);
    let (hid_driver, hid_rx) = Tap::new(HidDriver::new(), &log, hid_handle);
    let mut registry = Registry::new();
    registry.register(acm_driver).register(hid_driver);
    let binder = registry.start(&Host::system()).expect("watch the bus");

    let first = wait_both_bound(&binder);
    let bindings = binder.bindings();
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    for b in &bindings {
        assert_eq!(b.device, first);
        assert_eq!(
            (b.vendor_id, b.product_id),
            (COMPOSITE.vendor_id, COMPOSITE.product_id)
        );
    }
    assert_eq!(
        *log.lock().unwrap(),
        [
            "cdc-acm probe 0",
            "cdc-acm start",
            "usbdf-hid probe 2",
            "usbdf-hid start"
        ],
        "the data interface was claimed by the ACM probe, never offered"
    );
    {
        let acm = acm_rx.recv_timeout(TIMEOUT).expect("the ACM instance");
        let hid = hid_rx.recv_timeout(TIMEOUT).expect("the HID instance");
        data_flows(&acm, &hid, 1);
    }

    // Unplug: one Removed per instance, both on the composite.
    let unbound = vm::Unbound::new(&COMPOSITE).expect("unbind the composite gadget");
    let mut removed = Vec::new();
    while removed.len() < 2 {
        match binder.next_event(HOTPLUG) {
            Some(RegistryEvent::Removed {
                device,
                driver,
                interfaces,
                drained,
            }) => {
                assert_eq!(device, first);
                assert!(drained, "{driver}: requests still in flight");
                removed.push((driver, interfaces));
            }
            other => panic!("expected Removed, got {other:?} after {removed:?}"),
        }
    }
    removed.sort();
    assert_eq!(
        removed,
        [
            ("cdc-acm", vec![IFACES.acm_comm, IFACES.acm_data]),
            ("usbdf-hid", vec![IFACES.hid])
        ]
    );
    assert!(binder.bindings().is_empty());
    {
        let log = log.lock().unwrap();
        for driver in ["cdc-acm", "usbdf-hid"] {
            let lines: Vec<&str> = log
                .iter()
                .filter_map(|l| l.strip_prefix(driver))
                .map(str::trim)
                .collect();
            assert_eq!(lines[2..], ["stop", "removed"], "{driver}: {log:?}");
        }
    }

    // Rebind: both probed afresh on the new connection, and both work.
    unbound.rebind().expect("rebind the composite gadget");
    let second = wait_both_bound(&binder);
    assert_ne!(first, second, "a new connection");
    let acm = acm_rx.recv_timeout(TIMEOUT).expect("a new ACM instance");
    let hid = hid_rx.recv_timeout(TIMEOUT).expect("a new HID instance");
    assert_eq!(
        log.lock().unwrap().len(),
        4 + 4 + 4,
        "probe+start each, stop+removed each, probe+start each: {:?}",
        log.lock().unwrap()
    );
    data_flows(&acm, &hid, 2);
    drop((acm, hid));

    binder.stop();
    let mut unbound_events = 0;
    while let Some(event) = binder.next_event(Timeout::millis(100)) {
        assert!(
            matches!(event, RegistryEvent::Unbound { device, .. } if device == second),
            "{event:?}"
        );
        unbound_events += 1;
    }
    assert_eq!(unbound_events, 2);
}
