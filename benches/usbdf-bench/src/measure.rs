//! Cells, measurements, the measured window and their JSON lines.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{alloc, gadget, Config, Result};

/// A throughput scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bulk IN from SourceSink.
    SourceSinkIn,
    /// Bulk OUT to SourceSink.
    SourceSinkOut,
    /// Bulk OUT to Loopback and its echo read back on bulk IN.
    LoopbackEcho,
    /// Sync 64 B Loopback echo latency.
    LatencyEcho64,
    /// Control GET_DESCRIPTOR latency.
    LatencyControl,
}

impl Scenario {
    /// The name in `results.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SourceSinkIn => "sourcesink-in",
            Scenario::SourceSinkOut => "sourcesink-out",
            Scenario::LoopbackEcho => "loopback-echo",
            Scenario::LatencyEcho64 => "latency-echo64",
            Scenario::LatencyControl => "latency-control",
        }
    }

    /// The gadget it runs on.
    pub fn vid_pid(self) -> (u16, u16) {
        match self {
            Scenario::SourceSinkIn | Scenario::SourceSinkOut => gadget::VID_PID,
            _ => gadget::LOOPBACK_VID_PID,
        }
    }

    /// The scenario named `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        [
            Scenario::SourceSinkIn,
            Scenario::SourceSinkOut,
            Scenario::LoopbackEcho,
            Scenario::LatencyEcho64,
            Scenario::LatencyControl,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Per-stream counters, updated from completion context.
#[derive(Debug)]
pub struct Counters {
    /// Bytes completed.
    pub bytes: AtomicU64,
    /// Requests completed successfully.
    pub requests: AtomicU64,
    /// Requests still queued.
    outstanding: AtomicUsize,
    /// No more resubmissions.
    pub stop: AtomicBool,
    /// A transfer failed before the stop.
    pub failed: AtomicBool,
    drained: (Mutex<bool>, Condvar),
}

impl Counters {
    /// Counters for `depth` queued requests.
    pub fn new(depth: usize) -> Counters {
        Counters {
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            outstanding: AtomicUsize::new(depth),
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            drained: (Mutex::new(false), Condvar::new()),
        }
    }

    /// A request completed with `bytes`.
    pub fn completed(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }

    /// A request failed: it leaves the queue.
    pub fn fail(&self) {
        self.failed.store(true, Relaxed);
        self.retire();
    }

    /// A request leaves the queue (not resubmitted).
    pub fn retire(&self) {
        if self.outstanding.fetch_sub(1, Relaxed) == 1 {
            let (lock, cv) = &self.drained;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
    }

    /// Wait until every request left the queue (10 s at most).
    pub fn drain(&self) -> Result<()> {
        let (lock, cv) = &self.drained;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = cv
            .wait_timeout_while(guard, Duration::from_secs(10), |d| {
                !*d && self.outstanding.load(Relaxed) > 0
            })
            .unwrap_or_else(|e| e.into_inner());
        if *done || self.outstanding.load(Relaxed) == 0 {
            Ok(())
        } else {
            Err(format!(
                "the queue did not drain in 10 s ({} of the requests still queued)",
                self.outstanding.load(Relaxed)
            )
            .into())
        }
    }
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// MB/s (10^6 bytes per second).
    pub mbps: f64,
    /// Heap allocations per completed request in the window (this process).
    pub allocs_per_request: f64,
    /// CPU time of this process per completed request, user and system, µs.
    pub cpu: Cpu,
}

/// CPU cost per request, from `getrusage(RUSAGE_SELF)` over the measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// User µs per request.
    pub user_us: f64,
    /// System µs per request.
    pub sys_us: f64,
    /// Context switches (voluntary + involuntary) per request.
    pub switches: f64,
}

#[derive(Clone, Copy)]
struct Usage {
    user_us: f64,
    sys_us: f64,
    switches: f64,
}

fn usage() -> Usage {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    Usage {
        user_us: us(ru.ru_utime),
        sys_us: us(ru.ru_stime),
        switches: (ru.ru_nvcsw + ru.ru_nivcsw) as f64,
    }
}

/// Let the stream warm up, then measure `counters` over the window; sets `stop` at the end.
pub fn window(counters: &Counters, cfg: &Config) -> Run {
    std::thread::sleep(cfg.warmup);
    let snap = || {
        (
            counters.bytes.load(Relaxed),
            counters.requests.load(Relaxed),
            alloc::count(),
            usage(),
            Instant::now(),
        )
    };
    let (b0, r0, a0, u0, t0) = snap();
    std::thread::sleep(cfg.window);
    let (b1, r1, a1, u1, t1) = snap();
    counters.stop.store(true, Relaxed);
    let n = (r1 - r0).max(1) as f64;
    Run {
        mbps: (b1 - b0) as f64 / (t1 - t0).as_secs_f64() / 1e6,
        allocs_per_request: (a1 - a0) as f64 / n,
        cpu: Cpu {
            user_us: (u1.user_us - u0.user_us) / n,
            sys_us: (u1.sys_us - u0.sys_us) / n,
            switches: (u1.switches - u0.switches) / n,
        },
    }
}

