//! The VM gadgets through usbdf: opening them on [`Host::system`], the data patterns they
//! source and check, stream helpers and a small seeded PRNG for the `vm_usbdf_*` suites.
//!
//! Everything here uses usbdf's public API only (plus the layout in [`crate::vm`]).

use std::time::{Duration, Instant};

use usbdf::{
    Bulk, Device, DeviceSelector, Host, In, Interface, Out, Pipe, Request, SendOptions, Status,
    Timeout,
};

use crate::vm::{self, Function, Gadget};

/// The timeout of ordinary synchronous operations in the VM suites: generous, only a bound.
pub const T: Timeout = Timeout::millis(5000);

/// How long a rebound gadget may take to appear again (≈ 0.4 s under TCG).
pub const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(10);

/// The selector that finds `gadget`: IDs and serial number.
pub fn selector(gadget: &Gadget) -> DeviceSelector {
    DeviceSelector::id(gadget.vendor_id, gadget.product_id).serial(gadget.serial)
}

/// Open `gadget` through `Host::system()`.
///
/// # Panics
/// When it is not enumerated or cannot be opened.
pub fn open(gadget: &Gadget) -> Device {
    Host::system()
        .open(&selector(gadget))
        .unwrap_or_else(|e| panic!("open {} through Host::system(): {e}", gadget.name))
}

/// Wait until `gadget` is enumerated and configured again (after a rebind), then open it
/// through `Host::system()`.
///
/// # Panics
/// When it does not come back within [`HOTPLUG_TIMEOUT`].
pub fn wait_open(gadget: &Gadget) -> Device {
    vm::wait_for_device(gadget.vendor_id, gadget.product_id, HOTPLUG_TIMEOUT)
        .unwrap_or_else(|e| panic!("{} did not come back: {e}", gadget.name));
    open(gadget)
}

/// `bulk_buflen` of a SourceSink or Loopback gadget: the size of one gadget request.
///
/// # Panics
/// For other functions.
pub fn bulk_buflen(gadget: &Gadget) -> usize {
    match gadget.function {
        Function::SourceSink { bulk_buflen, .. } | Function::Loopback { bulk_buflen, .. } => {
            bulk_buflen as usize
        }
        other => panic!("{} has no bulk_buflen ({other:?})", gadget.name),
    }
}

/// A claimed interface 0 with its bulk OUT and bulk IN pipes open (SourceSink, Loopback).
#[derive(Debug)]
pub struct BulkPair {
    /// The device.
    pub device: Device,
    /// Interface 0, claimed.
    pub interface: Interface,
    /// The bulk OUT pipe.
    pub out: Pipe<Bulk, Out>,
    /// The bulk IN pipe.
    pub inp: Pipe<Bulk, In>,
}

impl BulkPair {
    /// The bulk max packet size (the same both ways on these gadgets).
    pub fn max_packet(&self) -> usize {
        self.inp.info().max_packet_size
    }
}

/// The bulk endpoint addresses of interface 0's current setting: (OUT, IN).
///
/// # Panics
/// When the setting does not have one bulk endpoint each way.
pub fn bulk_addresses(interface: &Interface) -> (u8, u8) {
    let setting = interface.descriptor().expect("current alternate setting");
    let find = |dir: usbdf::descriptor::Direction| {
        setting
            .endpoints
            .iter()
            .find(|e| {
                e.transfer_type() == usbdf::descriptor::TransferType::Bulk && e.direction() == dir
            })
            .map(|e| e.address)
            .unwrap_or_else(|| panic!("no bulk {dir:?} endpoint in {setting:?}"))
    };
    (
        find(usbdf::descriptor::Direction::Out),
        find(usbdf::descriptor::Direction::In),
    )
}

/// Open `gadget`, claim interface 0 and open its bulk pipes.
pub fn open_bulk_pair(gadget: &Gadget) -> BulkPair {
    bulk_pair_of(open(gadget))
}

