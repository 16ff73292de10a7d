//! Interfaces held by a kernel driver: `cdc-acm.ko` is loaded for each test (and unloaded
//! when it ends, by a guard, also on failure), so the kernel's `cdc_acm` binds the ACM
//! gadget's interfaces before usbdf tries to claim them.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use usbdf::driver::{
    Binder, DeviceMatch, Driver, KernelDriverPolicy, Probe, ProbeContext, Registry, RegistryEvent,
};
use usbdf::{Bulk, Error, Host, Interface, InterfaceClaim, Out, Pipe, Request, Timeout};
use usbdf_cdc_acm::{AcmConfig, AcmReader, AcmWriter, CdcAcm, CdcAcmDriver};
use usbdf_tests::gadget;
use usbdf_tests::vm::{self, ACM, CDC_ACM_MODULE};

const T: Timeout = Timeout::millis(5000);
const TIMEOUT: Duration = Duration::from_secs(5);
const KERNEL: &str = "cdc_acm";

/// Load cdc-acm.ko and wait until it holds both ACM interfaces.
fn kernel_cdc_acm() -> vm::LoadedModule {
    assert!(
        !vm::is_module_loaded(&CDC_ACM_MODULE),
        "cdc_acm is already loaded: an earlier test leaked it"
    );
    let module = vm::LoadedModule::load(&CDC_ACM_MODULE).expect("load cdc-acm.ko");
    for n in [0, 1] {
        vm::wait_interface_driver(&ACM, n, Some(KERNEL), TIMEOUT)
            .expect("the kernel's cdc_acm binds the ACM gadget");
    }
    module
}

fn drivers() -> [Option<String>; 2] {
    [0, 1].map(|n| vm::interface_driver(&ACM, n).expect("sysfs"))
}

/// Write `message` through a bulk OUT pipe and read it from the gadget's tty.
fn bytes_reach_the_tty(out: &Pipe<Bulk, Out>, message: &[u8]) {
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open ttyGS0 raw");
    let mut request = Request::with_capacity(message.len());
    request.memory_mut().set(message).expect("fits");
    let sent = out.write_sync(request, T).expect("send");
    assert_eq!(sent.result(), Ok(message.len()));
    let mut got = vec![0; message.len()];
    vm::read_exact_timeout(&mut tty, &mut got, TIMEOUT).expect("read ttyGS0");
    assert_eq!(got, message);
}

#[test]
fn claim_is_busy_while_the_kernel_driver_holds_it_and_detach_takes_it() {
    vm::require_vm();
    let module = kernel_cdc_acm();
    let device = gadget::open(&ACM);
    for n in [0u8, 1] {
        match device.claim_interface(n) {
            Err(Error::Busy { interface, .. }) => assert_eq!(interface, n),
            other => panic!("interface {n}: expected Busy, got {other:?}"),
        }
    }
    assert_eq!(drivers(), [Some(KERNEL.into()), Some(KERNEL.into())]);

    let comm = device
        .claim_interface_with(0, InterfaceClaim::DetachKernelDriver)
        .expect("detach cdc_acm and claim interface 0");
    // Detaching cdc_acm from the communication interface unbinds the whole function: its
    // disconnect releases the data interface too.
    assert_eq!(drivers(), [Some("usbfs".into()), None]);
    let data = device
        .claim_interface_with(1, InterfaceClaim::DetachKernelDriver)
        .expect("claim interface 1");
    assert_eq!(drivers(), [Some("usbfs".into()), Some("usbfs".into())]);

    let (out_addr, _) = gadget::bulk_addresses(&data);
    let out = data.open_pipe::<Bulk, Out>(out_addr).expect("bulk OUT");
    bytes_reach_the_tty(&out, b"past the kernel driver\r\n\x00\xff");

    // nusb re-attaches the kernel driver to each interface it detached, as it releases
    // it. Data interface first: cdc_acm's probe of the communication interface claims
    // the data interface too, so it must be free by then.
    // (Released the other way round, cdc_acm's probe finds the data interface still
    // claimed and fails: neither interface has a driver afterwards.)
    drop(out);
    drop(data);
    assert_eq!(drivers(), [Some("usbfs".into()), None]);
    drop(comm);
    for n in [0, 1] {
        vm::wait_interface_driver(&ACM, n, Some(KERNEL), TIMEOUT)
            .expect("cdc_acm is back once both interfaces are released");
    }
    drop(device);
    module.unload().expect("unload cdc_acm");
    assert!(!vm::is_module_loaded(&CDC_ACM_MODULE));
    assert_eq!(drivers(), [None, None]);
}