/// A latency scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Write 64 B to Loopback, read the echo (both synchronous).
    Echo64,
    /// GET_DESCRIPTOR(device), 18 B.
    Control,
}

impl Latency {
    /// Its name.
    pub fn name(self) -> &'static str {
        self.scenario().name()
    }
    /// Its scenario.
    pub fn scenario(self) -> Scenario {
        match self {
            Latency::Echo64 => Scenario::LatencyEcho64,
            Latency::Control => Scenario::LatencyControl,
        }
    }
    /// Bytes moved per sample.
    pub fn size(self) -> usize {
        match self {
            Latency::Echo64 => 64,
            Latency::Control => 18,
        }
    }
    /// The libusb-bench mode argument.
    pub fn mode(self) -> &'static str {
        match self {
            Latency::Echo64 => "echo",
            Latency::Control => "ctrl",
        }
    }
}

/// One throughput cell.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// What moves.
    pub scenario: Scenario,
    /// Bytes per transfer.
    pub size: usize,
    /// Transfers in flight.
    pub depth: usize,
}

/// Latency samples of one run, summarised.
#[derive(Debug, Clone, Copy)]
pub struct LatencyRun {
    /// Median, µs.
    pub median: f64,
    /// 99th percentile, µs.
    pub p99: f64,
}

impl LatencyRun {
    /// Summarise samples in µs.
    pub fn from_samples(mut samples: Vec<f64>) -> LatencyRun {
        samples.sort_by(f64::total_cmp);
        LatencyRun {
            median: percentile(&samples, 0.5),
            p99: percentile(&samples, 0.99),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One `results.json` object.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The cell.
    pub cell: Cell,
    /// Implementation.
    pub imp: &'static str,
    /// `MB/s` or `us`.
    pub unit: &'static str,
    /// One value per run.
    pub runs: Vec<f64>,
    /// Latency: p99 per run.
    pub p99: Vec<f64>,
    /// usbdf: allocations per request in the measured window (worst run).
    pub allocs_per_request: Option<f64>,
    /// Throughput: CPU cost per request, one per run.
    pub cpu: Vec<Cpu>,
}

impl Measurement {
    /// An empty measurement.
    pub fn new(cell: Cell, imp: &'static str, unit: &'static str) -> Measurement {
        Measurement {
            cell,
            imp,
            unit,
            runs: Vec::new(),
            p99: Vec::new(),
            allocs_per_request: None,
            cpu: Vec::new(),
        }
    }

    /// Add a throughput run.
    pub fn push_run(&mut self, run: Run) {
        self.runs.push(run.mbps);
        self.cpu.push(run.cpu);
    }

    /// Add a latency run.
    pub fn push_latency(&mut self, run: LatencyRun) {
        self.runs.push(run.median);
        self.p99.push(run.p99);
    }

    /// Print the `@@bench` line.
    pub fn emit(&self) {
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                f64::NAN
            } else if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            }
        };
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut line = format!(
            "@@bench {{\"scenario\":\"{}\",\"size\":{},\"depth\":{},\"impl\":\"{}\",\"runs\":[{}],\"median\":{:.3},\"unit\":\"{}\"",
            self.cell.scenario.name(),
            self.cell.size,
            self.cell.depth,
            self.imp,
            list(&self.runs),
            median(&self.runs),
            self.unit
        );
        if !self.p99.is_empty() {
            let _ = write!(
                line,
                ",\"p99_runs\":[{}],\"p99\":{:.3}",
                list(&self.p99),
                median(&self.p99)
            );
        }
        if !self.cpu.is_empty() {
            let med = |f: fn(&Cpu) -> f64| median(&self.cpu.iter().map(f).collect::<Vec<_>>());
            let _ = write!(
                line,
                ",\"cpu_user_us_per_req\":{:.2},\"cpu_sys_us_per_req\":{:.2},\"switches_per_req\":{:.3}",
                med(|c| c.user_us),
                med(|c| c.sys_us),
                med(|c| c.switches)
            );
        }
        if let Some(a) = self.allocs_per_request {
            let _ = write!(line, ",\"allocs_per_request\":{a:.4}");
        }
        line.push('}');
        println!("{line}");
    }
}

/// Retry `claim` while it reports the interface busy, for up to a second: the previous
/// run's handles may still be letting go of it on another thread (nusb's event thread
/// drops the last reference of a stream it just completed).
pub fn claim_retrying<T, E>(
    mut claim: impl FnMut() -> std::result::Result<T, E>,
    busy: impl Fn(&E) -> bool,
) -> std::result::Result<T, E> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match claim() {
            Err(e) if busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return other,
        }
    }
}
