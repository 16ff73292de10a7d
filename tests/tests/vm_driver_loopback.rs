//! usbdf-loopback on the real gadget-zero functions: echo, patterns, the sink's halt, vendor
//! requests, pipelined throughput, and binding through the registry.

use std::time::Duration;

use usbdf::driver::{Registry, RegistryEvent};
use usbdf::{Host, Status, Timeout};
use usbdf_loopback::{
    Loopback, LoopbackDriver, LoopbackError, SourceSink, SourceSinkDriver, StreamConfig,
};
use usbdf_tests::vm;

const T: Timeout = Timeout::After(Duration::from_secs(5));

#[test]
fn echo_round_trips_every_size_class() {
    vm::require_vm();
    let lb = Loopback::open(&Host::system()).expect("open the loopback gadget");
    // Short, one packet, whole packets below bulk_buflen (needs the ZLP), exactly
    // bulk_buflen, several buffers, more than the gadget's 32 x 4096 bytes of buffers.
    for len in [1, 511, 512, 4096, 10_000, 200_000, 1024] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(lb.echo(&data, T).expect("echo"), data, "len {len}");
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
}

#[test]
fn loopback_throughput_checks_every_echoed_byte() {
    vm::require_vm();
    let lb = Loopback::open(&Host::system()).expect("open the loopback gadget");
    let t = lb
        .throughput(&StreamConfig::new(4 << 20, 64 * 1024, 8))
        .expect("loopback stream");
    assert_eq!(t.bytes, 4 << 20);
    println!(
        "loopback 64 KiB x 8: {:.1} MB/s",
        t.bytes_per_second() / 1e6
    );
}

#[test]
fn sourcesink_pattern_one_both_ways() {
    vm::require_vm();
    let ss = SourceSink::open(&Host::system()).expect("open the sourcesink gadget");
    let mps = ss.in_pipe().info().max_packet_size;
    assert_eq!(
        ss.read_checked(64 * 1024, T).expect("source").len(),
        64 * 1024
    );
    ss.write_pattern(64 * 1024, T)
        .expect("sink accepts pattern 1");
    ss.write_pattern(mps * 3 + 100, T)
        .expect("sink accepts a short tail");
    assert_eq!(ss.out_halted(), None);
}

#[test]
fn sourcesink_halts_on_wrong_data_and_reset_recovers() {
    vm::require_vm();
    let ss = SourceSink::open(&Host::system()).expect("open the sourcesink gadget");
    // A whole gadget buffer of 0xff: the sink's check fails and it halts OUT. The write
    // itself may complete before the gadget looks at the data; the next one stalls.
    let bad = vec![0xff; 4096];
    let first = ss.write(&bad, T);
    let second = ss.write(&bad, T);
    assert!(
        [&first, &second]
            .iter()
            .any(|r| matches!(r, Err(LoopbackError::Transfer(Status::Stall)))),
        "no stall: {first:?} {second:?}"
    );
    assert_eq!(ss.out_halted(), Some(Status::Stall));
    ss.reset_out().expect("clear the halt");
    ss.write_pattern(4096, T).expect("the sink works again");
}

#[test]
fn sourcesink_vendor_requests_round_trip() {
    vm::require_vm();
    let ss = SourceSink::open(&Host::system()).expect("open the sourcesink gadget");
    let data: Vec<u8> = (0..1000).map(|i| (i * 13) as u8).collect();
    assert_eq!(ss.vendor_write(&data, T).expect("0x5b"), data.len());
    assert_eq!(ss.vendor_read(1000, T).expect("0x5c"), data);
}

#[test]
fn sourcesink_read_throughput_checks_the_pattern() {
    vm::require_vm();
    let ss = SourceSink::open(&Host::system()).expect("open the sourcesink gadget");
    for (len, depth) in [(512, 1), (512, 8), (64 * 1024, 8)] {
        let total = if len == 512 { 256 * 1024 } else { 16 << 20 };
        let t = ss
            .read_throughput(&StreamConfig::new(total, len, depth))
            .expect("source stream");
        assert_eq!(t.bytes, total as u64);
        println!(
            "source {len} B x {depth}: {:.1} MB/s",
            t.bytes_per_second() / 1e6
        );
    }
    let t = ss
        .write_throughput(&StreamConfig::new(16 << 20, 64 * 1024, 8))
        .expect("sink stream");
    assert_eq!(t.bytes, 16 << 20);
    println!("sink 64 KiB x 8: {:.1} MB/s", t.bytes_per_second() / 1e6);
    assert_eq!(ss.out_halted(), None);
}

#[test]
fn registry_binds_both_gadget_zero_functions() {
    vm::require_vm();
    let mut registry = Registry::new();
    registry
        .register(LoopbackDriver)
        .register(SourceSinkDriver::default());
    let binder = registry
        .start(&Host::system())
        .expect("watch the system bus");
    let mut drivers = Vec::new();
    for _ in 0..2 {
        match binder.wait_for(T, |e| matches!(e, RegistryEvent::Bound { .. })) {
            Some(RegistryEvent::Bound { driver, .. }) => drivers.push(driver),
            other => panic!("expected Bound, got {other:?}"),
        }
    }
    drivers.sort_unstable();
    assert_eq!(drivers, ["usbdf-loopback", "usbdf-sourcesink"]);
    let list = binder.bindings();
    assert!(list
        .iter()
        .all(|b| b.vendor_id == 0x0525 && b.interfaces == [0]));
}
