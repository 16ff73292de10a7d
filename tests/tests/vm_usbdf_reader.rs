//! The continuous reader on the real SourceSink gadget (dummy_hcd, usbfs,
//! nusb): ordered pattern data, readers-failed recovery after a real
//! endpoint halt, and a surprise removal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use usbdf::control::{standard, Recipient};
use usbdf::{
    Bulk, Device, DeviceSelector, Host, In, Pipe, ReadComplete, ReaderConfig, ReaderState,
    SetupPacket, Status, Timeout,
};
use usbdf_tests::vm::{self, SOURCE_SINK};

const T: Timeout = Timeout::millis(5000);
const LEN: usize = 4096;

fn source() -> (Device, Pipe<Bulk, In>) {
    vm::require_vm();
    let device = Host::system()
        .open(&DeviceSelector::id(
            SOURCE_SINK.vendor_id,
            SOURCE_SINK.product_id,
        ))
        .expect("open SourceSink");
    let iface = device.claim_interface(0).expect("claim interface 0");
    let inp = iface.open_pipe::<Bulk, In>(0x81).expect("bulk IN 0x81");
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

/// Wait (bounded) until at least `n` reads arrived: progress is what is
/// being tested, the deadline only bounds a hang.
fn wait_reads(chunks: &Chunks, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let have = chunks.lock().unwrap().len();
        if have >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {have} of {n} reads arrived"
        );
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// Pattern 1: byte i of each 4096-byte gadget request is (i % 512) % 63.
fn assert_pattern(chunks: &[Vec<u8>], mps: usize) {
    for (n, c) in chunks.iter().enumerate() {
        assert_eq!(c.len(), LEN, "read {n} length");
        for (i, &b) in c.iter().enumerate() {
            assert_eq!(b, ((i % mps) % 63) as u8, "read {n} byte {i}");
        }
    }
}

#[test]
fn continuous_reader_streams_the_source_pattern_in_order() {
    let (_device, inp) = source();
    let mps = inp.info().max_packet_size;
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(LEN, on_read).pending_reads(4))
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 300);
    reader.stop(T).unwrap();
    assert_eq!(reader.state(), ReaderState::Stopped);
    assert_eq!(inp.in_flight(), 0, "every pending read came back");
    let got = chunks.lock().unwrap().clone();
    assert_eq!(got.len() as u64, reader.reads());
    assert_pattern(&got, mps);
    eprintln!("continuous reader: {} reads x {LEN} B verified", got.len());
}

#[test]
fn endpoint_halt_is_recovered_by_reset_and_restart() {
    let (device, inp) = source();
    let mps = inp.info().max_packet_size;
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(LEN, on_read).pending_reads(3))
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 5);
    // A real device-side halt: SET_FEATURE(ENDPOINT_HALT) on bulk IN.
    device
        .control_pipe()
        .write(
            SetupPacket::set_feature(Recipient::Endpoint, standard::FEATURE_ENDPOINT_HALT, 0x81),
            &[],
            T,
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.restarts() == 0 {
        assert!(
            Instant::now() < deadline,
            "no restart; state {:?}, failure {:?}",
            reader.state(),
            reader.last_failure()
        );
        std::thread::park_timeout(Duration::from_millis(5));
    }
    assert_eq!(reader.last_failure(), Some(Status::Stall));
    let before = chunks.lock().unwrap().len();
    wait_reads(&chunks, before + 50);
    assert_eq!(reader.state(), ReaderState::Running);
    reader.stop(T).unwrap();
    assert_pattern(&chunks.lock().unwrap(), mps);
    let status = device
        .control_pipe()
        .read(SetupPacket::get_status(Recipient::Endpoint, 0x81), T)
        .unwrap();
    assert_eq!(status, vec![0, 0], "the halt was cleared by the reset");
}

#[test]
fn surprise_removal_ends_the_reader_gone() {
    let (_device, inp) = source();
    let (on_read, chunks) = collecting();
    let reader = inp
        .continuous_reader(ReaderConfig::new(LEN, on_read).pending_reads(4))
        .unwrap();
    reader.start().unwrap();
    wait_reads(&chunks, 5);
    let unbound = vm::Unbound::new(&SOURCE_SINK).unwrap();
    assert!(
        reader.wait_for(ReaderState::Gone, Timeout::millis(5000)),
        "state {:?}, failure {:?}",
        reader.state(),
        reader.last_failure()
    );
    assert_eq!(reader.last_failure(), Some(Status::Disconnected));
    assert_eq!(reader.restarts(), 0, "a gone device is never restarted");
    assert!(matches!(reader.start(), Err(usbdf::Error::Disconnected)));
    drop(reader);
    unbound.rebind().unwrap();
    vm::wait_for_device(
        SOURCE_SINK.vendor_id,
        SOURCE_SINK.product_id,
        Duration::from_secs(20),
    )
    .unwrap();
}
