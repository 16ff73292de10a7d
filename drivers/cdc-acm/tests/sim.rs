//! The driver against the simulator's `f_acm` model.

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::AsyncRead;
use usbdf::descriptor::{class, ConfigBuilder, CS_INTERFACE};
use usbdf::driver::{Driver, Probe, ProbeContext};
use usbdf::sim::{
    self, AcmPort, CdcAcm as AcmModel, DeviceModel, ModelDescriptors, SimDeviceHandle, SimHost,
    SimOptions,
};
use usbdf::{DeviceSelector, Speed, Timeout};
use usbdf_cdc_acm::{
    AcmConfig, AcmError, CdcAcm, CdcAcmDriver, ControlLines, DataBits, LineCoding, Notification,
    Parity, SerialState, StopBits, ID_TABLE,
};

const T: Duration = Duration::from_secs(2);

struct Rig {
    sim: SimHost,
    gadget: AcmPort,
    handle: SimDeviceHandle,
    device: usbdf::Device,
}

fn rig_with(options: SimOptions) -> Rig {
    let model = AcmModel::new();
    let gadget = model.port();
    let sim = SimHost::with_options(options);
    let handle = sim.plug(model);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a7))
        .unwrap();
    Rig {
        sim,
        gadget,
        handle,
        device,
    }
}

fn rig() -> Rig {
    rig_with(SimOptions::new())
}

fn open(rig: &Rig) -> CdcAcm {
    CdcAcm::open(&rig.device, AcmConfig::default()).unwrap()
}