/// The ACM gadget only: the drivers' tables also match the composite gadget's ACM
/// function, which the kernel's cdc_acm holds as well.
static ACM_GADGET: [DeviceMatch; 1] = [DeviceMatch::id(0x0525, 0xa4a7)];

/// A minimal driver that claims the ACM gadget's two interfaces through
/// [`ProbeContext::claim_interface`], i.e. under the registry's [`KernelDriverPolicy`].
struct ClaimBoth;

impl Driver for ClaimBoth {
    type Instance = (Interface, Interface);
    fn name(&self) -> &'static str {
        "claim-both"
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        &ACM_GADGET
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<Self::Instance>, Error> {
        if ctx.interface.number != 0 {
            return Ok(Probe::NotMine);
        }
        let comm = ctx.claim()?;
        let data = ctx.claim_interface(1)?;
        Ok(Probe::Bound((comm, data)))
    }
}

/// [`CdcAcmDriver`] restricted to the ACM gadget, handing each bound port's pipes to the
/// test.
struct AcmOnly {
    inner: CdcAcmDriver,
    ports: Mutex<Sender<(AcmWriter, AcmReader)>>,
}

impl AcmOnly {
    fn new(inner: CdcAcmDriver) -> (AcmOnly, Receiver<(AcmWriter, AcmReader)>) {
        let (tx, rx) = mpsc::channel();
        (
            AcmOnly {
                inner,
                ports: Mutex::new(tx),
            },
            rx,
        )
    }
}

impl Driver for AcmOnly {
    type Instance = CdcAcm;
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        self.inner.id_table()
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<CdcAcm>, Error> {
        let dd = ctx.device.device_descriptor();
        if (dd.vendor_id, dd.product_id) != (ACM.vendor_id, ACM.product_id) {
            return Ok(Probe::NotMine);
        }
        let probe = self.inner.probe(ctx)?;
        if let Probe::Bound(acm) = &probe {
            let _ = self
                .ports
                .lock()
                .unwrap()
                .send((acm.writer(), acm.reader()));
        }
        Ok(probe)
    }
    fn start(&self, acm: &mut CdcAcm) -> Result<(), Error> {
        self.inner.start(acm)
    }
    fn stop(&self, acm: &mut CdcAcm) {
        self.inner.stop(acm);
    }
    fn removed(&self, acm: CdcAcm) {
        self.inner.removed(acm);
    }
}

fn start(registry: Registry) -> Binder {
    registry.start(&Host::system()).expect("watch the bus")
}

/// The next event, which must come within `T`.
fn next(binder: &Binder) -> RegistryEvent {
    binder
        .next_event(T)
        .unwrap_or_else(|| panic!("no registry event within {T:?}"))
}

fn assert_busy_probe(event: RegistryEvent, want_driver: &str) {
    match event {
        RegistryEvent::ProbeFailed {
            driver,
            interface,
            error,
            ..
        } => {
            assert_eq!((driver, interface), (want_driver, 0));
            assert!(
                matches!(*error, Error::Busy { interface: 0, .. }),
                "{error:?}"
            );
        }
        other => panic!("expected ProbeFailed(Busy), got {other:?}"),
    }
}

/// Stop the registry; every event left must be an `Unbound` of `driver`, `count` of them.
fn stop_expecting_unbound(binder: Binder, driver: &str, count: usize) {
    binder.stop();
    let mut unbound = 0;
    while let Some(event) = binder.next_event(Timeout::millis(100)) {
        match event {
            RegistryEvent::Unbound { driver: d, .. } if d == driver => unbound += 1,
            other => panic!("unexpected event at stop: {other:?}"),
        }
    }
    assert_eq!(unbound, count);
}

