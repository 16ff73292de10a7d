//! The bad-input matrix on the real gadgets: one test per row, each a typed error that loses
//! nothing (the pipe echoes a fresh buffer intact afterwards). The simulator covers the same
//! rows (and malformed descriptors) in `framework/tests/sim_bad_input.rs`; the row "interface
//! held by a kernel driver" lives elsewhere.

use usbdf::control::Recipient;
use usbdf::descriptor::TransferType;
use usbdf::{
    Bulk, CancelOutcome, Error, In, Interrupt, Out, Request, SendErrorKind, SendOptions,
    SetupPacket, Status, Timeout,
};
use usbdf_tests::gadget::{self, BulkPair, T};
use usbdf_tests::vm::{self, LOOPBACK};

/// A Loopback pair with nothing stale to echo.
fn loopback() -> BulkPair {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    pair
}

/// Nothing was lost: a fresh short write comes back intact and alone.
fn assert_echo(pair: &BulkPair, what: &str) {
    let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut req = Request::with_capacity(data.len());
    req.memory_mut().set(&data).unwrap();
    let c = pair.out.write_sync(req, T).expect("send the echo write");
    assert_eq!(c.status(), Status::Success, "{what}: echo write");
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .expect("send the echo read");
    assert_eq!(c.status(), Status::Success, "{what}: echo read");
    assert_eq!(c.data(), &data[..], "{what}: echo");
}

#[test]
fn bad_input_wrong_pipe_type_or_direction() {
    let pair = loopback();
    let (out_addr, in_addr) = gadget::bulk_addresses(&pair.interface);
    let BulkPair {
        device,
        interface,
        out,
        inp,
    } = pair;
    drop((out, inp));
    let iface = &interface;
    assert!(matches!(
        iface.open_pipe::<Bulk, In>(out_addr),
        Err(Error::WrongDirection { address, .. }) if address == out_addr
    ));
    assert!(matches!(
        iface.open_pipe::<Bulk, Out>(in_addr),
        Err(Error::WrongDirection { address, .. }) if address == in_addr
    ));
    assert!(matches!(
        iface.open_pipe::<Interrupt, In>(in_addr),
        Err(Error::WrongPipeType {
            expected: TransferType::Interrupt,
            found: TransferType::Bulk,
            ..
        })
    ));
    drop(interface);
    let pair = gadget::bulk_pair_of(device);
    assert_echo(&pair, "after wrong type/direction");
}

#[test]
fn bad_input_nonexistent_endpoint_or_interface() {
    let pair = loopback();
    assert!(matches!(
        pair.interface.open_pipe::<Bulk, In>(0x8f),
        Err(Error::NoSuchEndpoint(0x8f))
    ));
    assert!(matches!(
        pair.device.claim_interface(7),
        Err(Error::NoSuchInterface(7))
    ));
    assert!(matches!(
        pair.interface.select_setting(5),
        Err(Error::NoSuchAltSetting {
            interface: 0,
            alt: 5
        }) | Err(Error::PipesOpen(0))
    ));
    assert!(matches!(
        pair.device.select_configuration(9),
        Err(Error::NoSuchConfiguration(9)) | Err(Error::InterfacesClaimed)
    ));
    assert_echo(&pair, "after nonexistent endpoint/interface");
}

#[test]
fn bad_input_same_pipe_opened_twice() {
    let pair = loopback();
    let (out_addr, in_addr) = gadget::bulk_addresses(&pair.interface);
    assert!(matches!(
        pair.interface.open_pipe::<Bulk, In>(in_addr),
        Err(Error::PipeAlreadyOpen(a)) if a == in_addr
    ));
    assert!(matches!(
        pair.interface.open_pipe::<Bulk, Out>(out_addr),
        Err(Error::PipeAlreadyOpen(a)) if a == out_addr
    ));
    // the same interface claimed twice: Busy
    assert!(matches!(
        pair.device.claim_interface(0),
        Err(Error::Busy { interface: 0, .. })
    ));
    assert_echo(&pair, "after opening twice");
}

#[test]
fn bad_input_in_length_not_a_multiple_of_max_packet() {
    let pair = loopback();
    let mps = pair.max_packet();
    let mut r = Request::with_capacity(4096);
    r.set_tag(11);
    let e = pair
        .inp
        .read(r, mps + 1, &SendOptions::new())
        .expect_err("refused");
    assert_eq!(
        e.kind(),
        SendErrorKind::NotMultipleOfMaxPacket {
            len: mps + 1,
            max_packet_size: mps
        }
    );
    assert_eq!(e.into_request().tag(), 11, "the request comes back");
    assert_eq!(pair.inp.in_flight(), 0);
    assert_echo(&pair, "after a bad IN length");
}

