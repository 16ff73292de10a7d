//! The Linux kernel's usbtest battery (drivers/usb/misc/usbtest.c) re-implemented with
//! usbdf's public API, on the SourceSink gadget (gadget zero IDs, pattern 1, 4096-byte
//! gadget requests). One test per applicable case, `usbtest_caseNN_<what>`; each prints its
//! parameters and an `@@usbtest` summary line (see `usbdf_tests::usbtest`). The kernel's own
//! driver runs the same cases in `vm_usbtest_kernel`; `docs/conformance.md` has both.
//!
//! Not applicable on this gadget (no test): iso 15/16/22/23 (dummy_hcd has no iso endpoints,
//! so SourceSink has no alt setting 1), interrupt 25/26 (SourceSink has no interrupt
//! endpoints).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use usbdf::control::{standard, ControlDirection, Recipient, RequestKind};
use usbdf::{
    CancelHandle, CancelOutcome, Completion, CompletionRoutine, Memory, PipePolicy, Request,
    SendErrorKind, SendOptions, SetupPacket, ShortPacket, Status, Timeout,
};

use usbdf_tests::gadget::{self, assert_bytes_eq, BulkPair, Rng, T};
use usbdf_tests::usbtest::{check_pattern1, next_len, pattern1, CaseReport, Params};
use usbdf_tests::vm::{self, SOURCE_SINK};

/// usbtest's per-transfer timeout for simple I/O.
const SIMPLE_TIMEOUT: Timeout = Timeout::millis(10_000);

fn open() -> BulkPair {
    vm::require_vm();
    gadget::open_bulk_pair(&SOURCE_SINK)
}

fn write_request(data: &[u8]) -> Request {
    Request::new(Memory::from_slice(data))
}

