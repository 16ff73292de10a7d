//! The driver registry on the simulator: binding on arrival, fall-through,
//! composite devices, surprise removal with requests in flight, replug,
//! probe errors and kernel-held interfaces.

use std::sync::{Arc, Mutex};

use usbdf::driver::{
    DeviceId, DeviceMatch, Driver, KernelDriverPolicy, Probe, ProbeContext, Registry, RegistryEvent,
};
use usbdf::sim::{CdcAcm, Composite, Hid, HidLayout, Loopback, SimHost, SimOptions, SourceSink};
use usbdf::{
    Bulk, CompletionRoutine, Error, In, Interface, Interrupt, Out, Pipe, Request, SendOptions,
    Status, Timeout,
};

const WAIT: Timeout = Timeout::After(std::time::Duration::from_secs(5));

/// What the drivers did, in order: `"probe loop 0"`, `"start loop"`, ….
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self, prefix: &str) -> usize {
        self.entries()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

/// Claims the offered interface; nothing else. `verdict` decides probes.
struct Simple {
    name: &'static str,
    ids: &'static [DeviceMatch],
    log: Log,
    verdict: Verdict,
}

#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Bind,
    NotMine,
    Fail,
    FailStart,
}

struct SimpleInstance {
    name: &'static str,
    log: Log,
    _iface: Interface,
}

impl Drop for SimpleInstance {
    fn drop(&mut self) {
        self.log.push(format!("drop {}", self.name));
    }
}

impl Driver for Simple {
    type Instance = SimpleInstance;
    fn name(&self) -> &'static str {
        self.name
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        self.ids
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<SimpleInstance>, Error> {
        self.log
            .push(format!("probe {} {}", self.name, ctx.interface.number));
        match self.verdict {
            Verdict::NotMine => {
                // Claim and let go again: nothing may stay claimed.
                drop(ctx.claim()?);
                Ok(Probe::NotMine)
            }
            Verdict::Fail => Err(Error::InvalidArgument("test driver refuses")),
            Verdict::Bind | Verdict::FailStart => Ok(Probe::Bound(SimpleInstance {
                name: self.name,
                log: self.log.clone(),
                _iface: ctx.claim()?,
            })),
        }
    }
    fn start(&self, _: &mut SimpleInstance) -> Result<(), Error> {
        self.log.push(format!("start {}", self.name));
        if self.verdict == Verdict::FailStart {
            return Err(Error::InvalidArgument("test driver cannot start"));
        }
        Ok(())
    }
    fn stop(&self, _: &mut SimpleInstance) {
        self.log.push(format!("stop {}", self.name));
    }
    fn removed(&self, instance: SimpleInstance) {
        self.log.push(format!("removed {}", self.name));
        drop(instance);
    }
}

static LOOPBACK_IDS: [DeviceMatch; 1] = [DeviceMatch::id(0x0525, 0xa4a9)];
static ANY: [DeviceMatch; 1] = [DeviceMatch::ANY];
static ACM_IDS: [DeviceMatch; 1] = [DeviceMatch::interface_class(0x02, 0x02, 0x01)];
static HID_IDS: [DeviceMatch; 1] = [DeviceMatch::interface_class(0x03, 0, 0).any_subclass()];

fn simple(name: &'static str, ids: &'static [DeviceMatch], log: &Log, v: Verdict) -> Simple {
    Simple {
        name,
        ids,
        log: log.clone(),
        verdict: v,
    }
}

/// A CDC-ACM-shaped driver that keeps a request in flight on every pipe:
/// two bulk reads and an interrupt read the device never answers, and a
/// 128 KiB write of which the device takes 64 KiB before it NAKs.
struct Acm {
    log: Log,
}

struct AcmInstance {
    _comm: Interface,
    _data: Interface,
    notify: Pipe<Interrupt, In>,
    rx: Pipe<Bulk, In>,
    tx: Pipe<Bulk, Out>,
    statuses: Arc<Mutex<Vec<Status>>>,
    sent: usize,
}

