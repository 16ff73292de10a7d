//! usbdf-cdc-acm on the kernel's real `f_acm` gadget (`acm.GS0`, gadget side
//! `/dev/ttyGS0`) through nusb.
//!
//! Measured here (Debian 6.1 `f_acm` + `u_serial`): the gadget sends `SERIAL_STATE` with
//! DCD|DSR (0x0003) when `/dev/ttyGS0` is opened and 0x0000 when it is closed (its
//! `acm_connect`/`acm_disconnect`), plus one 0x0000 when the host configures the device
//! while the tty is closed. A change made while the previous notification is still
//! queued on the endpoint is coalesced into one notification of the current state, so
//! the test checks the states it must see, in order, not an exact count.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use usbdf::driver::{Driver, Probe, ProbeContext};
use usbdf::{Device, DeviceSelector, Host, Timeout};
use usbdf_cdc_acm::{
    AcmConfig, AcmError, CdcAcm, CdcAcmDriver, ControlLines, DataBits, LineCoding, Notification,
    Parity, SerialState, StopBits, ID_TABLE,
};
use usbdf_tests::vm::{self, ACM};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Removal is seen within tens of ms and enumeration takes ~0.4 s under TCG: generous.
const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(10);

fn open_device() -> Device {
    Host::system()
        .open(&DeviceSelector::id(ACM.vendor_id, ACM.product_id).serial(ACM.serial))
        .expect("open the ACM gadget")
}

fn open_port(device: &Device) -> CdcAcm {
    let config = AcmConfig {
        read_timeout: Timeout::After(TIMEOUT),
        write_timeout: Timeout::After(TIMEOUT),
        ..AcmConfig::default()
    };
    CdcAcm::open(device, config).expect("bind usbdf-cdc-acm to the gadget")
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 37 + seed) % 256) as u8).collect()
}

/// Write all of `data` to a non-blocking tty, waiting with poll(2) when it is full.
fn tty_write_all(tty: &mut File, mut data: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !data.is_empty() {
        match tty.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ErrorKind::TimedOut.into());
                }
                let mut pollfd = libc::pollfd {
                    fd: tty.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pollfd, 1, ms) };
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receive notifications until `want` is seen; returns everything received on the way.
fn wait_for_state(rx: &Receiver<Notification>, want: SerialState) -> Vec<Notification> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(n) => {
                let done = n == Notification::SerialState(want);
                seen.push(n);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no SERIAL_STATE {want:?} within {TIMEOUT:?}; got {seen:?}"),
        }
    }
}

