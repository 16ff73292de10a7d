//! The loopback crate on the simulator's gadget-zero models.

use usbdf::driver::{Registry, RegistryEvent};
use usbdf::sim::{self, SimHost};
use usbdf::{Status, Timeout};
use usbdf_loopback::{
    Loopback, LoopbackDriver, LoopbackError, Pattern, SourceSink, SourceSinkDriver, StreamConfig,
};

const T: Timeout = Timeout::After(std::time::Duration::from_secs(5));

#[test]
fn echo_round_trips_every_size_class() {
    let sim = SimHost::new();
    let _g = sim.plug(sim::Loopback::default());
    let lb = Loopback::open(&sim.host()).unwrap();
    // Short, one packet, whole packets below bulk_buflen (needs the ZLP),
    // exactly bulk_buflen, several buffers, more than qlen buffers.
    for len in [1, 511, 512, 4096, 10_000, 200_000, 1024] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(lb.echo(&data, T).unwrap(), data, "len {len}");
    }
    // Nothing is left behind in the gadget (no stale ZLP for the next reader).
    let c = lb
        .in_pipe()
        .read_sync(
            usbdf::Request::with_capacity(512),
            512,
            Timeout::millis(100),
        )
        .unwrap();
    assert_eq!(
        c.status(),
        usbdf::Status::TimedOut,
        "{} bytes left",
        c.bytes()
    );
    assert!(matches!(
        lb.echo(&[], T),
        Err(LoopbackError::InvalidArgument(_))
    ));
}

#[test]
fn loopback_throughput_moves_and_checks_everything() {
    let sim = SimHost::new();
    let _g = sim.plug(sim::Loopback::default());
    let lb = Loopback::open(&sim.host()).unwrap();
    let t = lb
        .throughput(&StreamConfig::new(1 << 20, 16 * 1024, 4))
        .unwrap();
    assert_eq!(t.bytes, 1 << 20);
    assert!(t.bytes_per_second() > 0.0);
}

#[test]
fn sourcesink_patterns_and_vendor_requests() {
    let sim = SimHost::new();
    let _g = sim.plug(sim::SourceSink::new(sim::Pattern::Zeros, 4096));
    let host = sim.host();
    let d = host
        .open(&usbdf::DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    let ss = SourceSink::from_interface(&d, d.claim_interface(0).unwrap(), Pattern::Zeros).unwrap();
    assert_eq!(ss.read_checked(8192, T).unwrap(), vec![0; 8192]);
    ss.write_pattern(5000, T).unwrap();
    let ep0: Vec<u8> = (0..300).map(|i| i as u8).collect();
    assert_eq!(ss.vendor_write(&ep0, T).unwrap(), 300);
    assert_eq!(ss.vendor_read(300, T).unwrap(), ep0);
    let t = ss
        .write_throughput(&StreamConfig::new(256 * 1024, 8192, 4))
        .unwrap();
    assert_eq!(t.bytes, 256 * 1024);
}

#[test]
fn a_wrong_pattern_is_caught_both_ways() {
    let sim = SimHost::new();
    let _g = sim.plug(sim::SourceSink::default()); // pattern 1
    let host = sim.host();
    let d = host
        .open(&usbdf::DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    // The host expects zeros: the source's pattern 1 is a mismatch at byte 1.
    let ss = SourceSink::from_interface(&d, d.claim_interface(0).unwrap(), Pattern::Zeros).unwrap();
    match ss.read_checked(512, T) {
        Err(LoopbackError::Mismatch(m)) => assert_eq!((m.offset, m.found), (1, 1)),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(matches!(
        ss.read_throughput(&StreamConfig::new(64 * 1024, 4096, 2)),
        Err(LoopbackError::Mismatch(_))
    ));
    // Zeros into a pattern-1 sink: the gadget halts its OUT endpoint.
    let first = ss.write_pattern(4096, T);
    let second = ss.write_pattern(4096, T);
    assert!(
        [&first, &second]
            .iter()
            .any(|r| matches!(r, Err(LoopbackError::Transfer(Status::Stall)))),
        "{first:?} {second:?}"
    );
    assert_eq!(ss.out_halted(), Some(Status::Stall));
    ss.reset_out().unwrap();
    assert_eq!(ss.out_halted(), None);
}

#[test]
fn drivers_bind_through_the_registry() {
    let sim = SimHost::new();
    let mut registry = Registry::new();
    registry
        .register(LoopbackDriver)
        .register(SourceSinkDriver::default());
    let binder = registry.start(&sim.host()).unwrap();
    let _a = sim.plug(sim::Loopback::default());
    let _b = sim.plug(sim::SourceSink::default());
    let mut names = Vec::new();
    for _ in 0..2 {
        match binder.next_event(T) {
            Some(RegistryEvent::Bound { driver, .. }) => names.push(driver),
            other => panic!("expected Bound, got {other:?}"),
        }
    }
    assert_eq!(names, ["usbdf-loopback", "usbdf-sourcesink"]);
}