impl Driver for Acm {
    type Instance = AcmInstance;
    fn name(&self) -> &'static str {
        "acm"
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        &ACM_IDS
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<AcmInstance>, Error> {
        self.log.push(format!("probe acm {}", ctx.interface.number));
        let comm = ctx.claim()?;
        let data = ctx.claim_interface(ctx.interface.number + 1)?;
        Ok(Probe::Bound(AcmInstance {
            notify: comm.open_pipe(0x83)?,
            rx: data.open_pipe(0x82)?,
            tx: data.open_pipe(0x02)?,
            _comm: comm,
            _data: data,
            statuses: Arc::default(),
            sent: 0,
        }))
    }
    fn start(&self, i: &mut AcmInstance) -> Result<(), Error> {
        self.log.push("start acm");
        let statuses = i.statuses.clone();
        let routine: CompletionRoutine =
            Arc::new(move |c| statuses.lock().unwrap().push(c.status()));
        let opts = SendOptions::new();
        let e = |e: usbdf::SendError| {
            Error::InvalidArgument(if e.kind() == usbdf::SendErrorKind::Disconnected {
                "gone"
            } else {
                "send refused"
            })
        };
        for _ in 0..2 {
            i.rx.read_with(Request::with_capacity(512), 512, &opts, &routine)
                .map_err(e)?;
        }
        i.notify
            .read_with(Request::with_capacity(16), 16, &opts, &routine)
            .map_err(e)?;
        let mut w = Request::with_capacity(128 * 1024);
        w.memory_mut().set(&vec![0x5a; 128 * 1024]).unwrap();
        i.tx.write_with(w, &opts, &routine).map_err(e)?;
        i.sent = 4;
        Ok(())
    }
    fn stop(&self, _: &mut AcmInstance) {
        self.log.push("stop acm");
    }
    fn removed(&self, i: AcmInstance) {
        let s = i.statuses.lock().unwrap().clone();
        let all_gone = s.iter().all(|s| *s == Status::Disconnected);
        self.log.push(format!(
            "removed acm {}/{} {}",
            s.len(),
            i.sent,
            if all_gone {
                "all Disconnected"
            } else {
                "NOT all Disconnected"
            }
        ));
    }
}

fn bound(e: Option<RegistryEvent>) -> (DeviceId, &'static str, Vec<u8>) {
    match e {
        Some(RegistryEvent::Bound {
            device,
            driver,
            interfaces,
        }) => (device, driver, interfaces),
        other => panic!("expected Bound, got {other:?}"),
    }
}

#[test]
fn binds_on_arrival_and_lists_the_binding() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry.register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    assert!(binder.bindings().is_empty());
    let gadget = sim.plug(Loopback::default());
    let (_, driver, interfaces) = bound(binder.next_event(WAIT));
    assert_eq!((driver, interfaces.as_slice()), ("loop", &[0][..]));
    let list = binder.bindings();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].vendor_id, list[0].product_id), (0x0525, 0xa4a9));
    assert_eq!(list[0].bus_id, sim.bus_id());
    assert_eq!(Some(list[0].address), gadget.address());
    assert_eq!(log.entries(), ["probe loop 0", "start loop"]);
}

#[test]
fn binds_devices_present_before_start_and_ignores_unmatched_ones() {
    let log = Log::default();
    let sim = SimHost::new();
    let _ss = sim.plug(SourceSink::default());
    let _lb = sim.plug(Loopback::default());
    let mut registry = Registry::new();
    registry.register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    let (_, driver, _) = bound(binder.next_event(WAIT));
    assert_eq!(driver, "loop");
    assert_eq!(binder.bindings().len(), 1);
    assert_eq!(log.entries(), ["probe loop 0", "start loop"]);
}

