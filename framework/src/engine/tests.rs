//! Engine tests against the scripted fake backend: byte accounting for
//! per-request cancel, races, timeouts, ZLPs, errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::fake::{pipe, Fake};
use super::{CancelHandle, CancelOutcome, CompletionRoutine, PipeShared, SendTo, Sent};
use crate::backend::RawStatus;
use crate::descriptor::Direction;
use crate::options::{SendOptions, Timeout};
use crate::request::Request;
use crate::status::Status;

#[derive(Debug, Clone, PartialEq)]
struct Done {
    tag: u64,
    status: Status,
    bytes: usize,
    data: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Done>>>;

fn collector() -> (CompletionRoutine, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let routine: CompletionRoutine = Arc::new(move |c: crate::Completion| {
        l.lock().unwrap().push(Done {
            tag: c.request().tag(),
            status: c.status(),
            bytes: c.bytes(),
            data: c.data().to_vec(),
        });
    });
    (routine, log)
}

fn out_req(tag: u64, data: &[u8]) -> Request {
    let mut r = Request::with_capacity(data.len().max(1));
    r.memory_mut().set(data).unwrap();
    r.set_tag(tag);
    r
}

fn send_out(p: &Arc<PipeShared>, tag: u64, data: &[u8], r: &CompletionRoutine) -> CancelHandle {
    let (k, g) = p
        .send(
            out_req(tag, data),
            0,
            &SendOptions::new(),
            SendTo::Routine(r.clone()),
        )
        .unwrap();
    CancelHandle::new(p.clone(), k, g)
}

fn send_in(p: &Arc<PipeShared>, tag: u64, len: usize, r: &CompletionRoutine) -> CancelHandle {
    let mut req = Request::with_capacity(len);
    req.set_tag(tag);
    let (k, g) = p
        .send(req, len, &SendOptions::new(), SendTo::Routine(r.clone()))
        .unwrap();
    CancelHandle::new(p.clone(), k, g)
}

fn pattern(tag: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (tag as usize * 31 + i) as u8).collect()
}

#[test]
fn cancel_middle_of_out_queue_keeps_stream() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let data: Vec<Vec<u8>> = (0..4).map(|t| pattern(t, 20)).collect();
    let handles: Vec<_> = (0..4)
        .map(|t| send_out(&p, t, &data[t as usize], &r))
        .collect();
    // Request 0 moves one packet (8 bytes) before the cancel of request 2.
    fake.advance(1, None);
    assert_eq!(handles[2].cancel(), CancelOutcome::Requested);
    // The fake finishes the drain at once, so the second cancel may already
    // find the request complete; either way it does nothing.
    assert!(matches!(
        handles[2].cancel(),
        CancelOutcome::AlreadyRequested | CancelOutcome::NotPending
    ));
    // Drain done, remainders resubmitted: let everything run.
    fake.advance(1000, None);
    let mut log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        4,
        "every request completes exactly once: {log:?}"
    );
    let uncut: Vec<u64> = log.iter().map(|d| d.tag).filter(|&t| t != 2).collect();
    assert_eq!(
        uncut,
        vec![0, 1, 3],
        "requests not cancelled complete in order"
    );
    log.sort_by_key(|d| d.tag);
    assert_eq!(log[2].status, Status::Cancelled);
    assert_eq!(log[2].bytes, 0);
    for t in [0, 1, 3] {
        assert_eq!(log[t].status, Status::Success);
        assert_eq!(log[t].bytes, 20);
    }
    let mut expect = data[0].clone();
    expect.extend(&data[1]);
    expect.extend(&data[3]);
    assert_eq!(
        fake.rx(),
        expect,
        "device saw every byte of the others once, in order"
    );
    assert_eq!(handles[2].cancel(), CancelOutcome::NotPending);
    assert_eq!(fake.cancel_alls(), 1);
}

