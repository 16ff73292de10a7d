//! usbdf's control pipe on real gadgets: SourceSink's vendor buffer (usbtest case 14),
//! GET_STATUS, endpoint halt and pipe reset (usbtest case 13), async control requests and
//! stalls.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use usbdf::control::{standard, ControlDirection, Recipient, RequestKind};
use usbdf::{
    Completion, CompletionRoutine, Error, Request, SendErrorKind, SendOptions, SetupPacket, Status,
    Timeout,
};

use usbdf_tests::gadget::{self, assert_bytes_eq, Rng, SsPattern, T};
use usbdf_tests::vm::{self, SOURCE_SINK};

/// SourceSink's vendor request that fills its ep0 buffer.
const VENDOR_WRITE: u8 = 0x5b;
/// SourceSink's vendor request that reads the ep0 buffer back.
const VENDOR_READ: u8 = 0x5c;

fn vendor_write(len: u16) -> SetupPacket {
    SetupPacket::new(
        ControlDirection::Out,
        RequestKind::Vendor,
        Recipient::Device,
        VENDOR_WRITE,
        0,
        0,
        len,
    )
}

fn vendor_read(len: u16) -> SetupPacket {
    SetupPacket::new(
        ControlDirection::In,
        RequestKind::Vendor,
        Recipient::Device,
        VENDOR_READ,
        0,
        0,
        len,
    )
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn endpoint_status(device: &usbdf::Device, address: u8) -> Vec<u8> {
    device
        .control_pipe()
        .read(
            SetupPacket::get_status(Recipient::Endpoint, u16::from(address)),
            T,
        )
        .expect("GET_STATUS(endpoint)")
}

#[test]
fn vendor_buffer_write_and_read_back_at_many_lengths() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let mut rng = Rng::from_env("vendor_buffer");
    // Fixed edge lengths up to the gadget's 4096-byte ep0 buffer…
    let mut lengths: Vec<u16> = vec![
        1, 2, 7, 63, 64, 65, 127, 128, 255, 256, 511, 512, 513, 1000, 1023, 1024, 2048, 4095, 4096,
    ];
    // …then hcd-tests' `-c 15000 -s 256 -v 1` (length steps by 1 up to 256), shortened.
    const ITERATIONS: usize = 300;
    let mut len = 0u16;
    for _ in 0..ITERATIONS {
        len = (len + 1) % 256;
        lengths.push(if len == 0 { 1 } else { len });
    }
    let start = Instant::now();
    let mut bytes = 0;
    for (i, &len) in lengths.iter().enumerate() {
        let data = random_bytes(&mut rng, usize::from(len));
        let n = cp
            .write(vendor_write(len), &data, T)
            .unwrap_or_else(|e| panic!("0x5b of {len} bytes (iteration {i}): {e}"));
        assert_eq!(n, usize::from(len));
        let back = cp
            .read(vendor_read(len), T)
            .unwrap_or_else(|e| panic!("0x5c of {len} bytes (iteration {i}): {e}"));
        assert_bytes_eq(&back, &data, &format!("read-back of {len} bytes"));
        bytes += usize::from(len);
    }
    eprintln!(
        "{} vendor write/read-back pairs ({ITERATIONS} from the hcd-tests sweep), {bytes} bytes, \
         in {:?}",
        lengths.len(),
        start.elapsed()
    );
}

#[test]
fn get_status_of_device_interface_and_endpoints() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let status = cp
        .read(SetupPacket::get_status(Recipient::Device, 0), T)
        .expect("GET_STATUS(device)");
    assert_eq!(status.len(), 2);
    assert_eq!(
        u16::from_le_bytes([status[0], status[1]]) & !0x3,
        0,
        "only self-powered and remote-wakeup may be set: {status:?}"
    );
    let status = cp
        .read(SetupPacket::get_status(Recipient::Interface, 0), T)
        .expect("GET_STATUS(interface)");
    assert_eq!(status, [0, 0]);
    let pair = gadget::bulk_pair_of(device);
    for address in [pair.inp.info().address, pair.out.info().address] {
        assert_eq!(
            endpoint_status(&pair.device, address),
            [0, 0],
            "{address:#04x} is not halted"
        );
    }
}

