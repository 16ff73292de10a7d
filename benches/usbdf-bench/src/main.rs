//! `usbdf-bench`: the in-VM half of `cargo xtask bench`.
//!
//! Runs inside the gadget VM as root. It reconfigures the SourceSink gadget for throughput
//! (pattern 0, large gadget requests, deep gadget queue: the gadget must not be the limit),
//! then measures, interleaving the implementations run by run (A B C A B C …):
//!
//! * SourceSink bulk IN and OUT throughput and Loopback echo throughput, sizes × queue
//!   depths, for usbdf (pool requests resubmitted from a completion routine), raw nusb
//!   (`Endpoint::allocate`, `depth` submitted, reaped and resubmitted on nusb's event thread
//!   by a waker) and libusb (the `libusb-bench` C program, async transfers resubmitted from
//!   their callbacks); each run also reports its CPU time per request (`getrusage`);
//! * latency: a synchronous 64 B Loopback echo and a control GET_DESCRIPTOR;
//! * finally the kernel's own `usbtest` cases 27/28 on the same gadget (it binds the
//!   interface, so it runs last, after every user-space handle is closed).
//!
//! Every result is one line `@@bench {json}` on stdout; progress lines start with `bench:`.
//! A counting global allocator reports usbdf's allocations per request in steady state.

mod alloc;
mod gadget;
mod libusb;
mod measure;
mod nusb_impl;
mod usbdf_impl;
mod usbtest;

use std::time::Duration;

use measure::{Cell, Latency, Measurement, Scenario};

/// Run configuration from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// One size per scenario at depth 8.
    pub quick: bool,
    /// Repeats per cell.
    pub runs: usize,
    /// Measured time per throughput run.
    pub window: Duration,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// Samples per latency run.
    pub samples: usize,
    /// Only these scenarios (all when empty).
    pub only: Vec<Scenario>,
    /// Only these implementations (all when empty).
    pub impls: Vec<String>,
    /// Only these throughput transfer sizes (all when empty).
    pub sizes: Vec<usize>,
    /// Only these throughput queue depths (all when empty).
    pub depths: Vec<usize>,
}

impl Config {
    fn wants(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    fn wants_cell(&self, cell: &Cell) -> bool {
        (self.sizes.is_empty() || self.sizes.contains(&cell.size))
            && (self.depths.is_empty() || self.depths.contains(&cell.depth))
    }

    fn runs_impl(&self, name: &str) -> bool {
        self.impls.is_empty() || self.impls.iter().any(|i| i == name)
    }
}

fn parse_args() -> Config {
    let mut cfg = Config {
        quick: false,
        runs: 3,
        window: Duration::from_millis(400),
        warmup: Duration::from_millis(60),
        samples: 400,
        only: Vec::new(),
        impls: Vec::new(),
        sizes: Vec::new(),
        depths: Vec::new(),
    };
    let list = |value: Option<String>, flag: &str| -> Vec<usize> {
        value
            .unwrap_or_else(|| panic!("{flag} <n,…>"))
            .split(',')
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
            })
            .collect()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => cfg.quick = true,
            "--runs" => {
                cfg.runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--runs <n>")
            }
            "--window-ms" => {
                cfg.window = Duration::from_millis(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--window-ms <ms>"),
                )
            }
            "--samples" => {
                cfg.samples = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--samples <n>")
            }
            "--only" => {
                for name in args.next().expect("--only <scenario,…>").split(',') {
                    match Scenario::from_name(name) {
                        Some(s) => cfg.only.push(s),
                        None => eprintln!("bench: unknown scenario `{name}`"),
                    }
                }
            }
            "--impls" => {
                cfg.impls = args
                    .next()
                    .expect("--impls <usbdf,nusb,libusb,usbtest>")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--sizes" => cfg.sizes = list(args.next(), "--sizes"),
            "--depths" => cfg.depths = list(args.next(), "--depths"),
            // The VM agent passes libtest's flag to every binary it runs.
            "--test-threads=1" => {}
            other => eprintln!("bench: ignoring argument `{other}`"),
        }
    }
    cfg
}

/// The throughput cells, in run order (echo cells grouped by size: Loopback is reconfigured
/// once per size).
fn cells(cfg: &Config) -> Vec<Cell> {
    let mut cells = Vec::new();
    for scenario in [
        Scenario::SourceSinkIn,
        Scenario::SourceSinkOut,
        Scenario::LoopbackEcho,
    ] {
        if !cfg.wants(scenario) {
            continue;
        }
        if cfg.quick {
            cells.push(Cell {
                scenario,
                size: 65536,
                depth: 8,
            });
            continue;
        }
        for size in [512, 4096, 65536] {
            let depths: &[usize] = if size == 65536 { &[1, 8, 32] } else { &[1, 8] };
            for &depth in depths {
                cells.push(Cell {
                    scenario,
                    size,
                    depth,
                });
            }
        }
    }
    cells.retain(|cell| cfg.wants_cell(cell));
    cells
}