#[test]
fn cancelled_victim_keeps_bytes_it_moved() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let a = send_out(&p, 0, &pattern(0, 32), &r);
    let _b = send_out(&p, 1, &pattern(1, 16), &r);
    fake.advance(2, None);
    a.cancel();
    fake.advance(100, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].status, Status::Cancelled);
    assert_eq!(log[0].bytes, 16);
    assert_eq!(log[0].data, pattern(0, 16));
    assert_eq!(log[1].status, Status::Success);
    let mut expect = pattern(0, 16);
    expect.extend(pattern(1, 16));
    assert_eq!(fake.rx(), expect);
}

#[test]
fn completion_wins_the_race() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let a = send_out(&p, 0, &pattern(0, 7), &r);
    let _b = send_out(&p, 1, &pattern(1, 7), &r);
    // The bus finished `a`, but its completion has not been reaped yet:
    // hold the engine lock so the wake-up cannot reap it.
    {
        let _g = p.lock();
        let mut st = fake.state.lock().unwrap();
        let x = st.queue.front_mut().unwrap();
        x.moved = 7;
        x.status = Some(Ok(()));
        st.rx.extend(pattern(0, 7));
    }
    // The engine has not reaped `a` yet, so the cancel is started, but the
    // bus already finished it: it reports success with its data.
    assert_eq!(a.cancel(), CancelOutcome::Requested);
    fake.advance(10, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].status, Status::Success);
    assert_eq!(log[1].status, Status::Success);
}

#[test]
fn cancelled_status_with_all_bytes_is_success() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let a = send_out(&p, 0, &pattern(0, 15), &r);
    {
        // All bytes moved but the transfer is not reported done yet.
        let mut st = fake.state.lock().unwrap();
        let x = st.queue.front_mut().unwrap();
        x.moved = 15;
        st.rx.extend(pattern(0, 15));
    }
    a.cancel();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Status::Success, "decided by the byte count");
    assert_eq!(log[0].bytes, 15);
}

/// A whole-packet write whose data went out but whose ZLP was cancelled
/// has not ended on the bus: it reports `Cancelled` with every byte.
#[test]
fn cancelled_zlp_leaves_the_write_unterminated() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let a = send_out(&p, 0, &pattern(0, 16), &r);
    fake.advance(2, None); // data done, ZLP still queued
    assert_eq!(log.lock().unwrap().len(), 0);
    a.cancel();
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].status, Status::Cancelled);
    assert_eq!(log[0].bytes, 16);
    assert_eq!(fake.state.lock().unwrap().zlps, 0);
}

#[test]
fn cancel_held_request_is_exact_and_cheap() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let a = send_out(&p, 0, &pattern(0, 16), &r);
    let _b = send_out(&p, 1, &pattern(1, 16), &r);
    a.cancel(); // drain starts; nothing reaped yet if the fake holds them
    let c = send_out(&p, 2, &pattern(2, 16), &r);
    // `c` may be held (drain still under way) or already in the backend.
    c.cancel();
    fake.advance(100, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    let c_done = log.iter().find(|d| d.tag == 2).unwrap();
    assert_eq!(c_done.status, Status::Cancelled);
    assert_eq!(c_done.bytes, 0);
    assert_eq!(fake.rx(), pattern(1, 16));
}

#[test]
fn in_partial_collateral_is_completed_by_remainder() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let (r, log) = collector();
    let _a = send_in(&p, 0, 32, &r);
    let b = send_in(&p, 1, 32, &r);
    let _c = send_in(&p, 2, 32, &r);
    fake.advance(2, None); // a got 16 of 32
    b.cancel();
    fake.advance(100, None);
    let mut log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    log.sort_by_key(|d| d.tag);
    assert_eq!(log[0].tag, 0);
    assert_eq!(log[0].bytes, 32);
    assert_eq!(log[1].status, Status::Cancelled);
    assert_eq!(log[1].bytes, 0);
    assert_eq!(log[2].bytes, 32);
    let stream: Vec<u8> = log.iter().flat_map(|d| d.data.clone()).collect();
    let expect: Vec<u8> = (0..64u64).map(|i| (i % 251) as u8).collect();
    assert_eq!(stream, expect, "IN data contiguous across the cancel");
}

#[test]
fn in_short_packet_ends_transfer() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let (r, log) = collector();
    send_in(&p, 0, 32, &r);
    fake.advance(2, Some(3));
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].status, Status::Success);
    assert_eq!(log[0].bytes, 13);
}