/// A control request addressed to an endpoint the configuration does not have never reaches
/// the device: usbfs refuses it at submission (ENOENT). Nobody cancelled it, so it must not
/// be reported as `Cancelled` (a status usbdf reserves for cancels the driver asked for).
#[test]
fn control_request_to_a_missing_endpoint_fails_without_claiming_a_cancel() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let start = Instant::now();
    let r = device
        .control_pipe()
        .read(SetupPacket::get_status(Recipient::Endpoint, 0x8f), T);
    eprintln!(
        "GET_STATUS(endpoint 0x8f): {r:?} after {:?}",
        start.elapsed()
    );
    match r {
        Err(Error::Transfer(status)) => assert!(
            !matches!(
                status,
                Status::Cancelled | Status::TimedOut | Status::Success
            ),
            "a request nobody cancelled ended {status:?}"
        ),
        other => panic!("expected a transfer error, got {other:?}"),
    }
    // The device is fine afterwards.
    assert!(device.is_connected());
}

/// usbtest case 13 on the IN endpoint: halt it from the host, see the stall, reset the pipe.
#[test]
fn set_halt_on_bulk_in_stalls_reads_until_the_pipe_is_reset() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let addr = pair.inp.info().address;
    let cp = pair.device.control_pipe();
    let len = gadget::bulk_buflen(&SOURCE_SINK);
    let pattern = SsPattern::new(&SOURCE_SINK, pair.max_packet(), len);

    assert_eq!(endpoint_status(&pair.device, addr), [0, 0]);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(len), len, T)
        .expect("send a read");
    assert_eq!(c.result(), Ok(len));

    cp.write(
        SetupPacket::set_feature(
            Recipient::Endpoint,
            standard::FEATURE_ENDPOINT_HALT,
            u16::from(addr),
        ),
        &[],
        T,
    )
    .expect("SET_FEATURE(ENDPOINT_HALT)");
    assert_eq!(endpoint_status(&pair.device, addr), [1, 0]);

    let c = pair
        .inp
        .read_sync(Request::with_capacity(len), len, T)
        .expect("send a read");
    assert_eq!(c.status(), Status::Stall);
    assert_eq!(pair.inp.halted(), Some(Status::Stall));
    // A halted pipe refuses sends until it is reset.
    let e = pair
        .inp
        .read(Request::with_capacity(len), len, &SendOptions::new())
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::Halted(Status::Stall));

    pair.inp.reset().expect("reset the pipe");
    assert_eq!(pair.inp.halted(), None);
    assert_eq!(endpoint_status(&pair.device, addr), [0, 0]);
    for _ in 0..4 {
        let c = pair
            .inp
            .read_sync(Request::with_capacity(len), len, T)
            .expect("send a read");
        assert_eq!(c.result(), Ok(len));
        // dummy_hcd moves whole packets and pattern 1 repeats every packet.
        pattern.check(0, c.data()).expect("pattern after reset");
    }
}

/// usbtest case 13 on the OUT endpoint.
#[test]
fn set_halt_on_bulk_out_stalls_writes_until_the_pipe_is_reset() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let addr = pair.out.info().address;
    let cp = pair.device.control_pipe();
    let len = gadget::bulk_buflen(&SOURCE_SINK);
    let block = SsPattern::new(&SOURCE_SINK, pair.max_packet(), len).block(len);
    let write = |data: &[u8]| {
        let mut request = Request::with_capacity(data.len());
        request.memory_mut().set(data).expect("fits");
        pair.out.write_sync(request, T).expect("send a write")
    };

    assert_eq!(endpoint_status(&pair.device, addr), [0, 0]);
    assert_eq!(write(&block).result(), Ok(len));

    cp.write(
        SetupPacket::set_feature(
            Recipient::Endpoint,
            standard::FEATURE_ENDPOINT_HALT,
            u16::from(addr),
        ),
        &[],
        T,
    )
    .expect("SET_FEATURE(ENDPOINT_HALT)");
    assert_eq!(endpoint_status(&pair.device, addr), [1, 0]);

    // A whole-packet write: data and its ZLP both meet the halt, one completion.
    let c = write(&block[..512]);
    assert_eq!(c.status(), Status::Stall);
    assert_eq!(pair.out.halted(), Some(Status::Stall));
    assert_eq!(pair.out.in_flight(), 0);
    let e = pair
        .out
        .write(Request::with_capacity(8), &SendOptions::new())
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::Halted(Status::Stall));

    pair.out.reset().expect("reset the pipe");
    assert_eq!(endpoint_status(&pair.device, addr), [0, 0]);
    for n in [len, 100, 512, len] {
        assert_eq!(
            write(&block[..n]).result(),
            Ok(n),
            "write of {n} after reset"
        );
    }
    assert_eq!(
        endpoint_status(&pair.device, addr),
        [0, 0],
        "the sink accepted the data after the reset"
    );
}

