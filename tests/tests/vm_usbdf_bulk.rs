//! usbdf bulk pipes on real gadgets: synchronous and asynchronous I/O, timeouts, request
//! pools, ZLP and short-packet policies.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use usbdf::control::Recipient;
use usbdf::{
    Completion, CompletionRoutine, PipePolicy, Request, SendErrorKind, SendOptions, SetupPacket,
    ShortPacket, Status, Timeout, Zlp,
};

use usbdf_tests::gadget::{self, assert_bytes_eq, numbered_block, SsPattern, T};
use usbdf_tests::vm::{self, LOOPBACK, SOURCE_SINK};

/// How much later than its deadline a timed-out request may complete under TCG.
const TIMEOUT_SLACK: Duration = Duration::from_millis(750);

fn write_sync(pair: &gadget::BulkPair, data: &[u8]) -> Completion {
    let mut request = Request::with_capacity(data.len());
    request.memory_mut().set(data).expect("fits");
    pair.out.write_sync(request, T).expect("send a write")
}

#[test]
fn loopback_sync_echo_of_a_full_gadget_buffer() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    let len = gadget::bulk_buflen(&LOOPBACK);
    for block in 0..4 {
        let data = numbered_block(block, len);
        let c = write_sync(&pair, &data);
        assert_eq!((c.status(), c.bytes()), (Status::Success, len));
        assert_eq!(c.data(), &data[..], "an OUT completion shows what was sent");
        let c = pair
            .inp
            .read_sync(Request::with_capacity(len), len, T)
            .expect("send a read");
        assert_eq!((c.status(), c.bytes()), (Status::Success, len));
        assert_bytes_eq(c.data(), &data, "echo");
        // 4096 is whole packets, so usbdf ended the write with a ZLP (`Zlp::Auto`); the
        // gadget took it as a request of its own and echoes it as an empty transfer.
        let c = pair
            .inp
            .read_sync(Request::with_capacity(len), len, T)
            .expect("send a read");
        assert_eq!(
            (c.status(), c.bytes()),
            (Status::Success, 0),
            "the echo of the ZLP"
        );
    }
    // Without the ZLP, full gadget buffers come back back to back.
    pair.out.set_policy(PipePolicy {
        zlp: Zlp::Never,
        ..PipePolicy::default()
    });
    let blocks: Vec<Vec<u8>> = (10..14).map(|b| numbered_block(b, len)).collect();
    for data in &blocks {
        assert_eq!(write_sync(&pair, data).result(), Ok(len));
    }
    for data in &blocks {
        let c = pair
            .inp
            .read_sync(Request::with_capacity(len), len, T)
            .expect("send a read");
        assert_eq!(c.result(), Ok(len));
        assert_bytes_eq(c.data(), data, "echo without ZLPs");
    }
}

#[test]
fn idle_read_times_out_at_its_deadline_and_loses_nothing() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    for ms in [50u64, 200] {
        let timeout = Duration::from_millis(ms);
        let start = Instant::now();
        let c = pair
            .inp
            .read_sync(Request::with_capacity(4096), 4096, Timeout::after(timeout))
            .expect("send a read");
        let took = start.elapsed();
        eprintln!("read with a {timeout:?} timeout completed after {took:?}");
        assert_eq!((c.status(), c.bytes()), (Status::TimedOut, 0));
        assert!(
            took >= timeout,
            "completed after {took:?}, before {timeout:?}"
        );
        assert!(
            took < timeout + TIMEOUT_SLACK,
            "completed after {took:?}, deadline {timeout:?}"
        );
        assert_eq!(pair.inp.in_flight(), 0);
        assert_eq!(pair.inp.halted(), None, "a timeout does not halt the pipe");
    }
    // The pipe goes on and nothing was swallowed by the timed-out reads.
    let data = numbered_block(7, 1000);
    assert_eq!(write_sync(&pair, &data).status(), Status::Success);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .expect("send a read");
    assert_eq!(c.status(), Status::Success);
    assert_bytes_eq(c.data(), &data, "echo after timeouts");
}