#[test]
fn not_mine_falls_through_to_the_next_driver() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry
        .register(simple("picky", &LOOPBACK_IDS, &log, Verdict::NotMine))
        .register(simple("any", &ANY, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    let _lb = sim.plug(Loopback::default());
    let (_, driver, interfaces) = bound(binder.next_event(WAIT));
    assert_eq!((driver, interfaces), ("any", vec![0]));
    assert_eq!(log.entries(), ["probe picky 0", "probe any 0", "start any"]);
}

#[test]
fn composite_device_binds_one_driver_per_function() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry
        .register(Acm { log: log.clone() })
        .register(simple("hid", &HID_IDS, &log, Verdict::Bind))
        .register(simple("catch-all", &ANY, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    let hid = Hid::default().with_layout(HidLayout {
        interface: 2,
        report_in: 0x81,
        report_out: Some(0x01),
    });
    let _dev = sim.plug(
        Composite::new(0x1209, 0x0001)
            .function(CdcAcm::new())
            .function(hid),
    );
    let (dev_a, a, ia) = bound(binder.next_event(WAIT));
    let (dev_b, b, ib) = bound(binder.next_event(WAIT));
    assert_eq!(dev_a, dev_b);
    assert_eq!((a, ia), ("acm", vec![0, 1]));
    assert_eq!((b, ib), ("hid", vec![2]));
    // The data interface the ACM driver claimed was offered to no one.
    assert_eq!(log.count("probe catch-all"), 0, "{:?}", log.entries());
    assert_eq!(
        log.entries(),
        ["probe acm 0", "start acm", "probe hid 2", "start hid"]
    );
    let list = binder.bindings();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].interfaces, [0, 1]);
}

#[test]
fn unplug_calls_removed_once_after_every_request_completed_disconnected() {
    unplug_with_requests_in_flight(SimOptions::new());
}

/// Linux sometimes fails pending transfers with `Fault` (EPROTO) on unplug:
/// the engine then asks the device from another thread before it delivers,
/// so completions arrive after the departure event. `removed` must still
/// see all of them, `Disconnected`.
#[test]
fn unplug_reported_as_fault_still_completes_everything_disconnected_before_removed() {
    unplug_with_requests_in_flight(SimOptions::new().fault_on_unplug(1.0));
}

fn unplug_with_requests_in_flight(options: SimOptions) {
    let log = Log::default();
    let sim = SimHost::with_options(options);
    let mut registry = Registry::new();
    registry.register(Acm { log: log.clone() });
    let binder = registry.start(&sim.host()).unwrap();
    let dev = sim.plug(CdcAcm::new());
    let (id, _, _) = bound(binder.next_event(WAIT));
    assert!(dev.unplug());
    match binder.next_event(WAIT) {
        Some(RegistryEvent::Removed {
            device,
            driver: "acm",
            interfaces,
            drained: true,
        }) => {
            assert_eq!(device, id);
            assert_eq!(interfaces, [0, 1]);
        }
        other => panic!("expected Removed, got {other:?}"),
    }
    assert_eq!(
        log.entries(),
        [
            "probe acm 0",
            "start acm",
            "stop acm",
            "removed acm 4/4 all Disconnected"
        ]
    );
    assert!(binder.bindings().is_empty());
    // Nothing more happens: removed ran exactly once.
    binder.stop();
    assert!(binder.next_event(Timeout::millis(50)).is_none());
    assert_eq!(log.count("removed"), 1);
}

#[test]
fn replug_probes_a_fresh_instance() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry.register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    let gadget = sim.plug(Loopback::default());
    let (first, _, _) = bound(binder.next_event(WAIT));
    gadget.unplug();
    assert!(matches!(
        binder.next_event(WAIT),
        Some(RegistryEvent::Removed { drained: true, .. })
    ));
    assert!(gadget.replug());
    let (second, driver, _) = bound(binder.next_event(WAIT));
    assert_ne!(first, second);
    assert_eq!(driver, "loop");
    assert_eq!(
        log.entries(),
        [
            "probe loop 0",
            "start loop",
            "stop loop",
            "removed loop",
            "drop loop",
            "probe loop 0",
            "start loop"
        ]
    );
    assert_eq!(binder.bindings()[0].device, second);
}

