//! Cells, measurements and their JSON lines.

use std::fmt::Write as _;

/// A throughput scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Bulk IN from SourceSink.
    SourceSinkIn,
    /// Bulk OUT to SourceSink.
    SourceSinkOut,
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
            Scenario::LatencyEcho64 => "latency-echo64",
            Scenario::LatencyControl => "latency-control",
        }
    }

    /// Bulk IN?
    pub fn is_in(self) -> bool {
        self == Scenario::SourceSinkIn
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
        }
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
        if let Some(a) = self.allocs_per_request {
            let _ = write!(line, ",\"allocs_per_request\":{a:.4}");
        }
        line.push('}');
        println!("{line}");
    }
}