#[test]
fn async_send_with_a_completion_routine_and_with_a_future() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);

    // Reads first, with a routine: they wait for the echoes.
    let (tx, rx) = mpsc::channel::<Completion>();
    let tx = Mutex::new(tx);
    let on_read: CompletionRoutine = Arc::new(move |c| {
        tx.lock().unwrap().send(c).expect("the test is listening");
    });
    let blocks: Vec<Vec<u8>> = (0..8u64)
        .map(|k| numbered_block(k, 300 + 450 * k as usize))
        .collect();
    for k in 0..blocks.len() {
        let mut request = Request::with_capacity(4096);
        request.set_tag(k as u64);
        pair.inp
            .read_with(request, 4096, &SendOptions::new(), &on_read)
            .expect("send a read");
    }
    assert_eq!(pair.inp.in_flight(), blocks.len());

    // Writes as futures, formatted from requests of their own.
    let writes: Vec<_> = blocks
        .iter()
        .enumerate()
        .map(|(k, data)| {
            let mut request = Request::with_capacity(data.len());
            request.memory_mut().set(data).expect("fits");
            request.set_tag(100 + k as u64);
            pair.out
                .write(request, &SendOptions::new())
                .expect("send a write")
        })
        .collect();
    for (k, w) in writes.into_iter().enumerate() {
        let c = block_on(w);
        assert_eq!((c.status(), c.bytes()), (Status::Success, blocks[k].len()));
        assert_eq!(c.request().tag(), 100 + k as u64, "the request comes back");
    }
    for (k, data) in blocks.iter().enumerate() {
        let c = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a read completion");
        assert_eq!(c.request().tag(), k as u64, "reads complete in order");
        assert_eq!(c.status(), Status::Success);
        assert_bytes_eq(c.data(), data, "echo");
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(20)).is_err(),
        "one completion per read"
    );
    gadget::wait_idle(&pair.inp);

    // And the other way round: a read awaited as a future, a write with a routine.
    let (wtx, wrx) = mpsc::channel::<(Status, usize)>();
    let wtx = Mutex::new(wtx);
    let on_write: CompletionRoutine = Arc::new(move |c| {
        let _ = wtx.lock().unwrap().send((c.status(), c.bytes()));
    });
    let read = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send a read");
    let data = numbered_block(42, 777);
    let mut request = Request::with_capacity(data.len());
    request.memory_mut().set(&data).expect("fits");
    pair.out
        .write_with(request, &SendOptions::new(), &on_write)
        .expect("send a write");
    assert_eq!(
        wrx.recv_timeout(Duration::from_secs(5))
            .expect("write routine"),
        (Status::Success, data.len())
    );
    let c = block_on(read);
    assert_eq!(c.status(), Status::Success);
    assert_bytes_eq(c.data(), &data, "echo");
}

/// ≥ 10 000 pooled reads from SourceSink at depth 8, every byte checked against pattern 1.
#[test]
fn pooled_reads_are_reused_ten_thousand_times_with_every_byte_checked() {
    vm::require_vm();
    const TRANSFERS: usize = 10_000;
    const DEPTH: usize = 8;
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let len = gadget::bulk_buflen(&SOURCE_SINK);
    let pattern = SsPattern::new(&SOURCE_SINK, pair.max_packet(), len);
    let pool = pair.inp.request_pool(DEPTH, len);
    let zero_copy = pool.take().map(|r| r.memory().is_zero_copy());

    let start = Instant::now();
    let mut queue = VecDeque::with_capacity(DEPTH);
    let mut buffers = HashSet::new();
    let mut sent = 0;
    let mut checked = 0u64;
    while checked < (TRANSFERS * len) as u64 {
        while queue.len() < DEPTH && sent < TRANSFERS {
            let request = pool.take().expect("an idle pooled request");
            queue.push_back(
                pair.inp
                    .read(request, len, &SendOptions::new())
                    .expect("send a read"),
            );
            sent += 1;
        }
        let c = block_on(queue.pop_front().expect("a read in flight"));
        assert_eq!((c.status(), c.bytes()), (Status::Success, len));
        // Every gadget request is a whole 4096 and so is every read: each starts one.
        if let Err(e) = pattern.check(0, c.data()) {
            panic!("transfer {}: {e}", checked / len as u64);
        }
        buffers.insert(c.data().as_ptr() as usize);
        checked += c.bytes() as u64;
        // Dropping the completion returns the request to the pool.
    }
    let took = start.elapsed();
    eprintln!(
        "{TRANSFERS} pooled reads of {len} at depth {DEPTH}: {checked} bytes checked in {took:?} \
         ({:.1} MB/s), {} distinct buffers, zero-copy {zero_copy:?}",
        checked as f64 / took.as_secs_f64() / 1e6,
        buffers.len()
    );
    assert!(
        buffers.len() <= DEPTH,
        "{} distinct buffers for a pool of {DEPTH}",
        buffers.len()
    );
    assert_eq!(pool.available(), DEPTH, "every request went home");
    assert_eq!(pair.inp.in_flight(), 0);
}