#[test]
fn registry_fail_policy_reports_busy_and_leaves_the_kernel_driver() {
    vm::require_vm();
    let module = kernel_cdc_acm();
    for driver in ["claim-both", "cdc-acm"] {
        let mut registry = Registry::new();
        registry.kernel_driver_policy(KernelDriverPolicy::Fail);
        let _ports = if driver == "cdc-acm" {
            let (acm, ports) = AcmOnly::new(CdcAcmDriver::new());
            registry.register(acm);
            Some(ports)
        } else {
            registry.register(ClaimBoth);
            None
        };
        let binder = start(registry);
        // One ProbeFailed(Busy) for interface 0, no second try; the data interface is
        // not offered (no row matches it).
        assert_busy_probe(next(&binder), driver);
        assert!(binder.bindings().is_empty());
        assert_eq!(drivers(), [Some(KERNEL.into()), Some(KERNEL.into())]);
        stop_expecting_unbound(binder, driver, 0);
    }
    module.unload().expect("unload cdc_acm");
}

#[test]
fn registry_detach_policy_binds_after_busy() {
    vm::require_vm();
    let module = kernel_cdc_acm();
    let mut registry = Registry::new();
    registry
        .kernel_driver_policy(KernelDriverPolicy::Detach)
        .register(ClaimBoth);
    let binder = start(registry);
    assert_busy_probe(next(&binder), "claim-both");
    match next(&binder) {
        RegistryEvent::Bound {
            driver, interfaces, ..
        } => assert_eq!(
            (driver, interfaces.as_slice()),
            ("claim-both", &[0u8, 1][..])
        ),
        other => panic!("expected Bound after the detach, got {other:?}"),
    }
    assert_eq!(drivers(), [Some("usbfs".into()), Some("usbfs".into())]);
    stop_expecting_unbound(binder, "claim-both", 1);
    // The instance released interface 0 first: cdc_acm could not re-take the function.
    println!("after the registry stopped: {:?}", drivers());
    module.unload().expect("unload cdc_acm");
}

#[test]
fn cdc_acm_driver_with_detach_config_binds_past_the_kernel_and_data_flows() {
    vm::require_vm();
    let module = kernel_cdc_acm();
    let config = AcmConfig {
        claim: InterfaceClaim::DetachKernelDriver,
        ..AcmConfig::default()
    };
    let mut registry = Registry::new();
    registry.kernel_driver_policy(KernelDriverPolicy::Detach);
    let (acm, ports) = AcmOnly::new(CdcAcmDriver::with_config(config));
    registry.register(acm);
    let binder = start(registry);
    match next(&binder) {
        RegistryEvent::Bound {
            driver, interfaces, ..
        } => assert_eq!((driver, interfaces.as_slice()), ("cdc-acm", &[0u8, 1][..])),
        other => panic!("expected Bound, got {other:?}"),
    }
    let (writer, reader) = ports.recv_timeout(TIMEOUT).expect("the bound port");
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open ttyGS0 raw");
    let message = b"usbdf, not the kernel\r\n";
    let mut written = 0;
    while written < message.len() {
        written += writer.write_timeout(&message[written..], T).expect("write");
    }
    let mut got = vec![0; message.len()];
    vm::read_exact_timeout(&mut tty, &mut got, TIMEOUT).expect("read ttyGS0");
    assert_eq!(got, message);
    std::io::Write::write_all(&mut tty, b"back").expect("write ttyGS0");
    let mut back = Vec::new();
    while back.len() < 4 {
        let mut buf = [0; 64];
        let n = reader.read_timeout(&mut buf, T).expect("read the port");
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, b"back");
    drop((writer, reader));
    stop_expecting_unbound(binder, "cdc-acm", 1);
    println!("after the registry stopped: {:?}", drivers());
    module.unload().expect("unload cdc_acm");
}
