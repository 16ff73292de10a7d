//! The driver registry on real hotplug: the Loopback gadget's UDC is unbound (a surprise
//! removal seen through nusb's udev watch) and bound again (an arrival).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use usbdf::driver::{DeviceId, DeviceMatch, Driver, Probe, ProbeContext, Registry, RegistryEvent};
use usbdf::{
    Bulk, CompletionRoutine, Error, Host, In, Interface, Pipe, Request, SendOptions, Status,
    Timeout,
};
use usbdf_tests::vm::{self, LOOPBACK};

/// Removal is seen within tens of ms, enumeration takes ~0.4 s under TCG: generous.
const HOTPLUG: Timeout = Timeout::After(Duration::from_secs(10));
const READS: usize = 4;

static IDS: [DeviceMatch; 1] = [DeviceMatch::id(0x0525, 0xa4a9)];

/// Binds the Loopback gadget and keeps `READS` reads pending on its bulk IN pipe (nothing is
/// written, so the gadget never answers them).
struct Pending {
    log: Arc<Mutex<Vec<String>>>,
}

struct PendingInstance {
    _iface: Interface,
    inp: Pipe<Bulk, In>,
    statuses: Arc<Mutex<Vec<Status>>>,
}

impl Driver for Pending {
    type Instance = PendingInstance;
    fn name(&self) -> &'static str {
        "vm-pending-reads"
    }
    fn id_table(&self) -> &'static [DeviceMatch] {
        &IDS
    }
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<PendingInstance>, Error> {
        self.log.lock().unwrap().push("probe".into());
        let iface = ctx.claim()?;
        Ok(Probe::Bound(PendingInstance {
            inp: iface.open_pipe(0x81)?,
            _iface: iface,
            statuses: Arc::default(),
        }))
    }
    fn start(&self, i: &mut PendingInstance) -> Result<(), Error> {
        let statuses = i.statuses.clone();
        let routine: CompletionRoutine =
            Arc::new(move |c| statuses.lock().unwrap().push(c.status()));
        let len = i.inp.info().max_packet_size * 8;
        for _ in 0..READS {
            i.inp
                .read_with(
                    Request::with_capacity(len),
                    len,
                    &SendOptions::new(),
                    &routine,
                )
                .map_err(|_| Error::InvalidArgument("read refused"))?;
        }
        self.log.lock().unwrap().push("start".into());
        Ok(())
    }
    fn stop(&self, i: &mut PendingInstance) {
        let n = i.statuses.lock().unwrap().len();
        self.log.lock().unwrap().push(format!("stop {n} completed"));
    }
    fn removed(&self, i: PendingInstance) {
        let s = i.statuses.lock().unwrap().clone();
        self.log
            .lock()
            .unwrap()
            .push(format!("removed {s:?} in flight {}", i.inp.in_flight()));
    }
}

fn wait_bound(binder: &usbdf::driver::Binder) -> DeviceId {
    match binder.wait_for(HOTPLUG, |e| matches!(e, RegistryEvent::Bound { .. })) {
        Some(RegistryEvent::Bound {
            device,
            driver,
            interfaces,
        }) => {
            assert_eq!(
                (driver, interfaces.as_slice()),
                ("vm-pending-reads", &[0u8][..])
            );
            device
        }
        other => panic!("no Bound event: {other:?}"),
    }
}

#[test]
fn unbind_removes_once_after_every_read_completed_disconnected_and_rebind_probes_afresh() {
    vm::require_vm();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    registry.register(Pending { log: log.clone() });
    let binder = registry
        .start(&Host::system())
        .expect("watch the system bus");
    let first = wait_bound(&binder);
    assert_eq!(binder.bindings().len(), 1);
    assert_eq!(*log.lock().unwrap(), ["probe", "start"]);

    let t0 = Instant::now();
    let unbound = vm::Unbound::new(&LOOPBACK).expect("unbind the loopback gadget");
    match binder.next_event(HOTPLUG) {
        Some(RegistryEvent::Removed {
            device,
            drained,
            interfaces,
            ..
        }) => {
            assert_eq!(device, first);
            assert!(drained, "requests still in flight at the removal timeout");
            assert_eq!(interfaces, [0]);
        }
        other => panic!("expected Removed, got {other:?}"),
    }
    let removed_after = t0.elapsed();
    let all_gone = format!("removed {:?} in flight 0", [Status::Disconnected; READS]);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "probe",
            "start",
            &format!("stop {READS} completed"),
            &all_gone
        ]
    );
    assert!(binder.bindings().is_empty());

    let t1 = Instant::now();
    unbound.rebind().expect("rebind the loopback gadget");
    let second = wait_bound(&binder);
    let bound_after = t1.elapsed();
    assert_ne!(
        first, second,
        "the re-enumerated device is a new connection"
    );
    assert_eq!(
        log.lock().unwrap().iter().filter(|e| *e == "probe").count(),
        2
    );
    println!("unbind -> Removed {removed_after:?}; rebind -> Bound {bound_after:?}");

    binder.stop();
    assert!(matches!(
        binder.next_event(Timeout::millis(100)),
        Some(RegistryEvent::Unbound { .. })
    ));
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("removed"))
            .count(),
        1
    );
}
