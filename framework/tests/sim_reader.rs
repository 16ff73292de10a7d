//! The continuous reader on the simulator: order, stop, readers-failed
//! recovery, unplug.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use usbdf::sim::{FaultInjector, Pattern, SimHost, SourceSink};
use usbdf::{
    Bulk, DeviceSelector, Error, In, Pipe, ReadComplete, ReaderConfig, ReaderState, ReadersFailed,
    ReadersFailedAction, Status, Timeout,
};

const T: Timeout = Timeout::millis(5000);

fn source(sim: &SimHost) -> (usbdf::Device, Pipe<Bulk, In>) {
    let device = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a0))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let inp = iface.open_pipe::<Bulk, In>(0x81).unwrap();
    (device, inp)
}

type Chunks = Arc<Mutex<Vec<Vec<u8>>>>;

fn collecting() -> (ReadComplete, Chunks) {
    let chunks: Chunks = Arc::default();
    let c = chunks.clone();
    (
        Arc::new(move |d: &[u8]| c.lock().unwrap().push(d.to_vec())),
        chunks,
    )
}

fn wait_reads(chunks: &Chunks, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while chunks.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} reads arrived",
            chunks.lock().unwrap().len()
        );
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

fn assert_pattern(chunks: &[Vec<u8>]) {
    for (n, c) in chunks.iter().enumerate() {
        assert_eq!(c.len(), 4096, "read {n}");
        for (i, b) in c.iter().enumerate() {
            assert_eq!(*b, Pattern::Mod63.byte(i, 512), "read {n} byte {i}");
        }
    }
}

#[test]
fn reads_arrive_in_order_and_stop_is_clean() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::new(Pattern::Mod63, 4096));
    let (_d, inp) = source(&sim);
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(4096, on_read).pending_reads(4))
        .unwrap();
    reader.start().unwrap();
    assert_eq!(reader.state(), ReaderState::Running);
    wait_reads(&chunks, 200);
    reader.stop(T).unwrap();
    assert_eq!(reader.state(), ReaderState::Stopped);
    assert_eq!(inp.in_flight(), 0, "every read came back");
    let got = chunks.lock().unwrap().clone();
    assert_eq!(got.len() as u64, reader.reads());
    assert_pattern(&got);
    // Restartable.
    reader.start().unwrap();
    wait_reads(&chunks, got.len() + 10);
    reader.stop(T).unwrap();
}

#[test]
fn stall_restarts_after_reset_by_default() {
    let model = FaultInjector::new(SourceSink::new(Pattern::Mod63, 4096), 7);
    let faults = model.faults();
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (_d, inp) = source(&sim);
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(4096, on_read))
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 5);
    faults.stall(0x81);
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.restarts() == 0 {
        assert!(
            Instant::now() < deadline,
            "no restart: state {:?}",
            reader.state()
        );
        std::thread::park_timeout(Duration::from_millis(1));
    }
    assert_eq!(reader.last_failure(), Some(Status::Stall));
    let before = chunks.lock().unwrap().len();
    wait_reads(&chunks, before + 20);
    assert_eq!(reader.state(), ReaderState::Running);
    reader.stop(T).unwrap();
    assert_pattern(&chunks.lock().unwrap());
}

#[test]
fn stop_policy_and_asking_policy() {
    let model = FaultInjector::new(SourceSink::new(Pattern::Mod63, 4096), 7);
    let faults = model.faults();
    let sim = SimHost::new();
    let _dev = sim.plug(model);
    let (_d, inp) = source(&sim);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a2 = asked.clone();
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(
            ReaderConfig::new(4096, on_read).on_failed(ReadersFailed::Ask(Arc::new(move |s| {
                a2.lock().unwrap().push(s);
                ReadersFailedAction::Stop
            }))),
        )
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 3);
    faults.stall(0x81);
    assert!(reader.wait_for(ReaderState::Stopped, T));
    assert_eq!(*asked.lock().unwrap(), vec![Status::Stall]);
    assert_eq!(reader.restarts(), 0);
    assert_eq!(inp.halted(), Some(Status::Stall), "the pipe stays halted");
    inp.reset().unwrap();
    reader.start().unwrap();
    let n = chunks.lock().unwrap().len();
    wait_reads(&chunks, n + 3);
    drop(reader); // stops
    assert_eq!(inp.in_flight(), 0);
}

#[test]
fn unplug_ends_gone_without_restart() {
    let sim = SimHost::new();
    let dev = sim.plug(SourceSink::new(Pattern::Mod63, 4096));
    let (_d, inp) = source(&sim);
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(4096, on_read))
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 3);
    dev.unplug();
    assert!(reader.wait_for(ReaderState::Gone, T));
    assert_eq!(reader.last_failure(), Some(Status::Disconnected));
    assert_eq!(reader.restarts(), 0);
    assert!(matches!(reader.start(), Err(Error::Disconnected)));
}

#[test]
fn bad_reader_configs_are_typed_errors() {
    let sim = SimHost::new();
    let _dev = sim.plug(SourceSink::new(Pattern::Mod63, 4096));
    let (_d, inp) = source(&sim);
    let (on_read, _) = collecting();
    for cfg in [
        ReaderConfig::new(100, on_read.clone()),
        ReaderConfig::new(0, on_read.clone()),
        ReaderConfig::new(512, on_read.clone()).pending_reads(0),
        ReaderConfig::new(512, on_read.clone()).pending_reads(33),
    ] {
        assert!(matches!(
            inp.continuous_reader(cfg),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn state_changes_are_reported_including_gone() {
    let sim = SimHost::new();
    let dev = sim.plug(SourceSink::new(Pattern::Mod63, 4096));
    let (_d, inp) = source(&sim);
    let (on_read, chunks) = collecting();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let reader = inp
        .continuous_reader(
            ReaderConfig::new(4096, on_read).on_state(Arc::new(move |s, f| {
                let _ = tx.lock().unwrap().send((s, f));
            })),
        )
        .unwrap();
    reader.start().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        (ReaderState::Running, None)
    );
    wait_reads(&chunks, 2);
    dev.unplug();
    let mut seen = Vec::new();
    while seen.last().map(|(s, _)| *s) != Some(ReaderState::Gone) {
        seen.push(
            rx.recv_timeout(Duration::from_secs(5))
                .expect("a state change"),
        );
    }
    assert_eq!(
        seen,
        vec![
            (ReaderState::Recovering, Some(Status::Disconnected)),
            (ReaderState::Gone, Some(Status::Disconnected))
        ]
    );
}