#[test]
fn zlp_follows_whole_packet_out() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    send_out(&p, 0, &pattern(0, 16), &r);
    assert_eq!(fake.state.lock().unwrap().submitted, 2, "data + ZLP");
    send_out(&p, 1, &pattern(1, 5), &r);
    assert_eq!(
        fake.state.lock().unwrap().submitted,
        3,
        "no ZLP after a short packet"
    );
    fake.advance(10, None);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[test]
fn stall_halts_pipe_until_reset() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    send_out(&p, 0, &pattern(0, 5), &r);
    fake.fail_next(RawStatus::Stall);
    assert_eq!(log.lock().unwrap()[0].status, Status::Stall);
    let e = p
        .send(
            out_req(1, b"x"),
            0,
            &SendOptions::new(),
            SendTo::Routine(r.clone()),
        )
        .unwrap_err();
    assert_eq!(e.kind(), crate::SendErrorKind::Halted(Status::Stall));
    assert_eq!(
        e.into_request().memory().as_slice(),
        b"x",
        "request comes back intact"
    );
    p.reset().unwrap();
    send_out(&p, 2, b"yz", &r);
    fake.advance(1, None);
    assert_eq!(log.lock().unwrap()[1].status, Status::Success);
}

#[test]
fn reset_refuses_with_requests_in_flight() {
    let (p, _fake, _) = pipe(Direction::Out, 8);
    let (r, _log) = collector();
    send_out(&p, 0, b"abc", &r);
    assert!(matches!(p.reset(), Err(crate::Error::RequestsPending(1))));
}

#[test]
fn fault_on_unplug_is_reported_disconnected() {
    let (p, fake, gone) = pipe(Direction::In, 8);
    let (r, log) = collector();
    send_in(&p, 0, 8, &r);
    send_in(&p, 1, 8, &r);
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    fake.fail_next(RawStatus::Fault);
    fake.fail_next(RawStatus::Disconnected);
    // The probe runs on its own thread; wait for both completions.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|d| d.status == Status::Disconnected),
        "{log:?}"
    );
    let e = p
        .send(
            Request::with_capacity(8),
            8,
            &SendOptions::new(),
            SendTo::Future,
        )
        .unwrap_err();
    assert_eq!(e.kind(), crate::SendErrorKind::Disconnected);
}

#[test]
fn fault_with_device_present_stays_fault() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let (r, log) = collector();
    send_in(&p, 0, 8, &r);
    fake.fail_next(RawStatus::Fault);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(log.lock().unwrap()[0].status, Status::Fault);
}

#[test]
fn sync_wait_times_out_not_cancelled() {
    let (p, _fake, _) = pipe(Direction::In, 8);
    let (k, g) = p
        .send(
            Request::with_capacity(8),
            8,
            &SendOptions::new(),
            SendTo::Future,
        )
        .unwrap();
    let sent = Sent::new(p.clone(), k, g);
    let c = sent.wait(Timeout::millis(20));
    assert_eq!(c.status(), Status::TimedOut);
    assert_eq!(c.bytes(), 0);
}

#[test]
fn async_timeout_completes_timed_out() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let (r, log) = collector();
    let mut req = Request::with_capacity(16);
    req.set_tag(7);
    p.send(
        req,
        16,
        &SendOptions::new().timeout(Duration::from_millis(10)),
        SendTo::Routine(r.clone()),
    )
    .unwrap();
    fake.advance(1, None); // 8 bytes arrive first
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(1));
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].status, Status::TimedOut);
    assert_eq!(log[0].bytes, 8);
}

#[test]
fn future_resolves_once() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let mut req = Request::with_capacity(4);
    req.memory_mut().set(b"abcd").unwrap();
    let (k, g) = p.send(req, 0, &SendOptions::new(), SendTo::Future).unwrap();
    let mut sent = Sent::new(p.clone(), k, g);
    use futures::FutureExt;
    assert!((&mut sent).now_or_never().is_none());
    fake.advance(1, None);
    let c = futures::executor::block_on(sent);
    assert_eq!(c.status(), Status::Success);
    assert_eq!(c.bytes(), 4);
}