fn acm_error(e: &std::io::Error) -> &AcmError {
    AcmError::from_io(e).unwrap_or_else(|| panic!("not an AcmError: {e:?}"))
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

#[test]
fn finds_both_interfaces_from_the_functional_descriptors() {
    let rig = rig();
    let acm = open(&rig);
    let info = acm.info();
    assert_eq!((info.comm_interface, info.data_interface), (0, 1));
    assert_eq!(info.notify_in.map(|e| e.address), Some(0x83));
    assert_eq!((info.data_in.address, info.data_out.address), (0x82, 0x02));
    assert_eq!(info.functional.cdc_version, 0x0110);
    assert!(info.functional.acm.unwrap().line());
    // Both interfaces are taken.
    assert!(rig.device.claim_interface(0).is_err());
    assert!(rig.device.claim_interface(1).is_err());
    drop(acm);
    assert!(rig.device.claim_interface(1).is_ok(), "released on drop");
}

#[test]
fn line_coding_round_trip() {
    let rig = rig();
    let acm = open(&rig);
    assert_eq!(acm.line_coding().unwrap(), LineCoding::default());
    let lc = LineCoding {
        rate: 921_600,
        stop_bits: StopBits::Two,
        parity: Parity::Odd,
        data_bits: DataBits::SEVEN,
    };
    acm.set_line_coding(&lc).unwrap();
    assert_eq!(acm.line_coding().unwrap(), lc);
    let model = rig.gadget.line_coding();
    assert_eq!(
        (model.rate, model.stop_bits, model.parity, model.data_bits),
        (921_600, 2, 1, 7)
    );
}

#[test]
fn control_lines_and_break_are_seen_by_the_model() {
    let rig = rig();
    let acm = open(&rig);
    acm.set_control_lines(ControlLines::ASSERTED).unwrap();
    assert_eq!(rig.gadget.control_lines(), 3);
    acm.set_control_lines(ControlLines {
        dtr: true,
        rts: false,
    })
    .unwrap();
    assert_eq!(rig.gadget.control_lines(), 1);
    acm.send_break(250).unwrap();
    acm.send_break(0).unwrap();
    assert_eq!(rig.gadget.breaks(), vec![250, 0]);
}

#[test]
fn bytes_both_ways() {
    let rig = rig();
    let mut acm = open(&rig);
    // Host to device: sizes around the packet boundary, a few KB in all.
    let mut sent = Vec::new();
    for (i, len) in [1usize, 511, 512, 513, 1024, 3000].into_iter().enumerate() {
        let data = pattern(len, i);
        acm.write_all(&data).unwrap();
        sent.extend(data);
    }
    acm.flush().unwrap();
    assert_eq!(rig.gadget.read(), sent);

    // Device to host, one gadget write at a time, read back exactly.
    let mut expect = Vec::new();
    for (i, len) in [1usize, 512, 100, 2048, 700].into_iter().enumerate() {
        let data = pattern(len, 100 + i);
        rig.gadget.write(&data);
        expect.extend(data);
    }
    let mut got = vec![0; expect.len()];
    acm.read_exact(&mut got).unwrap();
    assert_eq!(got, expect);
    assert_eq!(acm.reader().buffered(), 0);
}

#[test]
fn small_buffers_get_every_byte_through_the_leftover_buffer() {
    let rig = rig();
    let acm = open(&rig);
    let data = pattern(1500, 7);
    rig.gadget.write(&data);
    let mut reader = acm.reader();
    let mut got = Vec::new();
    let mut buf = [0; 3];
    while got.len() < data.len() {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}

#[test]
fn serial_state_notification_is_delivered() {
    let rig = rig();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let config = AcmConfig::default().on_notification(move |n| log.lock().unwrap().push(n.clone()));
    let acm = CdcAcm::open(&rig.device, config).unwrap();
    let rx = acm.subscribe();
    assert_eq!(acm.latest_serial_state(), None);
    acm.start().unwrap();
    rig.gadget
        .notify_serial_state(SerialState::DCD | SerialState::DSR | SerialState::RING);
    let n = rx.recv_timeout(T).unwrap();
    let want = Notification::SerialState(SerialState(0b1011));
    assert_eq!(n, want);
    let s = acm.latest_serial_state().unwrap();
    assert!(s.dcd() && s.dsr() && s.ring() && !s.break_detected());
    assert_eq!(*seen.lock().unwrap(), vec![want]);
    assert_eq!(acm.notifications_received(), 1);
    assert_eq!(acm.notifications_malformed(), 0);
}

#[test]
fn notification_storm_arrives_complete_and_in_order() {
    let rig = rig();
    let acm = open(&rig);
    let rx = acm.subscribe();
    acm.start().unwrap();
    const N: u16 = 2000;
    for i in 0..N {
        rig.gadget.notify_serial_state(i);
    }
    for i in 0..N {
        assert_eq!(
            rx.recv_timeout(T).unwrap(),
            Notification::SerialState(SerialState(i)),
            "notification {i}"
        );
    }
    assert_eq!(acm.latest_serial_state(), Some(SerialState(N - 1)));
    assert_eq!(acm.notifications_received(), u64::from(N));
}

#[test]
fn stop_and_start_the_notification_reader() {
    let rig = rig();
    let acm = open(&rig);
    let rx = acm.subscribe();
    acm.start().unwrap();
    rig.gadget.notify_serial_state(1);
    assert_eq!(
        rx.recv_timeout(T).unwrap(),
        Notification::SerialState(SerialState(1))
    );
    acm.stop(Timeout::millis(2000));
    assert_eq!(
        acm.notification_reader_state(),
        Some(usbdf::ReaderState::Stopped)
    );
    // Sent while stopped: kept by the device, delivered after the restart.
    rig.gadget.notify_serial_state(2);
    let mut r = acm.reader();
    let e = r.read(&mut [0; 8]).unwrap_err();
    assert!(matches!(acm_error(&e), AcmError::Stopped), "{e:?}");
    acm.start().unwrap();
    assert_eq!(
        rx.recv_timeout(T).unwrap(),
        Notification::SerialState(SerialState(2))
    );
    rig.gadget.write(b"again");
    let mut buf = [0; 5];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
}

#[test]
fn a_read_that_times_out_loses_nothing() {
    let rig = rig();
    let acm = open(&rig);
    let mut reader = acm.reader();
    reader.set_timeout(Timeout::millis(20));
    let e = reader.read(&mut [0; 64]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(matches!(acm_error(&e), AcmError::TimedOut));
    // The device sends after the timeout: the next read gets it.
    rig.gadget.write(b"late bytes");
    reader.set_timeout(Timeout::millis(2000));
    let mut buf = [0; 10];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late bytes");
}

#[test]
fn reads_cut_by_timeouts_mid_transfer_keep_every_byte() {
    // One packet per millisecond and 8-packet reads with a 3 ms timeout: most reads time
    // out part-way, holding the packets that came before the cancel.
    let rig = rig_with(SimOptions::new().packets_per_ms(Some(1)));
    let config = AcmConfig {
        read_packets: 8,
        read_timeout: Timeout::millis(3),
        ..AcmConfig::default()
    };
    let acm = CdcAcm::open(&rig.device, config).unwrap();
    let data = pattern(20 * 512 + 77, 3);
    rig.gadget.write(&data);
    let mut reader = acm.reader();
    let (mut got, mut timeouts, mut partial) = (Vec::new(), 0, 0);
    let mut buf = vec![0; 8 * 512];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < data.len() {
        assert!(Instant::now() < deadline, "stream stalled at {}", got.len());
        match reader.read(&mut buf) {
            Ok(n) => {
                if n < 512 * 8 && got.len() + n < data.len() {
                    partial += 1;
                }
                got.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => timeouts += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes lost, duplicated or reordered");
    assert!(
        partial > 0,
        "no read was cut mid-transfer ({timeouts} timeouts)"
    );
}

#[test]
fn dropping_an_async_read_loses_nothing() {
    let rig = rig();
    let acm = open(&rig);
    let mut reader = acm.reader();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0; 16];
    assert!(matches!(
        std::pin::Pin::new(&mut reader).poll_read(&mut cx, &mut buf),
        Poll::Pending
    ));
    // The caller gives up (e.g. a runtime timeout drops the read future); data comes.
    rig.gadget.write(b"kept");
    let mut got = [0; 4];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"kept");
}

/// The futures::io side, in a module of its own (its extension traits share method names
/// with std::io's).
mod async_io {
    use super::{open, pattern, rig};
    use futures::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn async_read_and_write() {
        let rig = rig();
        let mut acm = open(&rig);
        futures::executor::block_on(async {
            let out = pattern(5000, 9);
            acm.write_all(&out).await.unwrap();
            acm.flush().await.unwrap();
            assert_eq!(rig.gadget.read(), out);
            let back = pattern(3333, 11);
            rig.gadget.write(&back);
            let mut got = vec![0; back.len()];
            acm.read_exact(&mut got).await.unwrap();
            assert_eq!(got, back);
        });
    }
}

#[test]
fn stall_on_the_data_pipes_is_typed_and_recovered() {
    let rig = rig();
    let mut acm = open(&rig);
    rig.handle.halt(0x82);
    let e = acm.read(&mut [0; 64]).unwrap_err();
    assert!(
        matches!(acm_error(&e), AcmError::Stall { endpoint: 0x82 }),
        "{e:?}"
    );
    assert!(!rig.handle.is_halted(0x82), "the driver cleared the halt");
    rig.gadget.write(b"after the stall");
    let mut buf = [0; 15];
    acm.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after the stall");

    rig.handle.halt(0x02);
    let e = acm.write(b"lost").unwrap_err();
    assert!(
        matches!(acm_error(&e), AcmError::Stall { endpoint: 0x02 }),
        "{e:?}"
    );
    acm.write_all(b"delivered").unwrap();
    assert_eq!(rig.gadget.read(), b"delivered");
}

#[test]
fn unplug_mid_read_ends_it_with_disconnected_and_later_calls_fail_fast() {
    let rig = rig();
    let acm = open(&rig);
    acm.start().unwrap();
    acm.set_read_timeout(Timeout::millis(10_000));
    let mut reader = acm.reader();
    let blocked = std::thread::spawn(move || {
        let start = Instant::now();
        (reader.read(&mut [0; 64]), start.elapsed())
    });
    // Wait until the read is on the bus, then pull the plug.
    let deadline = Instant::now() + T;
    while acm.reader().pipe().in_flight() == 0 {
        assert!(Instant::now() < deadline, "the read was never sent");
        std::thread::yield_now();
    }
    assert!(rig.handle.unplug());
    let (result, took) = blocked.join().unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e:?}");
    assert!(acm_error(&e).is_disconnected());
    assert!(
        took < Duration::from_secs(5),
        "the read waited for its timeout"
    );

    let start = Instant::now();
    let mut r = acm.reader();
    let mut w = acm.writer();
    assert_eq!(
        r.read(&mut [0; 8]).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(w.write(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    assert!(acm.line_coding().unwrap_err().is_disconnected());
    assert!(acm
        .set_control_lines(ControlLines::ASSERTED)
        .unwrap_err()
        .is_disconnected());
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(acm.start().unwrap_err().is_disconnected());
    drop(acm);
    drop(rig.sim);
}

/// A communication interface with header and ACM descriptors but no union.
struct NoUnion;

impl DeviceModel for NoUnion {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let config = ConfigBuilder::new(1)
            .interface(0, class::CDC, 2, 1)
            .class_specific(CS_INTERFACE, [0x00, 0x10, 0x01])
            .class_specific(CS_INTERFACE, [0x02, 0x02])
            .endpoint(sim::interrupt_endpoint(0x83, 16, 32, speed))
            .interface(1, class::CDC_DATA, 0, 0)
            .endpoint(sim::bulk_endpoint(0x82, speed))
            .endpoint(sim::bulk_endpoint(0x02, speed))
            .to_bytes();
        ModelDescriptors::new(sim::device_descriptor(0x1209, 0x0002, speed), vec![config])
    }
}

fn probe(
    driver: &CdcAcmDriver,
    device: &usbdf::Device,
    interface: u8,
) -> Result<Probe<CdcAcm>, usbdf::Error> {
    let config = device.active_configuration().unwrap();
    let iface = config.setting(interface, 0).unwrap();
    let matched = ID_TABLE
        .iter()
        .find(|m| m.matches(device.device_descriptor(), iface))
        .copied()
        .unwrap_or(usbdf::driver::DeviceMatch::ANY);
    driver.probe(&ProbeContext {
        device,
        interface: iface,
        matched: &matched,
    })
}

#[test]
fn driver_probe_start_stop_removed() {
    let rig = rig();
    let driver = CdcAcmDriver::new();
    assert_eq!(driver.name(), "cdc-acm");
    assert!(matches!(probe(&driver, &rig.device, 1), Ok(Probe::NotMine)));
    let Ok(Probe::Bound(mut acm)) = probe(&driver, &rig.device, 0) else {
        panic!("the driver did not bind the communication interface");
    };
    let rx = acm.subscribe();
    driver.start(&mut acm).unwrap();
    rig.gadget.notify_serial_state(SerialState::DSR);
    assert_eq!(
        rx.recv_timeout(T).unwrap(),
        Notification::SerialState(SerialState(SerialState::DSR))
    );
    acm.write_all(b"hi").unwrap();
    assert_eq!(rig.gadget.read(), b"hi");
    driver.stop(&mut acm);
    assert!(rig.handle.unplug());
    driver.removed(acm);
    // Both interfaces were claimed by the bound instance: a second probe fails (Busy).
    let rig = self::rig();
    let Ok(Probe::Bound(_acm)) = probe(&driver, &rig.device, 0) else {
        panic!("bind");
    };
    assert!(matches!(
        probe(&driver, &rig.device, 0),
        Err(usbdf::Error::Busy { .. })
    ));
}

#[test]
fn driver_says_not_mine_without_a_union_and_claims_nothing() {
    let sim = SimHost::new();
    let _plugged = sim.plug(NoUnion);
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x1209, 0x0002))
        .unwrap();
    let driver = CdcAcmDriver::new();
    assert!(matches!(probe(&driver, &device, 0), Ok(Probe::NotMine)));
    assert!(device.claim_interface(0).is_ok() && device.claim_interface(1).is_ok());
    assert!(matches!(
        CdcAcm::open(&device, AcmConfig::default()),
        Err(AcmError::NotAcm(
            usbdf_cdc_acm::FindError::Functional { .. }
        ))
    ));
}
