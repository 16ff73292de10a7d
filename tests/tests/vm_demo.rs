//! The README's first command on the real gadgets.
//!
//! Without arguments the demo must pick the system host when the gadgets are attached and
//! pass every step it can without a program on the device side. With the gadget sides as
//! its peers (`/dev/ttyGS0` echoing, `/dev/hidg0` sending input reports and receiving the
//! output report) it must also complete the CDC-ACM round trip and decode the HID reports.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use usbdf::Host;
use usbdf_demo::cmd::list;
use usbdf_demo::{HidPeer, Peers, SerialPeer, TourOptions};
use usbdf_tests::vm::{self, ACM, HID, LOOPBACK, SOURCE_SINK};

const DRIVERS: [(&str, u16); 4] = [
    ("usbdf-loopback", LOOPBACK.product_id),
    ("usbdf-sourcesink", SOURCE_SINK.product_id),
    ("cdc-acm", ACM.product_id),
    ("usbdf-hid", HID.product_id),
];

/// Wait with poll(2) until `file` is ready for `events`, at most until `deadline`.
fn poll_until(file: &File, events: libc::c_short, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ErrorKind::TimedOut.into());
    }
    let mut pollfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pollfd, 1, ms) } < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Write all of `data` to a non-blocking file within `timeout`.
fn write_all_timeout(file: &mut File, mut data: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !data.is_empty() {
        match file.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll_until(file, libc::POLLOUT, deadline)?
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read and drop whatever a non-blocking file has buffered (left by an earlier test).
fn drain(file: &mut File) -> io::Result<()> {
    let mut buf = [0u8; 512];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The ACM gadget's tty, raw: it sends back what the host wrote.
struct TtyEcho(File);

impl SerialPeer for TtyEcho {
    fn echo(&mut self, len: usize, timeout: Duration) -> io::Result<()> {
        let mut buf = vec![0; len];
        vm::read_exact_timeout(&mut self.0, &mut buf, timeout)?;
        write_all_timeout(&mut self.0, &buf, timeout)
    }
}

/// `/dev/hidg0`: input reports written to it go to the host; output reports from the host
/// are read from it, one per read.
struct Hidg(File);

impl HidPeer for Hidg {
    fn send_input_report(&mut self, report: &[u8]) -> io::Result<()> {
        write_all_timeout(&mut self.0, report, Duration::from_secs(5))
    }

    fn take_output_report(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let mut report = vec![0; usize::from(vm::HID_REPORT_LENGTH)];
        vm::read_exact_timeout(&mut self.0, &mut report, timeout)?;
        Ok(report)
    }
}

fn gadget_peers() -> Peers {
    let mut tty = vm::configure_tty_raw(vm::ACM_TTY).expect("open the gadget tty raw");
    drain(&mut tty).expect("drain the gadget tty");
    let mut hidg = vm::open_gadget_device(vm::HID_DEVICE).expect("open /dev/hidg0");
    drain(&mut hidg).expect("drain /dev/hidg0");
    Peers {
        serial: Some(Box::new(TtyEcho(tty))),
        hid: Some(Box::new(Hidg(hidg))),
    }
}

fn assert_all_bound(summary: &usbdf_demo::Summary) {
    for (driver, product_id) in DRIVERS {
        assert!(
            summary
                .bindings
                .iter()
                .any(|b| b.driver == driver && b.product_id == product_id),
            "{driver} bound to 0525:{product_id:04x}: {:?}",
            summary.bindings
        );
    }
}

#[test]
fn demo_chooses_the_real_devices_and_passes_without_a_device_side() {
    vm::require_vm();
    // Exactly what `cargo run -p usbdf-demo` does: with the gadgets present it must pick
    // the system stack.
    let summary = usbdf_demo::run(false).expect("the tour passes on the system host");
    assert_eq!(summary.host, "system");
    assert_all_bound(&summary);
    let lb = summary.loopback.expect("loopback ran");
    assert_eq!(
        lb.verified_bytes,
        TourOptions::default().loopback_bytes as u64
    );
    assert!(lb.mb_per_s() > 0.0);
    assert!(summary.sourcesink.expect("sourcesink ran").checked_bytes > 0);
    let serial = summary.serial.expect("cdc-acm ran");
    assert_eq!(serial.line_coding_read, serial.line_coding_set);
    assert_eq!(serial.bytes_echoed, None, "nothing echoes without a peer");
    let hid = summary.hid.expect("hid ran");
    assert_eq!(hid.descriptor_reports, 3);
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.starts_with("cdc-acm echo")),
        "{:?}",
        summary.skipped
    );
}

#[test]
fn demo_completes_every_round_trip_with_the_gadget_sides() {
    vm::require_vm();
    let mut peers = gadget_peers();
    let options = TourOptions::default();
    let summary = usbdf_demo::run_with(&Host::system(), &mut peers, &options)
        .expect("the tour passes with the gadget sides as peers");
    assert_eq!(summary.host, "system");
    assert_all_bound(&summary);
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);

    let lb = summary.loopback.expect("loopback ran");
    assert_eq!(lb.verified_bytes, options.loopback_bytes as u64);
    assert!(lb.mb_per_s() > 0.0);
    let ss = summary.sourcesink.expect("sourcesink ran");
    assert!(ss.checked_bytes >= options.sourcesink_bytes as u64);
    assert!(ss.mb_per_s > 0.0);

    let serial = summary.serial.expect("cdc-acm ran");
    assert_eq!(serial.line_coding_read, serial.line_coding_set);
    assert_eq!(serial.line_coding_read.rate, 115_200);
    assert_eq!(serial.bytes_written, options.serial_bytes);
    assert_eq!(serial.bytes_echoed, Some(options.serial_bytes));

    let hid = summary.hid.expect("hid ran");
    let mut out = vec![vm::HID_OUTPUT_REPORT_ID];
    out.extend(1..=vm::HID_IO_REPORT_LEN as u8);
    assert_eq!(
        hid.output_received,
        Some(out),
        "output report at /dev/hidg0"
    );
    assert_eq!(hid.inputs.len(), options.hid_reports);
    for (n, r) in hid.inputs.iter().enumerate() {
        let want: Vec<i64> = (0..vm::HID_IO_REPORT_LEN)
            .map(|i| (16 * n + i) as i64)
            .collect();
        let got: Vec<i64> = r.fields.iter().map(|v| v.value).collect();
        assert_eq!(
            (r.id, got),
            (vm::HID_INPUT_REPORT_ID, want),
            "input report {n} from /dev/hidg0, decoded"
        );
    }
}

#[test]
fn demo_list_shows_each_gadget_bound() {
    vm::require_vm();
    let listing = list::run(&Host::system()).expect("list on the system host");
    assert_eq!(listing.host, "system");
    let bound = listing.bound();
    for (driver, product_id) in DRIVERS {
        let id = format!("0525:{product_id:04x}");
        assert!(
            bound.contains(&(driver, id.clone())),
            "{driver} on {id}: {listing}"
        );
    }
    // The ACM function's data interface is bound with its communication interface.
    let acm = listing
        .devices
        .iter()
        .find(|d| d.product_id == ACM.product_id)
        .expect("the ACM gadget is listed");
    assert!(acm.interfaces.iter().all(|i| i.driver == Some("cdc-acm")));
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
}