#[test]
fn dropped_future_cancels_and_frees() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let pool = crate::RequestPool::new(1, 8);
    let (k, g) = p
        .send(pool.take().unwrap(), 8, &SendOptions::new(), SendTo::Future)
        .unwrap();
    drop(Sent::new(p.clone(), k, g));
    assert_eq!(
        pool.available(),
        1,
        "the cancelled request went back to its pool"
    );
    assert_eq!(fake.pending(), 0);
    assert_eq!(p.active(), 0);
}

#[test]
fn abort_completes_everything() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    for t in 0..5 {
        send_out(&p, t, &pattern(t, 12), &r);
    }
    fake.advance(1, None);
    p.abort(Timeout::millis(1000)).unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].bytes, 8);
    assert!(log.iter().all(|d| d.status == Status::Cancelled));
}

#[test]
fn stopped_target_refuses_unless_ignored() {
    let (p, _fake, _) = pipe(Direction::Out, 8);
    p.stop(super::StopAction::CancelSentIo, Timeout::millis(100))
        .unwrap();
    let e = p
        .send(out_req(0, b"a"), 0, &SendOptions::new(), SendTo::Future)
        .unwrap_err();
    assert_eq!(e.kind(), crate::SendErrorKind::TargetStopped);
    let ok = p.send(
        e.into_request(),
        0,
        &SendOptions::new().ignore_target_state(),
        SendTo::Future,
    );
    assert!(ok.is_ok());
    p.start().unwrap();
}

#[test]
fn bad_sends_return_the_request() {
    let (p, _fake, _) = pipe(Direction::In, 8);
    let cases: [(usize, usize, crate::SendErrorKind); 3] = [
        (0, 8, crate::SendErrorKind::ZeroLengthIn),
        (
            12,
            16,
            crate::SendErrorKind::NotMultipleOfMaxPacket {
                len: 12,
                max_packet_size: 8,
            },
        ),
        (
            16,
            8,
            crate::SendErrorKind::BufferTooSmall {
                len: 16,
                capacity: 8,
            },
        ),
    ];
    for (len, cap, kind) in cases {
        let mut req = Request::with_capacity(cap);
        req.set_tag(99);
        let e = p
            .send(req, len, &SendOptions::new(), SendTo::Future)
            .unwrap_err();
        assert_eq!(e.kind(), kind);
        assert_eq!(e.request().tag(), 99);
    }
    let e = p
        .send(
            Request::with_capacity(8),
            8,
            &SendOptions::new().timeout(Duration::ZERO),
            SendTo::Future,
        )
        .unwrap_err();
    assert_eq!(e.kind(), crate::SendErrorKind::ZeroTimeout);
}