fn main() {
    let cfg = parse_args();
    if let Err(err) = run(&cfg) {
        println!("bench: FAILED: {err}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn run(cfg: &Config) -> Result<()> {
    let cells = cells(cfg);
    if cells.iter().any(|c| c.scenario != Scenario::LoopbackEcho) {
        println!(
            "bench: reconfiguring SourceSink for throughput ({})",
            gadget::DESCRIPTION
        );
        gadget::reconfigure_sourcesink()?;
    }
    let libusb = libusb::Program::find().filter(|_| cfg.runs_impl("libusb"));
    if libusb.is_none() {
        println!("bench: libusb-bench not in the image or not asked for: libusb columns skipped");
    }

    let total = cells.len();
    let mut loopback_buflen = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.scenario == Scenario::LoopbackEcho && loopback_buflen != Some(cell.size) {
            println!("bench: Loopback bulk_buflen {} qlen 32", cell.size);
            gadget::reconfigure_loopback(cell.size)?;
            loopback_buflen = Some(cell.size);
        }
        println!(
            "bench: [{}/{total}] {} {} B depth {}",
            i + 1,
            cell.scenario.name(),
            cell.size,
            cell.depth
        );
        let mut usbdf = Measurement::new(*cell, "usbdf", "MB/s");
        let mut nusb = Measurement::new(*cell, "nusb", "MB/s");
        let mut lib = Measurement::new(*cell, "libusb", "MB/s");
        let mut allocs = Vec::new();
        for _ in 0..cfg.runs {
            if cfg.runs_impl("usbdf") {
                let r = usbdf_impl::throughput(cell, cfg)?;
                allocs.push(r.allocs_per_request);
                usbdf.push_run(r);
            }
            if cfg.runs_impl("nusb") {
                nusb.push_run(nusb_impl::throughput(cell, cfg)?);
            }
            if let Some(p) = &libusb {
                lib.push_run(p.throughput(cell, cfg)?);
            }
        }
        usbdf.allocs_per_request = allocs
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        for m in [usbdf, nusb, lib] {
            if !m.runs.is_empty() {
                m.emit();
            }
        }
    }
    if loopback_buflen.is_some() {
        // Back to the test layout's Loopback, for the latency echo (64 B ends on a short
        // packet whatever the buffer length).
        gadget::reconfigure_loopback(4096)?;
    }

    for scenario in [Latency::Echo64, Latency::Control] {
        if !cfg.wants(scenario.scenario()) {
            continue;
        }
        println!("bench: latency {}", scenario.name());
        let cell = Cell {
            scenario: scenario.scenario(),
            size: scenario.size(),
            depth: 1,
        };
        let mut usbdf = Measurement::new(cell, "usbdf", "us");
        let mut nusb = Measurement::new(cell, "nusb", "us");
        let mut lib = Measurement::new(cell, "libusb", "us");
        for _ in 0..cfg.runs {
            if cfg.runs_impl("usbdf") {
                usbdf.push_latency(usbdf_impl::latency(scenario, cfg.samples)?);
            }
            if cfg.runs_impl("nusb") {
                nusb.push_latency(nusb_impl::latency(scenario, cfg.samples)?);
            }
            if let Some(p) = &libusb {
                lib.push_latency(p.latency(scenario, cfg.samples)?);
            }
        }
        for m in [usbdf, nusb, lib] {
            if !m.runs.is_empty() {
                m.emit();
            }
        }
    }

    // The kernel's usbtest has bulk source/sink cases only (27 OUT, 28 IN).
    let kernel_cells: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.scenario != Scenario::LoopbackEcho)
        .collect();
    if cfg.runs_impl("usbtest") && !kernel_cells.is_empty() {
        println!("bench: kernel usbtest (cases 27/28)");
        match usbtest::Usbtest::load() {
            Ok(kernel) => {
                let total = kernel_cells.len();
                for (i, cell) in kernel_cells.iter().enumerate() {
                    println!(
                        "bench: usbtest [{}/{total}] {} {} B depth {}",
                        i + 1,
                        cell.scenario.name(),
                        cell.size,
                        cell.depth
                    );
                    let mut m = Measurement::new(**cell, "usbtest", "MB/s");
                    for _ in 0..cfg.runs {
                        m.runs.push(kernel.throughput(cell, cfg)?);
                    }
                    m.emit();
                }
            }
            Err(err) => println!("bench: usbtest unavailable: {err}"),
        }
    }
    println!("bench: done");
    // The VM agent's report counts libtest summary lines; say the one "test" passed.
    println!("test result: ok. 1 passed; 0 failed; 0 ignored");
    Ok(())
}