/// One OUT transfer of pattern 1 (a ZLP follows whole-packet lengths: `Zlp::Auto`).
fn simple_out(pair: &BulkPair, data: &[u8], what: &str) {
    let c = pair
        .out
        .write_sync(write_request(data), SIMPLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    assert_eq!(
        (c.status(), c.bytes()),
        (Status::Success, data.len()),
        "{what}"
    );
}

/// One IN transfer with short-not-ok, pattern 1 checked.
fn simple_in(pair: &BulkPair, len: usize, what: &str) {
    let mp = pair.max_packet();
    let c = pair
        .inp
        .read_sync(Request::with_capacity(len), len, SIMPLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    assert_eq!((c.status(), c.bytes()), (Status::Success, len), "{what}");
    check_pattern1(c.data(), mp).unwrap_or_else(|e| panic!("{what}: {e}"));
}

fn short_not_ok(pair: &BulkPair) {
    pair.inp.set_policy(PipePolicy {
        short_packet: ShortPacket::NotOk,
        ..PipePolicy::default()
    });
}

/// Whole packets: nusb/usbfs take IN lengths in whole packets only, and SourceSink sends
/// full packets, so a shorter IN buffer would be a babble on real hardware.
fn round_up(len: usize, mp: usize) -> usize {
    len.div_ceil(mp) * mp
}

// ---------------------------------------------------------------------------------------
// 1–4: simple I/O.

fn simple_case(case: &str, out: bool, p: Params) -> CaseReport {
    let pair = open();
    let mp = pair.max_packet();
    short_not_ok(&pair);
    let max = p.length as usize;
    let vary = p.vary as usize;
    let mut report = CaseReport::new(case, p.describe());
    let block = pattern1(max, mp);
    let mut len = max;
    let mut bytes = 0usize;
    let mut rounded = 0usize;
    for i in 0..p.iterations {
        let what = format!("case {case} iteration {i}, {len} bytes");
        if out {
            simple_out(&pair, &block[..len], &what);
            bytes += len;
        } else {
            let n = round_up(len, mp);
            if n != len {
                rounded += 1;
            }
            simple_in(&pair, n, &what);
            bytes += n;
        }
        len = next_len(len, vary, max);
    }
    if rounded > 0 {
        report.note(format!(
            "{rounded} IN lengths rounded up to whole packets (usbfs/nusb need them)"
        ));
    }
    report.note(format!("{bytes} bytes"));
    report
}

#[test]
fn usbtest_case01_bulk_out_simple() {
    simple_case(
        "01",
        true,
        Params {
            vary: 0,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case02_bulk_in_simple() {
    simple_case(
        "02",
        false,
        Params {
            vary: 0,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case03_bulk_out_varying() {
    simple_case(
        "03",
        true,
        Params {
            length: 2048,
            vary: 421,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case04_bulk_in_varying() {
    let mut report = simple_case(
        "04",
        false,
        Params {
            length: 2048,
            vary: 421,
            ..Params::DEFAULT
        },
    );
    // What the kernel's case 4 runs into with 421: SourceSink sends a full 512-byte packet
    // into a 421-byte buffer. usbdf, asked for exactly 421 bytes (no packet-size check),
    // reports the data past the 421 bytes as `Overflow`.
    let pair = open();
    pair.inp.set_policy(PipePolicy {
        packet_size_check: usbdf::PacketSizeCheck::None,
        ..PipePolicy::default()
    });
    let c = pair
        .inp
        .read_sync(Request::with_capacity(512), 421, SIMPLE_TIMEOUT)
        .expect("send a 421-byte read");
    assert_eq!(
        c.status(),
        Status::Overflow,
        "a 421-byte read of a 512-byte packet"
    );
    // usbfs took the whole packet into the rounded-up buffer, so the bus saw no babble and
    // the endpoint is not halted: usbdf's own length check made it `Overflow`.
    let halted = pair.inp.halted();
    assert!(
        matches!(halted, None | Some(Status::Overflow)),
        "{halted:?}"
    );
    if halted.is_some() {
        pair.inp.reset().expect("reset after the overflow");
    }
    simple_in(&pair, 512, "a read after the overflow");
    report.note(format!(
        "a 421-byte read without the packet-size check: Overflow (pipe halted: {halted:?})"
    ));
}

// ---------------------------------------------------------------------------------------
// 5–8: queued ("scatter-gather") I/O: sglen transfers back to back per iteration, all in
// flight at once, each checked.

/// Entry sizes of one usbtest sg list: `alloc_sglist(nents, max, vary)`.
fn sg_sizes(nents: usize, max: usize, vary: usize) -> Vec<usize> {
    let mut size = max;
    (0..nents)
        .map(|_| {
            let this = size;
            if vary != 0 {
                size = next_len(size, vary, max);
            }
            this
        })
        .collect()
}

fn queued_case(case: &str, out: bool, p: Params) -> CaseReport {
    let pair = open();
    let mp = pair.max_packet();
    short_not_ok(&pair);
    let mut report = CaseReport::new(case, p.describe());
    let sizes = sg_sizes(p.sglen as usize, p.length as usize, p.vary as usize);
    let sizes: Vec<usize> = if out {
        sizes
    } else {
        sizes.iter().map(|&n| round_up(n, mp)).collect()
    };
    let max = *sizes.iter().max().expect("sglen > 0");
    let block = pattern1(max, mp);
    let mut transfers = 0usize;
    let mut bytes = 0usize;
    for i in 0..p.iterations {
        let sents: Vec<_> = sizes
            .iter()
            .map(|&n| {
                if out {
                    pair.out
                        .write(write_request(&block[..n]), &SendOptions::new())
                        .expect("send a write")
                } else {
                    pair.inp
                        .read(Request::with_capacity(n), n, &SendOptions::new())
                        .expect("send a read")
                }
            })
            .collect();
        for (j, (sent, &n)) in sents.into_iter().zip(&sizes).enumerate() {
            let c = sent.wait(SIMPLE_TIMEOUT);
            assert_eq!(
                (c.status(), c.bytes()),
                (Status::Success, n),
                "case {case} iteration {i} entry {j}"
            );
            if !out {
                check_pattern1(c.data(), mp)
                    .unwrap_or_else(|e| panic!("case {case} iteration {i} entry {j}: {e}"));
            }
            transfers += 1;
            bytes += n;
        }
    }
    report.note(format!("{transfers} transfers, {bytes} bytes"));
    report
}

/// Queued iterations: testusb's default (1000 × `sglen` transfers; ≈ 5–9 s per case at
/// 512 B under TCG).
const QUEUE_ITERATIONS: u32 = Params::DEFAULT.iterations;

#[test]
fn usbtest_case05_bulk_out_queued() {
    queued_case(
        "05",
        true,
        Params {
            iterations: QUEUE_ITERATIONS,
            vary: 0,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case06_bulk_in_queued() {
    queued_case(
        "06",
        false,
        Params {
            iterations: QUEUE_ITERATIONS,
            vary: 0,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case07_bulk_out_queued_varying() {
    // hcd-tests.sh's three shapes; sizes that are not whole packets end on a short packet.
    for (length, vary) in [(512, 579), (4096, 41), (64, 63)] {
        queued_case(
            "07",
            true,
            Params {
                iterations: QUEUE_ITERATIONS,
                length,
                vary,
                ..Params::DEFAULT
            },
        );
    }
}

#[test]
fn usbtest_case08_bulk_in_queued_varying() {
    let mut report = queued_case(
        "08",
        false,
        Params {
            iterations: QUEUE_ITERATIONS,
            length: 4096,
            vary: 512,
            ..Params::DEFAULT
        },
    );
    report.note("IN sizes are whole packets (a vary that is not would be a babble)");
}

// ---------------------------------------------------------------------------------------
// 9: chapter 9 checks.

fn std_in(request: u8, recipient: Recipient, value: u16, index: u16, len: u16) -> SetupPacket {
    SetupPacket::new(
        ControlDirection::In,
        RequestKind::Standard,
        recipient,
        request,
        value,
        index,
        len,
    )
}

const DT_DEVICE: u8 = 1;
const DT_CONFIG: u8 = 2;
const DT_STRING: u8 = 3;
const DT_INTERFACE: u8 = 4;
const DT_ENDPOINT: u8 = 5;
const DT_DEVICE_QUALIFIER: u8 = 6;
const DT_OTHER_SPEED_CONFIG: u8 = 7;
const DT_BOS: u8 = 15;

/// usbtest's `is_good_config`: type, bLength 9, bmAttributes bit 7 set and bits 0–4 clear,
/// wTotalLength equal to what arrived (or larger than the buffer).
fn check_config(buf: &[u8], requested: usize, ty: u8) -> Result<(), String> {
    if buf.len() < 9 {
        return Err(format!("config descriptor of {} bytes", buf.len()));
    }
    if buf[1] != ty {
        return Err(format!("bDescriptorType {:#04x}, want {ty:#04x}", buf[1]));
    }
    if buf[0] != 9 {
        return Err(format!("bLength {}", buf[0]));
    }
    if buf[7] & 0x80 == 0 || buf[7] & 0x1f != 0 {
        return Err(format!("bmAttributes {:#04x}: reserved bits wrong", buf[7]));
    }
    let total = usize::from(u16::from_le_bytes([buf[2], buf[3]]));
    if total == buf.len() || total >= requested {
        Ok(())
    } else {
        Err(format!(
            "wTotalLength {total}, but {} bytes arrived",
            buf.len()
        ))
    }
}

#[test]
fn usbtest_case09_chapter9() {
    let pair = open();
    // testusb's default 1000 iterations (≈ 6 ms each under TCG, SET_INTERFACE included).
    let p = Params::DEFAULT;
    let mut report = CaseReport::new("09", format!("iterations={}", p.iterations));
    let cp = pair.device.control_pipe();
    let dd = pair.device.device_descriptor().clone();
    let config_value = pair
        .device
        .active_configuration()
        .expect("active configuration")
        .value;
    let iface = pair.interface.number();
    let alts: Vec<u8> = pair
        .interface
        .settings()
        .iter()
        .map(|s| s.alternate_setting)
        .collect();
    let BulkPair {
        device,
        interface,
        out,
        inp,
    } = pair;
    // SET_INTERFACE needs the interface's pipes closed.
    drop((out, inp));
    let mut bos_checked = false;
    let mut qualifier_checked = false;
    for i in 0..p.iterations {
        for &alt in &alts {
            interface.select_setting(alt).expect("SET_INTERFACE");
            let got = cp
                .read(
                    std_in(
                        standard::GET_INTERFACE,
                        Recipient::Interface,
                        0,
                        iface.into(),
                        1,
                    ),
                    T,
                )
                .expect("GET_INTERFACE");
            assert_eq!(
                got,
                [alt],
                "iteration {i}: GET_INTERFACE after SET_INTERFACE"
            );
        }
        let got = cp
            .read(
                std_in(standard::GET_CONFIGURATION, Recipient::Device, 0, 0, 1),
                T,
            )
            .expect("GET_CONFIGURATION");
        assert_eq!(got, [config_value], "GET_CONFIGURATION");
        let got = cp
            .read(SetupPacket::get_descriptor(DT_DEVICE, 0, 0, 18), T)
            .expect("GET_DESCRIPTOR(device)");
        assert_eq!(got.len(), 18, "device descriptor length");
        assert_eq!((got[0], got[1]), (18, DT_DEVICE));
        if dd.usb_version >= 0x0210 {
            let head = cp
                .read(SetupPacket::get_descriptor(DT_BOS, 0, 0, 5), T)
                .expect("GET_DESCRIPTOR(BOS) header");
            assert_eq!((head.len(), head[0], head[1]), (5, 5, DT_BOS), "BOS header");
            let total = u16::from_le_bytes([head[2], head[3]]);
            let bos = cp
                .read(SetupPacket::get_descriptor(DT_BOS, 0, 0, total), T)
                .expect("GET_DESCRIPTOR(BOS)");
            assert_eq!(bos.len(), usize::from(total), "BOS wTotalLength");
            // Each capability: known lengths for USB 2.0 extension (7), SuperSpeed (10),
            // container ID (20).
            let mut at = 5;
            let mut caps = 0;
            while at < bos.len() {
                let (len, ty, cap) = (bos[at] as usize, bos[at + 1], bos[at + 2]);
                assert_eq!(ty, 0x10, "device capability descriptor type at {at}");
                match cap {
                    0x02 => assert_eq!(len, 7, "USB 2.0 extension length"),
                    0x03 => assert_eq!(len, 10, "SuperSpeed capability length"),
                    0x04 => assert_eq!(len, 20, "container ID length"),
                    _ => {}
                }
                assert!(len >= 3, "capability of {len} bytes");
                at += len;
                caps += 1;
            }
            assert_eq!(at, bos.len());
            assert_eq!(caps, usize::from(head[4]), "bNumDeviceCaps");
            bos_checked = true;
        }
        for index in 0..dd.num_configurations {
            let buf = cp
                .read(SetupPacket::get_descriptor(DT_CONFIG, index, 0, 256), T)
                .expect("GET_DESCRIPTOR(config)");
            check_config(&buf, 256, DT_CONFIG)
                .unwrap_or_else(|e| panic!("configuration {index}: {e}"));
        }
        if dd.usb_version == 0x0200 || dd.usb_version >= 0x0200 && pair_is_high_speed(&device) {
            let q = cp
                .read(
                    SetupPacket::get_descriptor(DT_DEVICE_QUALIFIER, 0, 0, 10),
                    T,
                )
                .expect("GET_DESCRIPTOR(device qualifier)");
            assert_eq!((q.len(), q[0], q[1]), (10, 10, DT_DEVICE_QUALIFIER));
            for index in 0..q[8] {
                let buf = cp
                    .read(
                        SetupPacket::get_descriptor(DT_OTHER_SPEED_CONFIG, index, 0, 256),
                        T,
                    )
                    .expect("GET_DESCRIPTOR(other speed config)");
                check_config(&buf, 256, DT_OTHER_SPEED_CONFIG)
                    .unwrap_or_else(|e| panic!("other-speed configuration {index}: {e}"));
            }
            qualifier_checked = true;
        }
        let status = cp
            .read(SetupPacket::get_status(Recipient::Device, 0), T)
            .expect("GET_STATUS(device)");
        assert_eq!(status.len(), 2);
        assert_eq!(
            u16::from_le_bytes([status[0], status[1]]) & !0x3,
            0,
            "device status {status:?}"
        );
        let status = cp
            .read(
                SetupPacket::get_status(Recipient::Interface, iface.into()),
                T,
            )
            .expect("GET_STATUS(interface)");
        assert_eq!(status, [0, 0], "interface status");
    }
    report.note(format!(
        "bcdUSB {:#06x}, alts {alts:?}, BOS checked {bos_checked}, qualifier/other-speed \
         checked {qualifier_checked}",
        dd.usb_version
    ));
}

fn pair_is_high_speed(device: &usbdf::Device) -> bool {
    device.speed() == Some(usbdf::Speed::High)
}

// ---------------------------------------------------------------------------------------
// 10: control queue.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Success with every byte.
    Full,
    /// Must stall.
    Stall,
    /// Success, or a stall.
    MayStall,
    /// Must be a short read (usbtest: -EREMOTEIO with URB_SHORT_NOT_OK).
    Short,
    /// A short read, a full one, or a stall (subcase 12, string 0).
    ShortOrFullOrStall,
}

/// usbtest's 16 control-queue subcases for this device.
fn subcase(
    n: usize,
    dd: &usbdf::descriptor::DeviceDescriptor,
    high_speed: bool,
) -> (SetupPacket, Expect) {
    let get = |ty: u8, len: u16| SetupPacket::get_descriptor(ty, 0, 0, len);
    let mp0 = u16::from(dd.max_packet_size_0);
    match n {
        0 => (get(DT_DEVICE, 18), Expect::Full),
        1 => (get(DT_CONFIG, 9), Expect::Full),
        2 => (
            std_in(standard::GET_INTERFACE, Recipient::Interface, 0, 0, 1),
            Expect::MayStall,
        ),
        3 => (
            SetupPacket::get_status(Recipient::Interface, 0),
            Expect::Full,
        ),
        4 => (SetupPacket::get_status(Recipient::Device, 0), Expect::Full),
        5 => (
            get(DT_DEVICE_QUALIFIER, 10),
            if high_speed {
                Expect::Full
            } else {
                Expect::MayStall
            },
        ),
        6 => (get(DT_CONFIG, 9 + 9), Expect::Full),
        7 => (get(DT_INTERFACE, 9), Expect::Stall),
        8 => (
            SetupPacket::clear_feature(Recipient::Endpoint, standard::FEATURE_ENDPOINT_HALT, 0),
            Expect::MayStall,
        ),
        9 => (
            SetupPacket::get_status(Recipient::Endpoint, 0),
            Expect::Full,
        ),
        10 => (get(DT_CONFIG, 1024), Expect::Short),
        11 => (get(DT_ENDPOINT, 9), Expect::Stall),
        12 => (
            SetupPacket::get_descriptor(DT_STRING, 0, 0, 9),
            Expect::ShortOrFullOrStall,
        ),
        13 => (get(DT_CONFIG, 1024 - mp0), Expect::Short),
        14 => {
            let len = match mp0 {
                8 => 24,
                16 => 32,
                n => n,
            };
            (get(DT_DEVICE, len), Expect::Short)
        }
        15 => {
            if dd.usb_version < 0x0201 {
                (get(DT_BOS, 5), Expect::Stall)
            } else {
                // usbtest asks for the BOS' wTotalLength (known from enumeration).
                (get(DT_BOS, 0), Expect::Full)
            }
        }
        _ => unreachable!(),
    }
}

#[test]
fn usbtest_case10_control_queue() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let p = Params::DEFAULT;
    let mut report = CaseReport::new(
        "10",
        format!("iterations={} sglen={}", p.iterations, p.sglen),
    );
    let dd = device.device_descriptor().clone();
    let high_speed = pair_is_high_speed(&device);
    let bos_len = if dd.usb_version >= 0x0201 {
        let head = cp
            .read(SetupPacket::get_descriptor(DT_BOS, 0, 0, 5), T)
            .expect("BOS header");
        u16::from_le_bytes([head[2], head[3]])
    } else {
        5
    };
    let done: Arc<Mutex<Vec<(u64, Status, usize)>>> = Arc::default();
    let cv = Arc::new(Condvar::new());
    let routine: CompletionRoutine = {
        let done = done.clone();
        let cv = cv.clone();
        Arc::new(move |c: Completion| {
            done.lock()
                .unwrap()
                .push((c.request().tag(), c.status(), c.bytes()));
            cv.notify_all();
        })
    };
    let mut outcomes = [[0usize; 3]; 16]; // full, short, stall
                                          // Even iterations: `ControlPipe::send` futures; odd ones: `send_with` routines.
    let by_future = |it: u32| it % 2 == 0;
    let mut futures: Vec<Option<usbdf::ControlSent>> = Vec::new();
    for it in 0..p.iterations {
        done.lock().unwrap().clear();
        let mut expected = Vec::new();
        for i in 0..p.sglen as usize {
            let n = i % 16;
            let (mut setup, expect) = subcase(n, &dd, high_speed);
            if n == 15 && setup.length == 0 {
                setup.length = bos_len;
            }
            let mut request = Request::with_capacity(usize::from(setup.length).max(1));
            request.set_tag(i as u64);
            if by_future(it) {
                futures.push(Some(
                    cp.send(request, setup, &SendOptions::new())
                        .unwrap_or_else(|e| panic!("iteration {it}: send subcase {n}: {e}")),
                ));
            } else {
                cp.send_with(request, setup, &SendOptions::new(), &routine)
                    .unwrap_or_else(|e| panic!("iteration {it}: send subcase {n}: {e}"));
            }
            expected.push((n, setup, expect));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        if by_future(it) {
            // Poll the pending futures from the last to the first, again and again. A future
            // found not ready after a later one was seen ready completed after it: that is a
            // reordering (readiness never goes back). Polling in submission order instead
            // would invent reorderings when several finish during one sweep.
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            let mut order = Vec::new();
            let mut latest_ready: Option<usize> = None;
            while order.len() < futures.len() {
                assert!(
                    Instant::now() < deadline,
                    "iteration {it}: {} of {} control futures ready",
                    order.len(),
                    futures.len()
                );
                for (i, slot) in futures.iter_mut().enumerate().rev() {
                    let Some(sent) = slot else { continue };
                    match std::pin::Pin::new(sent).poll(&mut cx) {
                        std::task::Poll::Ready(c) => {
                            order.push((c.request().tag(), c.status(), c.bytes()));
                            latest_ready = latest_ready.max(Some(i));
                            *slot = None;
                        }
                        std::task::Poll::Pending => {
                            if let Some(j) = latest_ready.filter(|&j| j > i) {
                                panic!(
                                    "iteration {it}: control request {j} completed before \
                                     request {i} (FIFO order broken)"
                                );
                            }
                        }
                    }
                }
                std::thread::yield_now();
            }
            // No reordering seen: the order is submission order.
            order.sort_by_key(|c| c.0);
            futures.clear();
            *done.lock().unwrap() = order;
        }
        let mut g = done.lock().unwrap();
        while g.len() < expected.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "iteration {it}: {} of {} control requests completed",
                g.len(),
                expected.len()
            );
            g = cv.wait_timeout(g, left).unwrap().0;
        }
        for (k, &(tag, status, bytes)) in g.iter().enumerate() {
            assert_eq!(
                tag,
                k as u64,
                "iteration {it}: completions out of order: {:?}",
                g.iter().map(|c| c.0).collect::<Vec<_>>()
            );
            let (n, setup, expect) = expected[k];
            let len = usize::from(setup.length);
            let ok = match (expect, status) {
                (Expect::Full, Status::Success) => bytes == len,
                (Expect::Stall, Status::Stall) => true,
                (Expect::MayStall, Status::Stall) => true,
                (Expect::MayStall, Status::Success) => bytes == len,
                (Expect::Short, Status::Success) => bytes < len,
                (Expect::ShortOrFullOrStall, Status::Success | Status::Stall) => true,
                _ => false,
            };
            assert!(ok, "iteration {it}: subcase {n} ({setup:?}) expected {expect:?}, got {status:?} with {bytes} bytes");
            let col = match status {
                Status::Success if bytes == len => 0,
                Status::Success => 1,
                _ => 2,
            };
            outcomes[n][col] += 1;
        }
    }
    let summary: Vec<String> = outcomes
        .iter()
        .enumerate()
        .map(|(n, o)| {
            let what = if o[2] > 0 && o[0] + o[1] == 0 {
                "stall"
            } else if o[1] > 0 && o[0] + o[2] == 0 {
                "short"
            } else if o[0] > 0 && o[1] + o[2] == 0 {
                "full"
            } else {
                "mixed"
            };
            format!("{n}:{what}")
        })
        .collect();
    report.note(format!(
        "half the iterations through send futures, half through routines; subcases {}",
        summary.join(",")
    ));
}

// ---------------------------------------------------------------------------------------
// 11/12: cancel a self-resubmitting transfer after 0–1 ms.

struct Unlink {
    handle: Option<CancelHandle>,
    generation: u64,
    /// How the cancelled request ended (status, bytes).
    end: Option<(Status, usize)>,
    completions: u64,
    error: Option<String>,
}

fn unlink_case(case: &str, out: bool, iterations: u32) {
    let pair = Arc::new(open());
    let mp = pair.max_packet();
    let len = 512usize;
    let mut report = CaseReport::new(case, format!("iterations={iterations} length={len}"));
    let mut rng = Rng::from_env(&format!("usbtest_case{case}"));
    let block = Arc::new(pattern1(len, mp));
    let (mut cancelled, mut completed, mut retries, mut total) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    for it in 0..iterations {
        let state = Arc::new((
            Mutex::new(Unlink {
                handle: None,
                generation: 0,
                end: None,
                completions: 0,
                error: None,
            }),
            Condvar::new(),
        ));
        // The routine resubmits on success, like usbtest's unlink1_callback.
        let routine: Arc<Mutex<Option<CompletionRoutine>>> = Arc::default();
        let submit = {
            let pair = pair.clone();
            let block = block.clone();
            move |routine: &CompletionRoutine| -> Result<CancelHandle, String> {
                if out {
                    pair.out
                        .write_with(write_request(&block), &SendOptions::new(), routine)
                        .map_err(|e| e.to_string())
                } else {
                    pair.inp
                        .read_with(
                            Request::with_capacity(len),
                            len,
                            &SendOptions::new(),
                            routine,
                        )
                        .map_err(|e| e.to_string())
                }
            }
        };
        let submit = Arc::new(submit);
        let r: CompletionRoutine = {
            let state = state.clone();
            let routine = routine.clone();
            let submit = submit.clone();
            Arc::new(move |c: Completion| {
                let (m, cv) = &*state;
                let mut g = m.lock().unwrap();
                g.completions += 1;
                match c.status() {
                    Status::Success if c.bytes() == len => {
                        if !out {
                            if let Err(e) = check_pattern1(c.data(), mp) {
                                g.error = Some(e);
                                cv.notify_all();
                                return;
                            }
                        }
                        let me = routine.lock().unwrap().clone().expect("routine set");
                        match submit(&me) {
                            Ok(h) => {
                                g.handle = Some(h);
                                g.generation += 1;
                            }
                            Err(e) => g.error = Some(format!("resubmit: {e}")),
                        }
                    }
                    Status::Cancelled => g.end = Some((c.status(), c.bytes())),
                    s => g.error = Some(format!("completion {s:?} with {} bytes", c.bytes())),
                }
                cv.notify_all();
            })
        };
        *routine.lock().unwrap() = Some(r.clone());
        let first = submit(&r).expect("first submit");
        {
            let mut g = state.0.lock().unwrap();
            if g.handle.is_none() {
                g.handle = Some(first);
            }
        }
        gadget::jitter(rng.delay(Duration::from_millis(1)));
        // Cancel whatever request is current; retry when it was caught completing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (m, cv) = &*state;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(e) = &g.error {
                panic!("case {case} iteration {it}: {e}");
            }
            if g.end.is_some() {
                break;
            }
            let handle = g.handle.clone().expect("a handle");
            let generation = g.generation;
            drop(g);
            let outcome = handle.cancel();
            g = m.lock().unwrap();
            if outcome == CancelOutcome::NotPending {
                retries += 1;
            }
            // Wait for the end or a newer request (the cancel lost the race).
            while g.end.is_none() && g.error.is_none() && g.generation == generation {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "case {case} iteration {it}: cancel did not end the request"
                );
                g = cv.wait_timeout(g, left).unwrap().0;
            }
        }
        let (status, bytes) = g.end.expect("ended");
        total += g.completions;
        if bytes == 0 {
            cancelled += 1;
        } else {
            // Cancelled after the data moved: a "normal completion" caught late.
            completed += 1;
        }
        assert_eq!(status, Status::Cancelled);
        drop(g);
        *routine.lock().unwrap() = None;
    }
    let idle = if out {
        pair.out.in_flight()
    } else {
        pair.inp.in_flight()
    };
    assert!(idle <= 1);
    if out {
        gadget::wait_idle(&pair.out);
    } else {
        gadget::wait_idle(&pair.inp);
    }
    report.note(format!(
        "{total} completions, cancelled with 0 bytes {cancelled}, cancelled after data \
         {completed}, retries (caught mid-completion) {retries}, {:.2} ms per iteration",
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(iterations)
    ));
}

/// testusb's default count (issue 6: at least 1000); each iteration takes ≈ 3–35 ms under TCG.
const UNLINK_ITERATIONS: u32 = 1000;

#[test]
fn usbtest_case11_unlink_reads() {
    unlink_case("11", false, UNLINK_ITERATIONS);
}

#[test]
fn usbtest_case12_unlink_writes() {
    unlink_case("12", true, UNLINK_ITERATIONS);
}

// ---------------------------------------------------------------------------------------
// 13: halt set/status/clear.

fn ep_status(device: &usbdf::Device, address: u8) -> u16 {
    let s = device
        .control_pipe()
        .read(
            SetupPacket::get_status(Recipient::Endpoint, address.into()),
            T,
        )
        .expect("GET_STATUS(endpoint)");
    u16::from_le_bytes([s[0], s[1]])
}

fn set_halt(device: &usbdf::Device, address: u8) {
    device
        .control_pipe()
        .write(
            SetupPacket::set_feature(
                Recipient::Endpoint,
                standard::FEATURE_ENDPOINT_HALT,
                address.into(),
            ),
            &[],
            T,
        )
        .expect("SET_FEATURE(ENDPOINT_HALT)");
}

#[test]
fn usbtest_case13_halt_set_status_clear() {
    let pair = open();
    let mp = pair.max_packet();
    let iterations = Params::DEFAULT.iterations;
    let mut report = CaseReport::new("13", format!("iterations={iterations} length=512"));
    let block = pattern1(512, mp);
    let mut second_refused = 0;
    for it in 0..iterations {
        // IN.
        let a = pair.inp.info().address;
        assert_eq!(ep_status(&pair.device, a), 0, "{it}: IN not halted");
        simple_in(&pair, 512, "IN before halt");
        set_halt(&pair.device, a);
        assert_eq!(ep_status(&pair.device, a), 1, "{it}: IN halted");
        let s1 = pair
            .inp
            .read(Request::with_capacity(512), 512, &SendOptions::new());
        let s2 = pair
            .inp
            .read(Request::with_capacity(512), 512, &SendOptions::new());
        let c = s1.expect("first read on a halted endpoint").wait(T);
        assert_eq!(
            c.status(),
            Status::Stall,
            "{it}: first IN on a halted endpoint"
        );
        match s2 {
            Ok(s) => assert_eq!(s.wait(T).status(), Status::Stall, "{it}: second IN"),
            Err(e) => {
                assert_eq!(e.kind(), SendErrorKind::Halted(Status::Stall));
                second_refused += 1;
            }
        }
        pair.inp.reset().expect("clear halt (IN)");
        assert_eq!(ep_status(&pair.device, a), 0, "{it}: IN cleared");
        simple_in(&pair, 512, "IN after clear halt");

        // OUT.
        let a = pair.out.info().address;
        assert_eq!(ep_status(&pair.device, a), 0, "{it}: OUT not halted");
        simple_out(&pair, &block, "OUT before halt");
        set_halt(&pair.device, a);
        assert_eq!(ep_status(&pair.device, a), 1, "{it}: OUT halted");
        let s1 = pair.out.write(write_request(&block), &SendOptions::new());
        let s2 = pair.out.write(write_request(&block), &SendOptions::new());
        let c = s1.expect("first write on a halted endpoint").wait(T);
        assert_eq!(
            c.status(),
            Status::Stall,
            "{it}: first OUT on a halted endpoint"
        );
        match s2 {
            Ok(s) => assert_eq!(s.wait(T).status(), Status::Stall, "{it}: second OUT"),
            Err(e) => {
                assert_eq!(e.kind(), SendErrorKind::Halted(Status::Stall));
                second_refused += 1;
            }
        }
        pair.out.reset().expect("clear halt (OUT)");
        assert_eq!(ep_status(&pair.device, a), 0, "{it}: OUT cleared");
        simple_out(&pair, &block, "OUT after clear halt");
    }
    report.note(format!(
        "second transfer: stalled by the device {}, refused by usbdf as Halted(Stall) {second_refused}",
        2 * iterations - second_refused
    ));
}

// ---------------------------------------------------------------------------------------
// 14 / 21: vendor control write and read-back.

fn ctrl_out_case(case: &str, odd: bool, p: Params) {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let _report = CaseReport::new(case, p.describe());
    let vendor = |dir, request, len| {
        SetupPacket::new(
            dir,
            RequestKind::Vendor,
            Recipient::Device,
            request,
            0,
            0,
            len,
        )
    };
    let max = p.length as usize;
    // realworld: lengths start at 1 and wrap to 1.
    let mut len = 1usize;
    let mut storage = vec![0u8; max + 1];
    for i in 0..p.iterations {
        // 21: the data starts at an odd address.
        let buf = if odd {
            &mut storage[1..=len]
        } else {
            &mut storage[..len]
        };
        for (j, b) in buf.iter_mut().enumerate() {
            *b = (i as usize + j) as u8;
        }
        if odd {
            assert_eq!(buf.as_ptr() as usize % 2, 1, "an odd address");
        }
        let n = cp
            .write(vendor(ControlDirection::Out, 0x5b, len as u16), buf, T)
            .unwrap_or_else(|e| panic!("iteration {i}: 0x5b of {len}: {e}"));
        assert_eq!(n, len);
        let back = cp
            .read(vendor(ControlDirection::In, 0x5c, len as u16), T)
            .unwrap_or_else(|e| panic!("iteration {i}: 0x5c of {len}: {e}"));
        assert_bytes_eq(
            &back,
            buf,
            &format!("iteration {i}: read-back of {len} bytes"),
        );
        len += p.vary as usize;
        if len > max {
            len = 1;
        }
    }
}

/// hcd-tests' `-c 15000` (≈ 1.4–1.6 ms per write/read-back pair under TCG: ≈ 21–24 s).
const CTRL_OUT_ITERATIONS: u32 = 15_000;

#[test]
fn usbtest_case14_control_write_read_back() {
    ctrl_out_case(
        "14",
        false,
        Params {
            iterations: CTRL_OUT_ITERATIONS,
            length: 256,
            vary: 1,
            ..Params::DEFAULT
        },
    );
}

#[test]
fn usbtest_case21_control_odd_address_buffer() {
    ctrl_out_case(
        "21",
        true,
        Params {
            iterations: CTRL_OUT_ITERATIONS,
            length: 256,
            vary: 1,
            ..Params::DEFAULT
        },
    );
}

// ---------------------------------------------------------------------------------------
// 17–20: odd-address buffers. usbdf owns its buffers (usbfs copies them or maps them), so
// the equivalent is the driver's data at an odd address: OUT data copied in from an odd
// offset, IN data copied out to one; 19/20 do the same through zero-copy (mmap) memory.

fn odd_case(case: &str, out: bool, zero_copy: bool) {
    let pair = open();
    let mp = pair.max_packet();
    short_not_ok(&pair);
    let p = Params {
        vary: 0,
        ..Params::DEFAULT
    };
    let _report = CaseReport::new(
        case,
        format!(
            "{}; data at an odd address, {}",
            p.describe(),
            if zero_copy {
                "zero-copy memory"
            } else {
                "copied memory"
            }
        ),
    );
    let len = p.length as usize;
    let mut storage = vec![0xa5u8; len + 1];
    if out {
        storage[1..].copy_from_slice(&pattern1(len, mp));
    }
    let odd = &mut storage[1..];
    assert_eq!(odd.as_ptr() as usize % 2, 1);
    for i in 0..p.iterations {
        if out {
            let memory = if zero_copy {
                let mut m = pair.out.allocate(len);
                m.set(odd).expect("fits");
                m
            } else {
                Memory::from_slice(odd)
            };
            let c = pair
                .out
                .write_sync(Request::new(memory), SIMPLE_TIMEOUT)
                .expect("send");
            assert_eq!(
                (c.status(), c.bytes()),
                (Status::Success, len),
                "iteration {i}"
            );
        } else {
            let memory = if zero_copy {
                pair.inp.allocate(len)
            } else {
                Memory::new(len)
            };
            let c = pair
                .inp
                .read_sync(Request::new(memory), len, SIMPLE_TIMEOUT)
                .expect("send");
            assert_eq!(
                (c.status(), c.bytes()),
                (Status::Success, len),
                "iteration {i}"
            );
            odd.fill(0xa5);
            odd.copy_from_slice(c.data());
            check_pattern1(odd, mp).unwrap_or_else(|e| panic!("iteration {i}: {e}"));
        }
    }
}

#[test]
fn usbtest_case17_bulk_out_odd_address() {
    odd_case("17", true, false);
}

#[test]
fn usbtest_case18_bulk_in_odd_address() {
    odd_case("18", false, false);
}

#[test]
fn usbtest_case19_bulk_out_odd_address_zero_copy() {
    odd_case("19", true, true);
}

#[test]
fn usbtest_case20_bulk_in_odd_address_zero_copy() {
    odd_case("20", false, true);
}

// ---------------------------------------------------------------------------------------
// 24: cancel from the middle of a live OUT queue.

fn unlink_queued(sglen: usize, len: usize, iterations: u32) {
    let pair = open();
    let mp = pair.max_packet();
    let mut report = CaseReport::new(
        "24",
        format!("iterations={iterations} length={len} sglen={sglen}"),
    );
    let block = pattern1(len, mp);
    let (mut victims_cancelled, mut victims_completed) = (0, 0);
    let (mut requested, mut not_pending, mut cancelled_full) = (0, 0, 0);
    for it in 0..iterations {
        let sents: Vec<_> = (0..sglen)
            .map(|_| {
                pair.out
                    .write(write_request(&block), &SendOptions::new())
                    .expect("send a write")
            })
            .collect();
        let victims = [sglen - 4, sglen - 2];
        for &v in &victims {
            match sents[v].cancel() {
                CancelOutcome::Requested => requested += 1,
                _ => not_pending += 1,
            }
        }
        for (k, sent) in sents.into_iter().enumerate() {
            let c = sent.wait(SIMPLE_TIMEOUT);
            if victims.contains(&k) {
                match (c.status(), c.bytes()) {
                    (Status::Cancelled, n) if n < len => victims_cancelled += 1,
                    (Status::Cancelled, n) if n == len => cancelled_full += 1,
                    (Status::Success, n) if n == len => victims_completed += 1,
                    (s, n) => panic!("iteration {it}: victim {k} ended {s:?} with {n} bytes"),
                }
            } else {
                assert_eq!(
                    (c.status(), c.bytes()),
                    (Status::Success, len),
                    "iteration {it}: request {k} (not a victim)"
                );
            }
        }
    }
    // The sink accepted everything (it halts on a wrong byte).
    assert_eq!(ep_status(&pair.device, pair.out.info().address), 0);
    report.note(format!(
        "cancel requested {requested}, not pending {not_pending}; victims cancelled part-way \
         {victims_cancelled}, Cancelled with every byte {cancelled_full}, Success \
         {victims_completed}"
    ));
}

#[test]
fn usbtest_case24_unlink_from_a_live_out_queue() {
    let n = Params::DEFAULT.iterations;
    unlink_queued(8, 512, n);
    unlink_queued(32, 512, n);
    // 512-byte writes are mostly done before the cancels arrive; 64 KiB ones are caught.
    unlink_queued(8, 65536, n);
}

// ---------------------------------------------------------------------------------------
// 27/28: queued throughput.

fn throughput(case: &str, out: bool, p: Params) {
    let pair = open();
    let mp = pair.max_packet();
    let mut report = CaseReport::new(
        case,
        format!(
            "{}; pattern 1 (the gadget's), zero-copy memory, no ZLPs",
            p.describe()
        ),
    );
    let len = p.length as usize;
    let depth = p.sglen as usize;
    let total = p.iterations as usize * depth;
    let block = pattern1(len, mp);
    // usbtest's queue sends no ZLPs (no URB_ZERO_PACKET): neither does this one.
    pair.out.set_policy(PipePolicy {
        zlp: usbdf::Zlp::Never,
        ..PipePolicy::default()
    });
    let start = Instant::now();
    let mut queue = VecDeque::with_capacity(depth);
    let mut sent = 0;
    let mut done = 0;
    let mut memory: Vec<Memory> = Vec::new();
    while done < total {
        while sent < total && queue.len() < depth {
            let m = memory.pop().unwrap_or_else(|| {
                if out {
                    let mut m = pair.out.allocate(len);
                    m.set(&block).expect("fits");
                    m
                } else {
                    pair.inp.allocate(len)
                }
            });
            let s = if out {
                pair.out.write(Request::new(m), &SendOptions::new())
            } else {
                pair.inp.read(Request::new(m), len, &SendOptions::new())
            }
            .expect("send");
            queue.push_back(s);
            sent += 1;
        }
        let c = queue.pop_front().expect("in flight").wait(SIMPLE_TIMEOUT);
        assert_eq!(
            (c.status(), c.bytes()),
            (Status::Success, len),
            "transfer {done}"
        );
        if !out && done % 64 == 0 {
            check_pattern1(c.data(), mp).expect("pattern");
        }
        memory.push(c.into_request().into_memory());
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let (out_addr, in_addr) = (pair.out.info().address, pair.inp.info().address);
    drop(memory);
    drop(pair);
    // The same queue on raw nusb in the same boot, for scale (the host is TCG and busy:
    // compare only within a run).
    let raw = raw_nusb_rate(if out { out_addr } else { in_addr }, len, depth, total);
    report.note(format!(
        "usbdf {:.1} MB/s, raw nusb {raw:.1} MB/s",
        (total * len) as f64 / secs / 1e6
    ));
}

/// Throughput of `total` transfers of `len` bytes, `depth` in flight, on raw nusb (zero-copy
/// buffers), in MB/s.
fn raw_nusb_rate(address: u8, len: usize, depth: usize, total: usize) -> f64 {
    use nusb::transfer::{Bulk, In, Out};
    use nusb::MaybeFuture;
    let info = vm::find_gadget(&SOURCE_SINK)
        .expect("list")
        .expect("SourceSink enumerated");
    let device = info.open().wait().expect("open (nusb)");
    let iface = device.claim_interface(0).wait().expect("claim (nusb)");
    let wait = Duration::from_secs(10);
    let start;
    if address & 0x80 == 0 {
        let mut ep = iface.endpoint::<Bulk, Out>(address).expect("OUT endpoint");
        let block = pattern1(len, ep.max_packet_size());
        for _ in 0..depth {
            let mut b = ep.allocate(len);
            b.extend_from_slice(&block);
            ep.submit(b);
        }
        start = Instant::now();
        let mut submitted = depth;
        for _ in 0..total {
            let c = ep.wait_next_complete(wait).expect("nusb OUT completion");
            c.status.expect("nusb OUT status");
            if submitted < total {
                ep.submit(c.buffer);
                submitted += 1;
            }
        }
    } else {
        let mut ep = iface.endpoint::<Bulk, In>(address).expect("IN endpoint");
        for _ in 0..depth {
            let b = ep.allocate(len);
            ep.submit(b);
        }
        start = Instant::now();
        let mut submitted = depth;
        for _ in 0..total {
            let c = ep.wait_next_complete(wait).expect("nusb IN completion");
            c.status.expect("nusb IN status");
            if submitted < total {
                let mut b = c.buffer;
                b.clear();
                ep.submit(b);
                submitted += 1;
            }
        }
    }
    (total * len) as f64 / start.elapsed().as_secs_f64() / 1e6
}

const THROUGHPUT: Params = Params {
    iterations: Params::DEFAULT.iterations,
    length: 65536,
    vary: 0,
    sglen: 8,
};

#[test]
fn usbtest_case27_bulk_out_throughput() {
    throughput("27", true, THROUGHPUT);
}

#[test]
fn usbtest_case28_bulk_in_throughput() {
    throughput("28", false, THROUGHPUT);
}

// ---------------------------------------------------------------------------------------
// 29: data toggle after clear halt.

#[test]
fn usbtest_case29_toggle_after_clear_halt() {
    let pair = open();
    let mp = pair.max_packet();
    let iterations = Params::DEFAULT.iterations;
    let mut report = CaseReport::new(
        "29",
        format!(
            "iterations={iterations} length={} (2 × maxpacket) + ZLP",
            2 * mp
        ),
    );
    let block = pattern1(2 * mp, mp);
    for it in 0..iterations {
        pair.out.reset().expect("clear halt");
        simple_out(&pair, &block, &format!("iteration {it}: first write"));
        pair.out.reset().expect("clear halt");
        simple_out(&pair, &block, &format!("iteration {it}: second write"));
    }
    // A dropped or repeated packet would shift the data against the sink's gadget requests;
    // pattern 1 repeats every packet, so the sink's acceptance (no halt) and a following
    // short write show the endpoint is still in step.
    simple_out(&pair, &block[..100], "a short write afterwards");
    assert_eq!(
        ep_status(&pair.device, pair.out.info().address),
        0,
        "the sink accepted it all"
    );
    report.note("sink accepted every write, OUT not halted");
}