#[test]
fn async_control_requests_with_a_future_and_with_a_routine() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let mut rng = Rng::from_env("async_control");

    // send + future.
    let data = random_bytes(&mut rng, 300);
    let mut request = Request::with_capacity(300);
    request.memory_mut().set(&data).expect("fits");
    let sent = cp
        .send(
            request,
            vendor_write(300),
            &SendOptions::new().timeout(Duration::from_secs(5)),
        )
        .expect("send 0x5b");
    let c = block_on(sent);
    assert_eq!((c.status(), c.bytes()), (Status::Success, 300));
    let sent = cp
        .send(
            Request::with_capacity(300),
            vendor_read(300),
            &SendOptions::new(),
        )
        .expect("send 0x5c");
    let c = block_on(sent);
    assert_eq!((c.status(), c.bytes()), (Status::Success, 300));
    assert_bytes_eq(c.data(), &data, "read-back through a future");

    // send_with + routine.
    let (tx, rx) = mpsc::channel::<Completion>();
    let tx = Mutex::new(tx);
    let routine: CompletionRoutine = Arc::new(move |c| {
        let _ = tx.lock().unwrap().send(c);
    });
    let data = random_bytes(&mut rng, 1000);
    let mut request = Request::with_capacity(1000);
    request.memory_mut().set(&data).expect("fits");
    request.set_tag(1);
    cp.send_with(request, vendor_write(1000), &SendOptions::new(), &routine)
        .expect("send 0x5b");
    let c = rx.recv_timeout(Duration::from_secs(5)).expect("routine");
    assert_eq!(
        (c.request().tag(), c.status(), c.bytes()),
        (1, Status::Success, 1000)
    );
    let mut request = Request::with_capacity(1000);
    request.set_tag(2);
    let cancel = cp
        .send_with(request, vendor_read(1000), &SendOptions::new(), &routine)
        .expect("send 0x5c");
    let c = rx.recv_timeout(Duration::from_secs(5)).expect("routine");
    assert_eq!((c.request().tag(), c.status()), (2, Status::Success));
    assert_bytes_eq(c.data(), &data, "read-back through a routine");
    assert_eq!(cancel.cancel(), usbdf::CancelOutcome::NotPending);
    assert!(
        rx.recv_timeout(Duration::from_millis(20)).is_err(),
        "one completion per request"
    );

    // Several in flight at once on ep0, completed in order.
    let sents: Vec<_> = (0..8u16)
        .map(|i| {
            cp.send(
                Request::with_capacity(64),
                vendor_read(8 + i),
                &SendOptions::new(),
            )
            .expect("send 0x5c")
        })
        .collect();
    for (i, s) in sents.into_iter().enumerate() {
        let c = s.wait();
        assert_eq!(c.status(), Status::Success);
        assert_bytes_eq(c.data(), &data[..8 + i], "queued read-back");
    }
}

#[test]
fn unknown_vendor_requests_stall() {
    vm::require_vm();
    let device = gadget::open(&SOURCE_SINK);
    let cp = device.control_pipe();
    let unknown = SetupPacket::new(
        ControlDirection::In,
        RequestKind::Vendor,
        Recipient::Device,
        0x77,
        0,
        0,
        16,
    );
    let e = cp.read(unknown, T).unwrap_err();
    assert!(matches!(e, Error::Transfer(Status::Stall)), "{e:?}");
    let e = cp
        .write(
            SetupPacket {
                request: 0x78,
                ..vendor_write(0)
            },
            &[1, 2, 3],
            T,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Transfer(Status::Stall)), "{e:?}");
    // 0x5c with a non-zero wValue is refused by the gadget as well.
    let e = cp
        .read(
            SetupPacket {
                value: 1,
                ..vendor_read(16)
            },
            T,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Transfer(Status::Stall)), "{e:?}");
    // Async: the stall is the completion's status.
    let c = block_on(
        cp.send(Request::with_capacity(16), unknown, &SendOptions::new())
            .expect("send"),
    );
    assert_eq!((c.status(), c.bytes()), (Status::Stall, 0));
    // ep0 recovers by itself after a stall: the next request works.
    let n = cp
        .write(vendor_write(4), &[9, 8, 7, 6], T)
        .expect("0x5b after stalls");
    assert_eq!(n, 4);
    assert_eq!(cp.read(vendor_read(4), T).expect("0x5c"), [9, 8, 7, 6]);
    // A zero timeout is refused before anything is sent.
    assert!(matches!(
        cp.read(vendor_read(4), Timeout::millis(0)),
        Err(Error::ZeroTimeout)
    ));
}