/// Claim interface 0 of `device` and open its bulk pipes.
pub fn bulk_pair_of(device: Device) -> BulkPair {
    let interface = device.claim_interface(0).expect("claim interface 0");
    let (out_addr, in_addr) = bulk_addresses(&interface);
    let out = interface
        .open_pipe::<Bulk, Out>(out_addr)
        .expect("open bulk OUT");
    let inp = interface
        .open_pipe::<Bulk, In>(in_addr)
        .expect("open bulk IN");
    BulkPair {
        device,
        interface,
        out,
        inp,
    }
}

/// SourceSink pattern 1 as the gadget defines it: byte `i` of every gadget request is
/// `(i % max_packet) % 63`, restarted at each `bulk_buflen`-byte request.
///
/// Kept as a table so a whole transfer is checked with one slice comparison.
#[derive(Debug, Clone)]
pub struct SsPattern {
    table: Vec<u8>,
    buflen: usize,
}

impl SsPattern {
    /// The pattern of `gadget` (SourceSink) for transfers of at most `max_len` bytes.
    pub fn new(gadget: &Gadget, max_packet: usize, max_len: usize) -> SsPattern {
        let buflen = bulk_buflen(gadget);
        let table = (0..buflen + max_len)
            .map(|i| (((i % buflen) % max_packet) % 63) as u8)
            .collect();
        SsPattern { table, buflen }
    }

    /// The bytes the source sends from stream offset `offset` (offset 0 = the start of a
    /// gadget request), `len` of them.
    pub fn expected(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % self.buflen as u64) as usize;
        &self.table[start..start + len]
    }

    /// `Err` naming the first wrong byte when `data` is not the stream at `offset`.
    pub fn check(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        let want = self.expected(offset, data.len());
        if data == want {
            return Ok(());
        }
        let i = first_difference(data, want).unwrap_or(0);
        Err(format!(
            "pattern mismatch at stream offset {} (offset {} in its gadget request): got {:#04x}, \
             want {:#04x}",
            offset + i as u64,
            (offset + i as u64) % self.buflen as u64,
            data[i],
            want[i]
        ))
    }

    /// A block the sink accepts: the pattern from the start of a gadget request.
    pub fn block(&self, len: usize) -> Vec<u8> {
        self.expected(0, len).to_vec()
    }
}

/// The index of the first byte where `a` and `b` differ (a length difference counts at the
/// shorter length).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Assert `got == want` for long byte strings, reporting the first difference instead of
/// dumping both.
///
/// # Panics
/// When they differ.
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = first_difference(got, want) {
        panic!(
            "{what}: {} bytes received, {} expected; first difference at byte {i} (got {:?}, \
             want {:?})",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Numbered stream content: byte `j` of block `block`. Different blocks differ at almost every
/// offset, so a lost, duplicated or reordered piece shows.
pub fn block_byte(block: u64, j: usize) -> u8 {
    let x = (j as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(block.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    (x >> 56) as u8 ^ (j as u8)
}

/// Block `block` of the numbered stream, `len` bytes.
pub fn numbered_block(block: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| block_byte(block, j)).collect()
}

/// Read from `inp` until `len` bytes arrived (an echo may span several IN transfers),
/// reading `chunk` bytes at a time, each read bounded by `timeout`.
///
/// # Panics
/// On a read that does not succeed, or when more than `len` bytes arrive.
pub fn read_stream(inp: &Pipe<Bulk, In>, len: usize, chunk: usize, timeout: Timeout) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    let mut request = Request::with_capacity(chunk);
    while got.len() < len {
        let c = inp.read_sync(request, chunk, timeout).expect("send a read");
        assert_eq!(
            c.status(),
            Status::Success,
            "read after {} of {len} bytes",
            got.len()
        );
        got.extend_from_slice(c.data());
        assert!(
            got.len() <= len,
            "{} bytes arrived, only {len} were expected",
            got.len()
        );
        request = c.into_request();
    }
    got
}

/// Bring a Loopback gadget back to "nothing to echo": a unique short write ends whatever
/// gadget request an earlier test left open, and everything is read back up to and including
/// its echo. Returns the bytes that were waiting before it (stale echoes).
///
/// # Panics
/// When the marker is not echoed within a few seconds.
pub fn drain_loopback(pair: &BulkPair) -> usize {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let marker: Vec<u8> = b"usbdf-drain:"
        .iter()
        .copied()
        .chain(nonce.to_le_bytes())
        .chain([0x5a, 0xa5, 0x3c])
        .collect();
    // Written asynchronously: a gadget whose queue is full takes it only once we read.
    let mut request = Request::with_capacity(marker.len());
    request.memory_mut().set(&marker).expect("marker fits");
    let write = pair
        .out
        .write(request, &SendOptions::new())
        .expect("send the drain marker");
    let mut stale = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let chunk = 4 * 4096;
    let mut request = Request::with_capacity(chunk);
    loop {
        assert!(
            Instant::now() < deadline,
            "the drain marker was not echoed ({stale} stale bytes read)"
        );
        let c = pair
            .inp
            .read_sync(request, chunk, Timeout::millis(2000))
            .expect("send a drain read");
        assert!(
            matches!(c.status(), Status::Success | Status::TimedOut),
            "drain read: {:?}",
            c.status()
        );
        if c.data().ends_with(&marker) {
            stale += c.bytes() - marker.len();
            break;
        }
        stale += c.bytes();
        request = c.into_request();
    }
    let c = write.wait(T);
    assert_eq!(c.status(), Status::Success, "drain marker write");
    stale
}

/// A small seeded PRNG (xorshift64*), so the suites need no extra crate and a run can be
/// repeated with `USBDF_VM_SEED`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    /// Seeded from `USBDF_VM_SEED` if set, otherwise from the clock; prints the seed so a
    /// failure can be replayed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("USBDF_VM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{test}: seed {seed} (USBDF_VM_SEED={seed} to repeat)");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A random delay in `0..=max` (microsecond resolution).
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as usize + 1) as u64)
    }
}