/// ≥ 10 000 pooled pattern writes to SourceSink, resubmitted from the completion routine;
/// the sink halts its endpoint on a single wrong byte, so success proves every byte.
#[test]
fn pooled_pattern_writes_are_resubmitted_from_the_routine_ten_thousand_times() {
    vm::require_vm();
    const TRANSFERS: usize = 10_000;
    const DEPTH: usize = 8;
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let len = gadget::bulk_buflen(&SOURCE_SINK);
    let block: Arc<[u8]> = SsPattern::new(&SOURCE_SINK, pair.max_packet(), len)
        .block(len)
        .into();
    let pool = pair.out.request_pool(DEPTH, len);
    // Every write is exactly one gadget request: no ZLP needed to end it (and none to
    // halve the transfer rate, which dummy_hcd bounds per transfer, not per byte).
    pair.out.set_policy(PipePolicy {
        zlp: Zlp::Never,
        ..PipePolicy::default()
    });

    // Sends so far (the first DEPTH from here, the rest from the routine), capped.
    let sent = Arc::new(AtomicUsize::new(0));
    let claim_send = {
        let sent = sent.clone();
        move || {
            sent.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < TRANSFERS).then_some(n + 1)
            })
            .is_ok()
        }
    };
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let tx = Mutex::new(tx);
    // The routine resubmits with itself: it finds itself through a weak reference, so the
    // test's drop of `routine` ends the cycle.
    let routine: Arc<Mutex<Option<CompletionRoutine>>> = Arc::new(Mutex::new(None));
    let on_write: CompletionRoutine = {
        let out = pair.out.clone();
        let block = block.clone();
        let me = Arc::downgrade(&routine);
        let claim_send = claim_send.clone();
        Arc::new(move |c: Completion| {
            let report = |r| {
                let _ = tx.lock().unwrap().send(r);
            };
            if c.result() != Ok(len) {
                report(Err(format!(
                    "write {:?}: {:?}, {} bytes",
                    c.request().id(),
                    c.status(),
                    c.bytes()
                )));
                return;
            }
            let mut request = c.into_request();
            let me = me.upgrade().and_then(|m| m.lock().unwrap().clone());
            if let Some(me) = me.filter(|_| claim_send()) {
                request.reuse();
                request.memory_mut().set(&block).expect("fits");
                if let Err(e) = out.write_with(request, &SendOptions::new(), &me) {
                    report(Err(format!("resubmit: {e}")));
                    return;
                }
            }
            report(Ok(()));
        })
    };
    *routine.lock().unwrap() = Some(on_write.clone());

    let start = Instant::now();
    for _ in 0..DEPTH {
        let mut request = pool.take().expect("an idle pooled request");
        request.memory_mut().set(&block).expect("fits");
        assert!(claim_send());
        pair.out
            .write_with(request, &SendOptions::new(), &on_write)
            .expect("send a write");
    }
    // Exactly TRANSFERS writes are sent, so exactly TRANSFERS completions report.
    let mut done = 0;
    while done < TRANSFERS {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => done += 1,
            Ok(Err(e)) => panic!("after {done} writes: {e}"),
            Err(e) => panic!("after {done} writes: no completion ({e})"),
        }
    }
    let took = start.elapsed();
    *routine.lock().unwrap() = None;
    drop(on_write);
    gadget::wait_idle(&pair.out);
    assert!(
        rx.try_recv().is_err(),
        "no completion beyond the {TRANSFERS} sent"
    );
    assert_eq!(sent.load(Ordering::SeqCst), TRANSFERS);
    eprintln!(
        "{done} pooled pattern writes of {len} at depth {DEPTH} in {took:?} ({:.1} MB/s)",
        (done * len) as f64 / took.as_secs_f64() / 1e6
    );
    assert_eq!(pool.available(), DEPTH, "every request went home");
    // The sink checked every byte: its OUT endpoint is not halted.
    let status = pair
        .device
        .control_pipe()
        .read(
            SetupPacket::get_status(Recipient::Endpoint, u16::from(pair.out.info().address)),
            T,
        )
        .expect("GET_STATUS(endpoint)");
    assert_eq!(status, [0, 0], "the sink accepted every byte");
}

/// A write of whole packets shorter than the gadget buffer is echoed only because usbdf adds
/// a ZLP (`Zlp::Auto`); with `Zlp::Never` it waits in the gadget until more data comes.
#[test]
fn automatic_zlp_ends_a_whole_packet_write() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    let mps = pair.max_packet();
    assert_eq!(pair.out.policy().zlp, Zlp::Auto, "the default");

    let first = numbered_block(1, mps);
    assert_eq!(write_sync(&pair, &first).status(), Status::Success);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .expect("send a read");
    assert_eq!((c.status(), c.bytes()), (Status::Success, mps));
    assert_bytes_eq(c.data(), &first, "echo of a ZLP-terminated write");

    pair.out.set_policy(PipePolicy {
        zlp: Zlp::Never,
        ..pair.out.policy()
    });
    let second = numbered_block(2, mps);
    assert_eq!(write_sync(&pair, &second).status(), Status::Success);
    let timeout = Duration::from_millis(200);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, Timeout::after(timeout))
        .expect("send a read");
    assert_eq!(
        (c.status(), c.bytes()),
        (Status::TimedOut, 0),
        "without a ZLP the gadget keeps waiting"
    );
    // More data (a short packet) ends the gadget request: both come back together.
    let third = numbered_block(3, 100);
    assert_eq!(write_sync(&pair, &third).status(), Status::Success);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .expect("send a read");
    assert_eq!(c.status(), Status::Success);
    let both: Vec<u8> = second.iter().chain(&third).copied().collect();
    assert_bytes_eq(c.data(), &both, "echo once more data came");
}