#[test]
fn queue_full_is_typed() {
    let (p, _fake, _) = pipe(Direction::In, 8);
    let mut policy = p.policy();
    policy.max_in_flight = 2;
    p.set_policy(policy);
    let mut keep = Vec::new();
    for _ in 0..2 {
        let (k, g) = p
            .send(
                Request::with_capacity(8),
                8,
                &SendOptions::new(),
                SendTo::Future,
            )
            .unwrap();
        keep.push(Sent::new(p.clone(), k, g));
    }
    let e = p
        .send(
            Request::with_capacity(8),
            8,
            &SendOptions::new(),
            SendTo::Future,
        )
        .unwrap_err();
    assert_eq!(e.kind(), crate::SendErrorKind::QueueFull);
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Advance(usize),
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..40).prop_map(Op::Send),
        (0usize..6).prop_map(Op::Advance),
        (0usize..16).prop_map(Op::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// OUT: whatever the interleaving of sends, bus progress and cancels,
    /// every request completes exactly once, in order, and the device saw
    /// exactly: each request's bytes up to what its completion reports,
    /// in send order, nothing lost or duplicated.
    #[test]
    fn out_byte_accounting(ops in proptest::collection::vec(op(), 1..60)) {
        let (p, fake, _) = pipe(Direction::Out, 8);
        let (r, log) = collector();
        let mut handles = Vec::new();
        let mut sent = Vec::new();
        for o in ops {
            match o {
                Op::Send(len) => {
                    let t = sent.len() as u64;
                    let d = pattern(t, len);
                    handles.push(send_out(&p, t, &d, &r));
                    sent.push(d);
                }
                Op::Advance(n) => fake.advance(n, None),
                Op::Cancel(i) => { if let Some(h) = handles.get(i) { h.cancel(); } }
            }
        }
        fake.advance(100_000, None);
        let mut log = log.lock().unwrap().clone();
        prop_assert_eq!(log.len(), sent.len());
        // Requests that were not cancelled complete in send order.
        let uncut: Vec<u64> = log.iter().filter(|d| d.status == Status::Success).map(|d| d.tag).collect();
        let mut sorted = uncut.clone();
        sorted.sort_unstable();
        prop_assert_eq!(uncut, sorted);
        log.sort_by_key(|d| d.tag);
        let tags: Vec<u64> = log.iter().map(|d| d.tag).collect();
        let want: Vec<u64> = (0..sent.len() as u64).collect();
        prop_assert_eq!(tags, want, "each exactly once");
        let mut expect = Vec::new();
        for d in &log {
            let full = &sent[d.tag as usize];
            match d.status {
                Status::Success => prop_assert_eq!(d.bytes, full.len()),
                Status::Cancelled => prop_assert!(d.bytes <= full.len()),
                s => prop_assert!(false, "unexpected status {:?}", s),
            }
            expect.extend_from_slice(&full[..d.bytes]);
        }
        prop_assert_eq!(fake.rx(), expect);
        prop_assert_eq!(p.active(), 0);
    }

    /// IN: the data handed to completions, concatenated in completion
    /// order, is exactly the device's stream: nothing lost or duplicated.
    #[test]
    fn in_byte_accounting(ops in proptest::collection::vec(op(), 1..60)) {
        let (p, fake, _) = pipe(Direction::In, 8);
        let (r, log) = collector();
        let mut handles = Vec::new();
        let mut n = 0u64;
        for o in ops {
            match o {
                Op::Send(len) => {
                    handles.push(send_in(&p, n, len.div_ceil(8) * 8, &r));
                    n += 1;
                }
                Op::Advance(k) => fake.advance(k, None),
                Op::Cancel(i) => { if let Some(h) = handles.get(i) { h.cancel(); } }
            }
        }
        fake.advance(100_000, None);
        let mut log = log.lock().unwrap().clone();
        prop_assert_eq!(log.len() as u64, n);
        log.sort_by_key(|d| d.tag);
        let stream: Vec<u8> = log.iter().flat_map(|d| d.data.clone()).collect();
        let produced = fake.state.lock().unwrap().tx_counter;
        let expect: Vec<u8> = (0..produced).map(|i| (i % 251) as u8).collect();
        prop_assert_eq!(stream, expect);
        for d in &log {
            prop_assert!(matches!(d.status, Status::Success | Status::Cancelled));
            prop_assert_eq!(d.bytes, d.data.len());
        }
    }
}