/// Busy-wait for `d`: timing jitter before a cancel (as usbtest's unlink tests do), never
/// synchronisation. Spinning keeps sub-millisecond delays meaningful under emulation.
pub fn jitter(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Wait (bounded by [`T`]) until `pipe` counts nothing in flight.
///
/// A request stops counting only after its delivery finished: after its completion routine
/// returned, or after a dropped `Sent`'s completion was dropped. A test that learns of a
/// completion from inside a routine (or from a pooled request coming home) can get there
/// first, so it waits for the count instead of asserting it.
///
/// # Panics
/// When requests are still counted after [`T`].
pub fn wait_idle<K: usbdf::PipeType, D: usbdf::PipeDirection>(pipe: &Pipe<K, D>) {
    let deadline = Instant::now() + T.duration().unwrap_or(Duration::from_secs(5));
    while pipe.in_flight() != 0 {
        assert!(
            Instant::now() < deadline,
            "{} requests still in flight on {pipe:?}",
            pipe.in_flight()
        );
        std::thread::yield_now();
    }
}

/// [`read_stream`] with `depth` reads in flight, for when the data is already waiting (each
/// read then costs no round trip of its own). Reads still pending once `len` bytes arrived
/// are cancelled; they must come back empty (nothing else was sent).
///
/// # Panics
/// On a read that does not succeed, when more than `len` bytes arrive, or when a surplus
/// read had data.
pub fn read_stream_queued(inp: &Pipe<Bulk, In>, len: usize, chunk: usize, depth: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    let mut queue = std::collections::VecDeque::with_capacity(depth);
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < len {
        while queue.len() < depth {
            queue.push_back(
                inp.read(Request::with_capacity(chunk), chunk, &SendOptions::new())
                    .expect("send a read"),
            );
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {len} bytes arrived", got.len());
        let c = queue
            .pop_front()
            .expect("a read in flight")
            .wait(Timeout::after(left));
        assert_eq!(
            c.status(),
            Status::Success,
            "read after {} of {len} bytes",
            got.len()
        );
        got.extend_from_slice(c.data());
        assert!(
            got.len() <= len,
            "{} bytes arrived, only {len} were expected",
            got.len()
        );
    }
    for sent in &queue {
        sent.cancel();
    }
    for sent in queue {
        let c = sent.wait(T);
        assert_eq!(
            c.bytes(),
            0,
            "a surplus read got data ({:?}): more than {len} bytes were waiting",
            c.status()
        );
    }
    got
}