#[test]
fn short_packet_not_ok_policy_reports_short_reads() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    pair.inp.set_policy(PipePolicy {
        short_packet: ShortPacket::NotOk,
        ..PipePolicy::default()
    });
    let read = pair
        .inp
        .read(Request::with_capacity(8192), 8192, &SendOptions::new())
        .expect("send a read");
    let data = numbered_block(9, 100);
    assert_eq!(write_sync(&pair, &data).status(), Status::Success);
    let c = read.wait(T);
    assert_eq!((c.status(), c.bytes()), (Status::ShortPacket, 100));
    assert_bytes_eq(c.data(), &data, "the short data is kept");
    assert_eq!(
        pair.inp.halted(),
        None,
        "a short packet does not halt the pipe"
    );

    // A full read is still a success under the same policy.
    let full = numbered_block(10, 4096);
    let read = pair
        .inp
        .read(Request::with_capacity(4096), 4096, &SendOptions::new())
        .expect("send a read");
    assert_eq!(write_sync(&pair, &full).status(), Status::Success);
    let c = read.wait(T);
    assert_eq!((c.status(), c.bytes()), (Status::Success, 4096));
    assert_bytes_eq(c.data(), &full, "full echo");
}

#[test]
fn send_options_timeout_ends_an_idle_async_read() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&LOOPBACK);
    gadget::drain_loopback(&pair);
    let timeout = Duration::from_millis(150);

    // As a future.
    let start = Instant::now();
    let sent = pair
        .inp
        .read(
            Request::with_capacity(4096),
            4096,
            &SendOptions::new().timeout(timeout),
        )
        .expect("send a read");
    let c = block_on(sent);
    let took = start.elapsed();
    assert_eq!((c.status(), c.bytes()), (Status::TimedOut, 0));
    assert!(
        took >= timeout && took < timeout + TIMEOUT_SLACK,
        "{took:?}"
    );

    // With a routine.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let routine: CompletionRoutine = Arc::new(move |c: Completion| {
        let _ = tx
            .lock()
            .unwrap()
            .send((c.status(), c.bytes(), Instant::now()));
    });
    let start = Instant::now();
    let handle = pair
        .inp
        .read_with(
            Request::with_capacity(4096),
            4096,
            &SendOptions::new().timeout(timeout),
            &routine,
        )
        .expect("send a read");
    let (status, bytes, at) = rx.recv_timeout(Duration::from_secs(5)).expect("completion");
    assert_eq!((status, bytes), (Status::TimedOut, 0));
    let took = at - start;
    assert!(
        took >= timeout && took < timeout + TIMEOUT_SLACK,
        "{took:?}"
    );
    assert_eq!(handle.cancel(), usbdf::CancelOutcome::NotPending);

    // A zero timeout is refused at send time, with the request handed back.
    let e = pair
        .inp
        .read(
            Request::with_capacity(4096),
            4096,
            &SendOptions::new().timeout(Duration::ZERO),
        )
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::ZeroTimeout);
    assert_eq!(e.into_request().memory().capacity(), 4096);

    // Nothing was lost: an echo still works.
    let data = numbered_block(11, 333);
    assert_eq!(write_sync(&pair, &data).status(), Status::Success);
    let c = pair
        .inp
        .read_sync(Request::with_capacity(4096), 4096, T)
        .expect("send a read");
    assert_bytes_eq(c.data(), &data, "echo after timeouts");
}

#[test]
fn invalid_reads_are_refused_at_send_time() {
    vm::require_vm();
    let pair = gadget::open_bulk_pair(&SOURCE_SINK);
    let mps = pair.max_packet();
    let e = pair
        .inp
        .read(Request::with_capacity(4096), 100, &SendOptions::new())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::NotMultipleOfMaxPacket {
            len: 100,
            max_packet_size: mps
        }
    );
    let e = pair
        .inp
        .read(Request::with_capacity(4096), 0, &SendOptions::new())
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::ZeroLengthIn);
    let e = pair
        .inp
        .read(Request::with_capacity(512), 1024, &SendOptions::new())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::BufferTooSmall {
            len: 1024,
            capacity: 512
        }
    );
    assert_eq!(pair.inp.in_flight(), 0);
}