#[test]
fn bad_input_zero_length_in() {
    let pair = loopback();
    let e = pair
        .inp
        .read(Request::with_capacity(512), 0, &SendOptions::new())
        .expect_err("refused");
    assert_eq!(e.kind(), SendErrorKind::ZeroLengthIn);
    assert_echo(&pair, "after a zero-length IN");
}

#[test]
fn bad_input_buffer_over_the_pipe_maximum() {
    let pair = loopback();
    let max = pair.out.policy().max_transfer;
    let mut big = Request::with_capacity(max + 1);
    big.memory_mut().fill_with(max + 1, |i| i as u8).unwrap();
    let e = pair
        .out
        .write(big, &SendOptions::new())
        .expect_err("refused");
    assert_eq!(e.kind(), SendErrorKind::TooLarge { len: max + 1, max });
    // and a read longer than its buffer
    let e = pair
        .inp
        .read(Request::with_capacity(512), 1024, &SendOptions::new())
        .expect_err("refused");
    assert_eq!(
        e.kind(),
        SendErrorKind::BufferTooSmall {
            len: 1024,
            capacity: 512
        }
    );
    assert_echo(&pair, "after oversize transfers");
}

/// Reusing an in-flight request cannot be written: `Pipe::write`/`read` take the `Request` by
/// value and only the `Completion` (or a `SendError`) gives it back; the `compile_fail`
/// doctest on `usbdf::Request` (framework/src/request.rs) proves the second send does not
/// compile ("use of moved value"), with no trybuild needed. What can be done at run time:
/// the request that comes back is the same one (its id and tag), resendable.
#[test]
fn bad_input_reuse_of_an_in_flight_request_is_impossible_by_construction() {
    let pair = loopback();
    let mut req = Request::with_capacity(512);
    req.set_tag(77);
    let id = req.id();
    req.memory_mut().set(b"once").unwrap();
    let c = pair.out.write_sync(req, T).expect("send");
    assert_eq!(c.status(), Status::Success);
    let mut again = c.into_request();
    assert_eq!((again.id(), again.tag()), (id, 77));
    again.reuse();
    again.memory_mut().set(b"twice").unwrap();
    assert_eq!(
        pair.out.write_sync(again, T).expect("resend").status(),
        Status::Success
    );
    let c = pair
        .inp
        .read_sync(Request::with_capacity(512), 512, T)
        .unwrap();
    assert_eq!(c.data(), b"once");
    let c = pair
        .inp
        .read_sync(Request::with_capacity(512), 512, T)
        .unwrap();
    assert_eq!(c.data(), b"twice");
}

#[test]
fn bad_input_cancel_after_completion() {
    let pair = loopback();
    let mut req = Request::with_capacity(16);
    req.memory_mut().set(b"cancel-late").unwrap();
    let sent = pair.out.write(req, &SendOptions::new()).expect("send");
    let handle = sent.cancel_handle();
    let c = sent.wait(T);
    assert_eq!(c.status(), Status::Success);
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);
    let r = pair
        .inp
        .read_sync(Request::with_capacity(512), 512, T)
        .unwrap();
    assert_eq!(
        r.data(),
        b"cancel-late",
        "the cancel after completion lost nothing"
    );
    assert_echo(&pair, "after a late cancel");
}

#[test]
fn bad_input_double_cancel() {
    let pair = loopback();
    // an idle read (nothing to echo) is pending: cancel it twice
    let sent = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send");
    let handle = sent.cancel_handle();
    assert_eq!(handle.cancel(), CancelOutcome::Requested);
    // AlreadyRequested while the drain the first cancel started is under way; NotPending once
    // it has finished the request (engine/cancel.rs checks `Finished` first): both harmless,
    // which one is a race with the drain (seen both ways on the real gadget)
    let second = sent.cancel();
    assert!(
        matches!(
            second,
            CancelOutcome::AlreadyRequested | CancelOutcome::NotPending
        ),
        "second cancel: {second:?}"
    );
    let c = sent.wait(T);
    assert_eq!((c.status(), c.bytes()), (Status::Cancelled, 0));
    assert_eq!(handle.cancel(), CancelOutcome::NotPending);
    gadget::wait_idle(&pair.inp);
    assert_echo(&pair, "after a double cancel");
}