#[test]
fn probe_error_is_reported_and_the_interface_offered_to_no_one_else() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry
        .register(simple("broken", &LOOPBACK_IDS, &log, Verdict::Fail))
        .register(simple("any", &ANY, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    let _lb = sim.plug(Loopback::default());
    match binder.next_event(WAIT) {
        Some(RegistryEvent::ProbeFailed {
            driver: "broken",
            interface: 0,
            error,
            ..
        }) => assert!(matches!(*error, Error::InvalidArgument(_))),
        other => panic!("expected ProbeFailed, got {other:?}"),
    }
    // Stopping drains the binder: had "any" been offered the interface,
    // its Bound would be queued before the stop returns.
    binder.stop();
    assert!(binder.next_event(Timeout::millis(50)).is_none());
    assert_eq!(log.entries(), ["probe broken 0"]);
}

#[test]
fn start_failure_drops_the_instance() {
    let log = Log::default();
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry.register(simple("loop", &LOOPBACK_IDS, &log, Verdict::FailStart));
    let binder = registry.start(&sim.host()).unwrap();
    let _lb = sim.plug(Loopback::default());
    assert!(matches!(
        binder.next_event(WAIT),
        Some(RegistryEvent::StartFailed { driver: "loop", .. })
    ));
    assert!(binder.bindings().is_empty());
    assert_eq!(
        log.entries(),
        ["probe loop 0", "start loop", "stop loop", "drop loop"]
    );
}

#[test]
fn kernel_held_interface_is_busy_by_default() {
    let log = Log::default();
    let sim = SimHost::new();
    let lb = sim.plug(Loopback::default());
    lb.set_kernel_driver(0, true);
    let mut registry = Registry::new();
    registry
        .register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind))
        .register(simple("any", &ANY, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    match binder.next_event(WAIT) {
        Some(RegistryEvent::ProbeFailed {
            driver: "loop",
            interface: 0,
            error,
            ..
        }) => assert!(
            matches!(*error, Error::Busy { interface: 0, .. }),
            "{error:?}"
        ),
        other => panic!("expected ProbeFailed(Busy), got {other:?}"),
    }
    binder.stop();
    assert!(binder.next_event(Timeout::millis(50)).is_none());
    assert!(lb.kernel_driver_attached(0));
    assert_eq!(log.entries(), ["probe loop 0"]);
}

#[test]
fn detach_policy_reports_busy_then_probes_again_detaching() {
    let log = Log::default();
    let sim = SimHost::new();
    let lb = sim.plug(Loopback::default());
    lb.set_kernel_driver(0, true);
    let mut registry = Registry::new();
    registry
        .register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind))
        .kernel_driver_policy(KernelDriverPolicy::Detach);
    let binder = registry.start(&sim.host()).unwrap();
    assert!(matches!(
        binder.next_event(WAIT),
        Some(RegistryEvent::ProbeFailed { ref error, .. }) if matches!(**error, Error::Busy { .. })
    ));
    let (_, driver, _) = bound(binder.next_event(WAIT));
    assert_eq!(driver, "loop");
    assert!(!lb.kernel_driver_attached(0));
    assert_eq!(
        log.entries(),
        ["probe loop 0", "probe loop 0", "start loop"]
    );
}

#[test]
fn stopping_the_registry_stops_then_drops_newest_first() {
    let log = Log::default();
    let sim = SimHost::new();
    let _a = sim.plug(Loopback::default());
    let _b = sim.plug(SourceSink::default());
    let mut registry = Registry::new();
    registry
        .register(simple("loop", &LOOPBACK_IDS, &log, Verdict::Bind))
        .register(simple("any", &ANY, &log, Verdict::Bind));
    let binder = registry.start(&sim.host()).unwrap();
    bound(binder.next_event(WAIT));
    bound(binder.next_event(WAIT));
    binder.stop();
    let mut unbound = Vec::new();
    while let Some(e) = binder.next_event(Timeout::millis(50)) {
        match e {
            RegistryEvent::Unbound { driver, .. } => unbound.push(driver),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(unbound, ["any", "loop"]);
    assert!(binder.bindings().is_empty());
    let tail: Vec<String> = log.entries().split_off(4);
    assert_eq!(tail, ["stop any", "drop any", "stop loop", "drop loop"]);
}