/// Set or clear a break on the gadget tty (`TIOCSBRK` / `TIOCCBRK`; f_acm reports it to the
/// host as SERIAL_STATE BREAK).
fn set_break(tty: &std::fs::File, on: bool) {
    use std::os::fd::AsRawFd;
    let request = if on { libc::TIOCSBRK } else { libc::TIOCCBRK };
    // SAFETY: an ioctl without an argument on an open tty descriptor.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), request) };
    assert_eq!(
        rc,
        0,
        "ioctl break {on}: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn acm_line_coding_round_trip() {
    vm::require_vm();
    let device = open_device();
    let acm = open_port(&device);
    for lc in [
        LineCoding {
            rate: 115_200,
            ..LineCoding::default()
        },
        LineCoding {
            rate: 57_600,
            stop_bits: StopBits::Two,
            parity: Parity::Even,
            data_bits: DataBits::SEVEN,
        },
    ] {
        acm.set_line_coding(&lc).expect("SET_LINE_CODING");
        assert_eq!(acm.line_coding().expect("GET_LINE_CODING"), lc);
    }
    acm.set_control_lines(ControlLines::ASSERTED)
        .expect("SET_CONTROL_LINE_STATE");
    acm.set_control_lines(ControlLines::default())
        .expect("SET_CONTROL_LINE_STATE");
}

#[test]
fn acm_bytes_both_ways_byte_for_byte() {
    vm::require_vm();
    // The tty must be open (and raw: no echo back to the host) before data can flow.
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open the gadget tty raw");
    let device = open_device();
    let mut acm = open_port(&device);

    // Host to gadget: a few KB in writes of awkward sizes (packet boundaries included).
    let mut sent = Vec::new();
    for (i, len) in [1usize, 511, 512, 513, 1000, 2048].into_iter().enumerate() {
        let data = pattern(len, i);
        acm.write_all(&data).expect("write to the port");
        sent.extend(data);
    }
    let mut got = vec![0; sent.len()];
    vm::read_exact_timeout(&mut tty, &mut got, TIMEOUT).expect("read the gadget tty");
    assert!(got == sent, "host -> gadget bytes differ");

    // Gadget to host.
    let back = pattern(4096 + 300, 99);
    tty_write_all(&mut tty, &back).expect("write the gadget tty");
    let mut got = vec![0; back.len()];
    acm.read_exact(&mut got).expect("read from the port");
    assert!(got == back, "gadget -> host bytes differ");
}

#[test]
fn acm_read_timeout_loses_nothing() {
    vm::require_vm();
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open the gadget tty raw");
    let device = open_device();
    let acm = open_port(&device);
    let mut reader = acm.reader();
    for _ in 0..3 {
        let e = reader
            .read_timeout(&mut [0; 64], Timeout::millis(30))
            .unwrap_err();
        assert!(matches!(e, AcmError::TimedOut), "{e:?}");
    }
    tty_write_all(&mut tty, b"after the timeouts").expect("write the gadget tty");
    let mut got = [0; 18];
    reader.read_exact(&mut got).expect("read after timeouts");
    assert_eq!(&got, b"after the timeouts");
}

#[test]
fn acm_serial_state_follows_the_gadget_tty() {
    vm::require_vm();
    let device = open_device();
    let acm = open_port(&device);
    let rx = acm.subscribe();
    acm.start().expect("start the notification reader");

    let tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open the gadget tty");
    let open = SerialState::DCD | SerialState::DSR;
    let on_open = wait_for_state(&rx, SerialState(open));
    // f_acm merges state changes while a notification is still queued, and
    // an earlier test may have left one queued (its tty opened and closed
    // with nobody reading notifications): stale DCD|DSR and 0 states can
    // arrive after our open, before or after its own DCD|DSR (CI saw 0 then
    // DCD|DSR after a close). A marker no earlier test leaves behind orders
    // the stream: a break from the gadget tty (TIOCSBRK: f_acm sets BREAK).
    // Every notification after the marker was sent after it, so the states
    // that follow only move forward: BREAK, DCD|DSR, then 0 for good.
    set_break(&tty, true);
    let marked = wait_for_state(&rx, SerialState(open | SerialState::BREAK));
    set_break(&tty, false);
    drop(tty);
    let on_close = wait_for_state(&rx, SerialState(0));
    eprintln!(
        "SERIAL_STATE on open: {on_open:?}; to the break: {marked:?}; on close: {on_close:?}"
    );
    // The order of the states after the marker; anything else is not a state f_acm sends here.
    let rank = |n: &Notification| match n {
        Notification::SerialState(SerialState(v)) if *v == open | SerialState::BREAK => 0,
        Notification::SerialState(SerialState(v)) if *v == open => 1,
        Notification::SerialState(SerialState(0)) => 2,
        _ => 3,
    };
    assert!(on_open.iter().all(|n| rank(n) < 3), "{on_open:?}");
    assert!(marked.iter().all(|n| rank(n) < 3), "{marked:?}");
    assert!(on_close.iter().all(|n| rank(n) < 3), "{on_close:?}");
    assert!(
        on_close.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "after the break, states only move forward: {on_close:?}"
    );
    // After a 0 that followed the marker the tty stays closed: 0 is the last word.
    assert_eq!(acm.latest_serial_state(), Some(SerialState(0)));
    assert_eq!(acm.notifications_malformed(), 0);
}

#[test]
fn acm_driver_probes_the_gadget() {
    vm::require_vm();
    let device = open_device();
    let driver = CdcAcmDriver::new();
    let config = device.active_configuration().expect("configuration");
    let offer = |number: u8| {
        let iface = config.setting(number, 0).expect("interface");
        let matched = ID_TABLE
            .iter()
            .find(|m| m.matches(device.device_descriptor(), iface))
            .copied()
            .unwrap_or(usbdf::driver::DeviceMatch::ANY);
        driver.probe(&ProbeContext {
            device: &device,
            interface: iface,
            matched: &matched,
        })
    };
    assert!(matches!(offer(1), Ok(Probe::NotMine)), "data interface");
    let Ok(Probe::Bound(mut acm)) = offer(0) else {
        panic!("cdc-acm did not bind the communication interface");
    };
    driver.start(&mut acm).expect("start");
    acm.line_coding()
        .expect("GET_LINE_CODING through the bound instance");
    driver.stop(&mut acm);
}

#[test]
fn acm_unplug_while_reading_then_rebind() {
    vm::require_vm();
    let device = open_device();
    let acm = open_port(&device);
    acm.start().expect("start");
    acm.set_read_timeout(Timeout::millis(20_000));
    let mut reader = acm.reader();
    let blocked = std::thread::spawn(move || {
        let start = Instant::now();
        (reader.read(&mut [0; 512]), start.elapsed())
    });
    let deadline = Instant::now() + TIMEOUT;
    while acm.reader().pipe().in_flight() == 0 {
        assert!(Instant::now() < deadline, "the read was never sent");
        std::thread::yield_now();
    }

    let unbound = vm::Unbound::new(&ACM).expect("unbind the ACM gadget");
    let (result, took) = blocked.join().expect("the reading thread panicked");
    let e = result.expect_err("the read must fail when the device goes");
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e:?}");
    assert!(AcmError::from_io(&e).is_some_and(AcmError::is_disconnected));
    assert!(took < Duration::from_secs(10), "read took {took:?}");

    // Everything after fails fast with Disconnected.
    let start = Instant::now();
    assert_eq!(
        acm.reader().read(&mut [0; 8]).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(
        acm.writer().write(b"x").unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert!(acm.line_coding().unwrap_err().is_disconnected());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(acm.reader().pipe().abort(Timeout::After(TIMEOUT)).is_ok());
    drop(acm);
    drop(device);

    unbound.rebind().expect("rebind the ACM gadget");
    vm::wait_for_device(ACM.vendor_id, ACM.product_id, HOTPLUG_TIMEOUT)
        .expect("the gadget comes back");
    let device = open_device();
    let acm = open_port(&device);
    let before = acm.line_coding().expect("GET_LINE_CODING after rebind");
    eprintln!("line coding after rebind, before any SET: {before:?}");
    let lc = LineCoding {
        rate: 38_400,
        ..LineCoding::default()
    };
    acm.set_line_coding(&lc)
        .expect("SET_LINE_CODING after rebind");
    assert_eq!(acm.line_coding().expect("GET_LINE_CODING"), lc);
}