#[test]
fn bad_input_sync_send_with_zero_timeout() {
    let pair = loopback();
    let mut r = Request::with_capacity(512);
    r.set_tag(3);
    let e = pair
        .inp
        .read_sync(r, 512, Timeout::millis(0))
        .expect_err("refused");
    assert_eq!(e.kind(), SendErrorKind::ZeroTimeout);
    let mut w = e.into_request();
    assert_eq!(w.tag(), 3);
    w.memory_mut().set(b"never sent").unwrap();
    let e = pair
        .out
        .write_sync(w, Timeout::millis(0))
        .expect_err("refused");
    assert_eq!(e.kind(), SendErrorKind::ZeroTimeout);
    let e = pair
        .out
        .write(
            e.into_request(),
            &SendOptions::new().timeout(std::time::Duration::ZERO),
        )
        .expect_err("refused");
    assert_eq!(e.kind(), SendErrorKind::ZeroTimeout);
    assert!(matches!(
        pair.device.control_pipe().read(
            SetupPacket::get_status(Recipient::Device, 0),
            Timeout::millis(0)
        ),
        Err(Error::ZeroTimeout)
    ));
    // nothing of "never sent" reached the device
    assert_echo(&pair, "after zero timeouts");
}

/// usbdf makes I/O on an unclaimed interface impossible: a pipe is opened only from an
/// `Interface`, which only `claim_interface` returns, and the claim lives as long as any of its
/// pipes. What remains to check: a second claim of a claimed interface is `Busy`, and the
/// claim is released (claimable again) once the interface and its pipes are dropped.
#[test]
fn bad_input_interface_not_claimed_is_impossible_and_double_claim_is_busy() {
    let pair = loopback();
    let device = pair.device.clone();
    assert!(matches!(
        device.claim_interface(0),
        Err(Error::Busy { interface: 0, .. })
    ));
    // the pipes keep the claim: drop the Interface alone, still Busy
    let BulkPair {
        interface,
        out,
        inp,
        ..
    } = pair;
    drop(interface);
    assert!(matches!(
        device.claim_interface(0),
        Err(Error::Busy { interface: 0, .. })
    ));
    drop((out, inp));
    let pair = gadget::bulk_pair_of(device);
    assert_echo(&pair, "after reclaiming");
}

#[test]
fn bad_input_clear_halt_with_transfers_pending() {
    let pair = loopback();
    let sent = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send");
    assert!(matches!(pair.inp.reset(), Err(Error::RequestsPending(1))));
    // the pending read is untouched by the refused reset: it gets the next echo
    let mut req = Request::with_capacity(5);
    req.memory_mut().set(b"kept!").unwrap();
    assert_eq!(
        pair.out.write_sync(req, T).unwrap().status(),
        Status::Success
    );
    let c = sent.wait(T);
    assert_eq!((c.status(), c.data()), (Status::Success, &b"kept!"[..]));
    gadget::wait_idle(&pair.inp);
    pair.inp.reset().expect("reset with nothing pending");
    assert_echo(&pair, "after reset");
}

#[test]
fn bad_input_any_call_after_unplug() {
    let pair = loopback();
    let pending = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send");
    let guard = vm::Unbound::new(&LOOPBACK).expect("unbind");
    let c = pending.wait(T);
    assert_eq!(c.status(), Status::Disconnected);
    let fail = |what: &str, r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::Disconnected)),
            "{what} after unplug: {r:?}"
        );
    };
    let e = pair
        .out
        .write(Request::with_capacity(8), &SendOptions::new())
        .expect_err("write refused");
    assert_eq!(e.kind(), SendErrorKind::Disconnected);
    let e = pair
        .inp
        .read(Request::with_capacity(512), 512, &SendOptions::new())
        .expect_err("read refused");
    assert_eq!(e.kind(), SendErrorKind::Disconnected);
    fail("claim_interface", pair.device.claim_interface(0).map(drop));
    fail(
        "control read",
        pair.device
            .control_pipe()
            .read(SetupPacket::get_status(Recipient::Device, 0), T)
            .map(drop),
    );
    fail("reset", pair.inp.reset());
    fail("start", pair.inp.start());
    fail("select_configuration", pair.device.select_configuration(1));
    assert!(!pair.device.is_connected());
    assert_eq!(pair.inp.in_flight(), 0);
    drop(pair);
    guard.rebind().expect("rebind");
    vm::wait_for_device(
        LOOPBACK.vendor_id,
        LOOPBACK.product_id,
        gadget::HOTPLUG_TIMEOUT,
    )
    .expect("back");
    let pair = gadget::bulk_pair_of(gadget::wait_open(&LOOPBACK));
    gadget::drain_loopback(&pair);
    assert_echo(&pair, "after replug");
}