#[test]
fn pooled_requests_round_trip_without_loss() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let pool = crate::RequestPool::new(4, 16);
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = count.clone();
    let routine: CompletionRoutine = Arc::new(move |c: crate::Completion| {
        assert_eq!(c.status(), Status::Success);
        c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    for round in 0..50u64 {
        let mut req = pool.take().expect("a request came back");
        req.memory_mut().set(&pattern(round, 16)).unwrap();
        p.send(
            req,
            0,
            &SendOptions::new(),
            SendTo::Routine(routine.clone()),
        )
        .unwrap();
        fake.advance(3, None);
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 50);
    assert_eq!(pool.available(), 4);
    let _ = Fake::new(Direction::Out, 8);
}

#[test]
fn zero_length_out_collateral_is_resent() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    // `a` (two packets + auto ZLP), an explicit ZLP write, and a victim.
    let a = send_out(&p, 0, &pattern(0, 16), &r);
    let z = send_out(&p, 1, &[], &r);
    let c = send_out(&p, 2, &pattern(2, 8), &r);
    c.cancel();
    fake.advance(100, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    let zd = log.iter().find(|d| d.tag == 1).unwrap();
    assert_eq!(zd.status, Status::Success);
    assert_eq!(zd.bytes, 0);
    let _ = (a, z);
    assert_eq!(fake.rx(), pattern(0, 16));
    assert_eq!(
        fake.state.lock().unwrap().zlps,
        2,
        "a's auto ZLP and the explicit ZLP each went out exactly once"
    );
}

#[test]
fn os_side_cancel_resubmits_in_order() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    send_out(&p, 0, &pattern(0, 24), &r);
    send_out(&p, 1, &pattern(1, 24), &r);
    fake.advance(1, None);
    // The OS cancels the first transfer on its own (e.g. around a reset).
    fake.fail_next(RawStatus::Cancelled);
    fake.advance(1000, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "nothing hangs: {log:?}");
    assert!(log
        .iter()
        .all(|d| d.status == Status::Success && d.bytes == 24));
    let mut expect = pattern(0, 24);
    expect.extend(pattern(1, 24));
    assert_eq!(fake.rx(), expect);
    assert_eq!(p.active(), 0);
}

#[test]
fn stall_inside_drain_is_not_reported_as_cancel() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let (k, g) = p
        .send(
            out_req(0, &pattern(0, 16)),
            0,
            &SendOptions::new(),
            SendTo::Routine(r.clone()),
        )
        .unwrap();
    let _ = (k, g);
    send_out(&p, 1, &pattern(1, 16), &r);
    let c = send_out(&p, 2, &pattern(2, 16), &r);
    // Make the cancel's drain meet a stall on the first transfer.
    {
        let mut st = fake.state.lock().unwrap();
        st.queue.front_mut().unwrap().status = Some(Err(RawStatus::Stall));
    }
    c.cancel();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    let by_tag = |t| log.iter().find(|d| d.tag == t).unwrap().status;
    assert_eq!(by_tag(0), Status::Stall);
    assert_eq!(
        by_tag(1),
        Status::Stall,
        "collateral ends with the halt status"
    );
    assert_eq!(by_tag(2), Status::Cancelled);
}

#[test]
fn released_engine_delivers_every_completion() {
    let (p, fake, _) = pipe(Direction::In, 8);
    let (r, log) = collector();
    let pool = crate::RequestPool::new(3, 8);
    for t in 0..3 {
        let mut req = pool.take().unwrap();
        req.set_tag(t);
        p.send(req, 8, &SendOptions::new(), SendTo::Routine(r.clone()))
            .unwrap();
    }
    let weak = Arc::downgrade(&p);
    p.release();
    drop(p);
    assert_eq!(log.lock().unwrap().len(), 3, "every routine ran");
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .all(|d| d.status == Status::Cancelled));
    assert_eq!(pool.available(), 3);
    drop(fake);
    assert!(
        weak.upgrade().is_none(),
        "the engine freed itself once delivered"
    );
}

#[test]
fn abort_waits_for_routines() {
    let (p, _fake, _) = pipe(Direction::In, 8);
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r2 = ran.clone();
    let routine: CompletionRoutine = Arc::new(move |_c: crate::Completion| {
        std::thread::sleep(Duration::from_millis(5));
        r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    for _ in 0..3 {
        p.send(
            Request::with_capacity(8),
            8,
            &SendOptions::new(),
            SendTo::Routine(routine.clone()),
        )
        .unwrap();
    }
    p.abort(Timeout::millis(2000)).unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn panicking_routine_does_not_wedge_the_pipe() {
    let (p, fake, _) = pipe(Direction::Out, 8);
    let (r, log) = collector();
    let bad: CompletionRoutine = Arc::new(|_c: crate::Completion| panic!("driver bug"));
    p.send(
        out_req(0, b"boom"),
        0,
        &SendOptions::new(),
        SendTo::Routine(bad),
    )
    .unwrap();
    send_out(&p, 1, b"fine", &r);
    fake.advance(10, None);
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the next completion is still delivered"
    );
    assert_eq!(p.active(), 0);
}
