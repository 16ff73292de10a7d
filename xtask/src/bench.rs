//! `cargo xtask bench`: throughput and latency of usbdf against raw nusb, libusb and the
//! kernel's usbtest, on the gadget VM of `cargo xtask test` (see docs/performance.md).
//!
//! 1. build `usbdf-bench` (release) and the `libusb-bench` C program (against Debian's
//!    libusb-1.0-0-dev; installed with apt-get when missing and we are root);
//! 2. pack both into the VM image with the test suite's machinery and boot it; the agent
//!    runs `usbdf-bench`, which reconfigures SourceSink for throughput and prints one
//!    `@@bench {json}` line per measurement (progress lines are passed through);
//! 3. write `target/bench/results.json`, print the ratio table, draw
//!    `target/bench/throughput.svg` (copied to `docs/performance/` with `--update-docs`).
//!
//! With `--perf` the bench program runs under `perf record` in the guest (see [`perf`]).
//!
//! Not part of `cargo xtask test`: timings under TCG vary between boots and say nothing
//! about correctness.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{self, bail, Result};
use crate::vm::build::TestBinary;
use crate::vm::protocol::{Plan, TEST_DIR};
use crate::vm::{initramfs, provision, qemu, report};

mod perf;

/// `cargo xtask bench` usage.
pub const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--runs <n>] [--window-ms <ms>] [--update-docs]
                         [--only <scenario,…>] [--impls <impl,…>] [--sizes <bytes,…>]
                         [--depths <n,…>] [--perf [--perf-freq <hz>]] [--keep-console <path>]
  --quick         one size per scenario (64 KiB) at depth 8, 3 runs: a CI-sized check
  --runs <n>      repeats per cell (default 3; implementations interleaved run by run)
  --window-ms <ms> measured time per throughput run (default 400)
  --only <list>   scenarios to run: sourcesink-in, sourcesink-out, loopback-echo,
                  latency-echo64, latency-control (default: all)
  --impls <list>  implementations: usbdf, nusb, libusb, usbtest (default: all)
  --sizes <list>  throughput transfer sizes in bytes, e.g. 512,65536 (default: all)
  --depths <list> throughput queue depths, e.g. 8 (default: all)
  --perf          profile the guest: run the bench under `perf record -e cpu-clock -a -g`
                  (software clock sampling: TCG has no PMU) and write the reports and a
                  summary (idle/user/kernel, top symbols) to target/bench/perf-<impls>.txt;
                  profile one implementation at a time (--impls) to attribute user time
  --perf-freq <hz> sampling frequency per CPU (default 999)
  --update-docs   copy throughput.svg, table.md and results.json into docs/performance/
results: target/bench/results.json, target/bench/throughput.svg
";

#[derive(Debug, Default)]
struct Flags {
    quick: bool,
    runs: Option<usize>,
    window_ms: Option<u64>,
    update_docs: bool,
    keep_console: Option<PathBuf>,
    only: Option<String>,
    impls: Option<String>,
    sizes: Option<String>,
    depths: Option<String>,
    perf: bool,
    perf_freq: Option<u32>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut flags = Flags::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--quick" => flags.quick = true,
                "--runs" => flags.runs = Some(value("--runs")?.parse()?),
                "--window-ms" => flags.window_ms = Some(value("--window-ms")?.parse()?),
                "--only" => flags.only = Some(value("--only")?),
                "--impls" => flags.impls = Some(value("--impls")?),
                "--sizes" => flags.sizes = Some(value("--sizes")?),
                "--depths" => flags.depths = Some(value("--depths")?),
                "--perf" => flags.perf = true,
                "--perf-freq" => flags.perf_freq = Some(value("--perf-freq")?.parse()?),
                "--update-docs" => flags.update_docs = true,
                "--keep-console" => flags.keep_console = Some(value("--keep-console")?.into()),
                "-h" | "--help" => {
                    eprint!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown bench flag `{other}`\n\n{USAGE}"),
            }
        }
        Ok(flags)
    }

    /// Arguments for the in-VM program.
    fn guest_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.quick {
            args.push("--quick".to_string());
        }
        if let Some(runs) = self.runs {
            args.extend(["--runs".to_string(), runs.to_string()]);
        }
        if let Some(ms) = self.window_ms {
            args.extend(["--window-ms".to_string(), ms.to_string()]);
        }
        // The list filters go through as given: the guest program parses them.
        for (flag, list) in [
            ("--only", &self.only),
            ("--impls", &self.impls),
            ("--sizes", &self.sizes),
            ("--depths", &self.depths),
        ] {
            if let Some(list) = list {
                args.extend([flag.to_string(), list.clone()]);
            }
        }
        args
    }

    /// `target/bench/perf-<impls>.txt`.
    fn perf_file_name(&self) -> String {
        let impls = self.impls.as_deref().unwrap_or("all").replace(',', "-");
        format!("perf-{impls}.txt")
    }
}

/// Run the task.
pub fn run(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let started = Instant::now();
    let out_dir = cmd::target_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;

    eprintln!("==> [1/4] building usbdf-bench (release)");
    let mut build = crate::vm::build::cargo();
    build
        .args(["build", "--release", "-p", "usbdf-bench"])
        .current_dir(cmd::workspace_root());
    cmd::run(&mut build)?;
    let mut binaries = vec![TestBinary {
        name: "usbdf-bench".to_string(),
        path: cmd::target_dir().join("release/usbdf-bench"),
    }];
    match build_libusb(&out_dir) {
        Ok(path) => binaries.push(TestBinary {
            name: "libusb-bench".to_string(),
            path,
        }),
        Err(err) => eprintln!("    libusb column skipped: {err}"),
    }

    eprintln!("==> [2/4] provisioning and packing the VM image");
    let cache = cmd::target_dir().join("vm");
    std::fs::create_dir_all(&cache)?;
    let assets = provision::provision(&cache)?;
    let perf_tool = if flags.perf {
        Some(provision::perf()?)
    } else {
        None
    };
    let script = perf::wrapper_script(flags.perf_freq.unwrap_or(perf::DEFAULT_FREQ));
    let mut extras = Vec::new();
    if let Some(tool) = &perf_tool {
        extras.push(initramfs::Extra::Program {
            image_path: perf::PERF_PATH,
            host_path: tool,
        });
        extras.push(initramfs::Extra::File {
            image_path: perf::WRAPPER_PATH,
            mode: 0o755,
            data: script.as_bytes(),
        });
    }
    let plan = Plan {
        timeout_secs: 3000,
        args: flags.guest_args(),
        wrapper: if flags.perf {
            vec![perf::WRAPPER_PATH.to_string()]
        } else {
            Vec::new()
        },
        tests: binaries
            .iter()
            .map(|b| (b.name.clone(), format!("{TEST_DIR}/{}", b.name)))
            .collect(),
    };
    let agent = std::env::current_exe()?;
    let image = cache.join("initramfs-bench.cpio");
    initramfs::write(
        &image,
        &assets,
        &initramfs::Contents {
            agent: &agent,
            tests: &binaries,
            plan: &plan,
            extras: &extras,
        },
    )?;

    eprintln!(
        "==> [3/4] booting the VM and measuring (interleaved runs; TCG: CPU cost, not wire rate)"
    );
    let mut report = report::Report::default();
    let bar = progress_bar();
    let show = |line: &str| show_line(&bar, line);
    let (end, console) = qemu::run(
        &qemu::Boot {
            qemu: &assets.qemu,
            kernel: &assets.vmlinux,
            initrd: &image,
            timeout: Duration::from_secs(3600),
            keep_console: flags.keep_console.as_ref(),
            output: Some(&show),
        },
        &mut report,
    )?;
    bar.finish_and_clear();
    let results = parse_results(&console);
    let finished = console
        .iter()
        .any(|l| l.contains("@@usbdf-vm end usbdf-bench exit=0"));
    if !finished || end != qemu::End::Exited {
        let tail = &console[console.len().saturating_sub(qemu::TAIL_LINES)..];
        for line in tail {
            eprintln!("   | {line}");
        }
        if results.is_empty() {
            bail!("the bench did not finish ({end:?}) and produced no results");
        }
        eprintln!("    WARNING: the bench did not finish; writing the partial results");
    }

    eprintln!("==> [4/4] results");
    if flags.perf {
        let sections = perf::extract(&console);
        let path = out_dir.join(flags.perf_file_name());
        std::fs::write(&path, perf::render(&sections))?;
        println!("{}", perf::summarise(&sections, 15));
        eprintln!(
            "    wrote {} (throughput under perf is lower than without)",
            path.display()
        );
    }
    let json = format!(
        "[\n{}\n]\n",
        results
            .iter()
            .map(|r| format!("  {r}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    std::fs::write(out_dir.join("results.json"), &json)?;
    let table = table(&results);
    println!("{table}");
    std::fs::write(out_dir.join("table.md"), &table)?;
    let svg = chart(&results);
    std::fs::write(out_dir.join("throughput.svg"), &svg)?;
    eprintln!(
        "    wrote {0}/results.json, {0}/table.md, {0}/throughput.svg",
        out_dir.display()
    );
    if flags.update_docs {
        let docs = cmd::workspace_root().join("docs/performance");
        std::fs::create_dir_all(&docs)?;
        std::fs::write(docs.join("throughput.svg"), &svg)?;
        std::fs::write(docs.join("results.json"), &json)?;
        std::fs::write(docs.join("table.md"), &table)?;
        eprintln!(
            "    copied the chart, table and results to {}",
            docs.display()
        );
    }
    eprintln!("bench finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The bar that follows the guest's `bench: [i/n] …` lines (hidden when stderr is not a
/// terminal: then those lines are printed as they come).
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "    [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// One output line of the guest's bench program.
fn show_line(bar: &indicatif::ProgressBar, line: &str) {
    if line.starts_with("@@bench ") {
        // A result: collected at the end.
        return;
    }
    // "bench: [3/21] sourcesink-in 512 B depth 8" or "bench: usbtest [3/14] …".
    let step = line.strip_prefix("bench: ").and_then(|rest| {
        let (phase, rest) = match rest.strip_prefix("usbtest ") {
            Some(r) => ("usbtest ", r),
            None => ("", rest),
        };
        let (counts, what) = rest.strip_prefix('[')?.split_once("] ")?;
        let (i, n) = counts.split_once('/')?;
        Some((
            i.parse::<u64>().ok()?,
            n.parse::<u64>().ok()?,
            format!("{phase}{what}"),
        ))
    });
    match step {
        Some((i, n, what)) if !bar.is_hidden() => {
            bar.set_length(n);
            bar.set_position(i.saturating_sub(1));
            bar.set_message(what);
        }
        // println is a no-op on a hidden bar.
        _ if bar.is_hidden() => eprintln!("       {line}"),
        _ => bar.println(format!("       {line}")),
    }
}

/// Build `libusb-bench` with the system C compiler against libusb-1.0.
fn build_libusb(out_dir: &Path) -> Result<PathBuf> {
    let header = Path::new("/usr/include/libusb-1.0/libusb.h");
    if !header.exists() {
        if !cmd::is_root() {
            bail!("libusb-1.0-0-dev is not installed (apt-get install libusb-1.0-0-dev as root)");
        }
        eprintln!("    installing libusb-1.0-0-dev (apt-get)");
        cmd::run(Command::new("apt-get").args(["install", "-y", "libusb-1.0-0-dev"]))?;
    }
    let cc = cmd::which("cc").ok_or("no C compiler (`cc`) on PATH")?;
    let source = cmd::workspace_root().join("benches/usbdf-bench/c/libusb_bench.c");
    let out = out_dir.join("libusb-bench");
    cmd::run(
        Command::new(cc)
            .args(["-O2", "-g", "-Wall", "-Wextra", "-o"])
            .arg(&out)
            .arg(&source)
            .args(["-I/usr/include/libusb-1.0", "-lusb-1.0"]),
    )?;
    Ok(out)
}

/// One measurement from the guest.
#[derive(Debug, Clone)]
struct Measurement {
    scenario: String,
    size: u64,
    depth: u64,
    imp: String,
    median: f64,
    p99: Option<f64>,
    allocs: Option<f64>,
    raw: serde_json::Value,
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.raw)
    }
}

fn parse_results(console: &[String]) -> Vec<Measurement> {
    console
        .iter()
        .filter_map(|line| {
            let json = &line[line.find("@@bench {")? + "@@bench ".len()..];
            let raw: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
            Some(Measurement {
                scenario: raw["scenario"].as_str()?.to_string(),
                size: raw["size"].as_u64()?,
                depth: raw["depth"].as_u64()?,
                imp: raw["impl"].as_str()?.to_string(),
                median: raw["median"].as_f64()?,
                p99: raw["p99"].as_f64(),
                allocs: raw["allocs_per_request"].as_f64(),
                raw,
            })
        })
        .collect()
}

const IMPLS: [&str; 4] = ["usbdf", "nusb", "libusb", "usbtest"];

fn size_label(size: u64) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// The Markdown ratio table.
fn table(results: &[Measurement]) -> String {
    let mut cells: Vec<(String, u64, u64)> = Vec::new();
    for m in results {
        let key = (m.scenario.clone(), m.size, m.depth);
        if !cells.contains(&key) {
            cells.push(key);
        }
    }
    let find = |cell: &(String, u64, u64), imp: &str| {
        results
            .iter()
            .find(|m| m.scenario == cell.0 && m.size == cell.1 && m.depth == cell.2 && m.imp == imp)
    };
    let num = |m: Option<&Measurement>| m.map_or("–".to_string(), |m| format!("{:.1}", m.median));
    let ratio = |a: Option<&Measurement>, b: Option<&Measurement>| match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}", a.median / b.median),
        _ => "–".to_string(),
    };
    let mut out = String::new();
    out.push_str("| scenario | size | depth | usbdf | nusb | libusb | usbtest | usbdf/nusb | usbdf/libusb | usbdf/usbtest | usbdf allocs/req |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for cell in cells.iter().filter(|c| !c.0.starts_with("latency")) {
        let u = find(cell, "usbdf");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.0,
            size_label(cell.1),
            cell.2,
            num(u),
            num(find(cell, "nusb")),
            num(find(cell, "libusb")),
            num(find(cell, "usbtest")),
            ratio(u, find(cell, "nusb")),
            ratio(u, find(cell, "libusb")),
            ratio(u, find(cell, "usbtest")),
            u.and_then(|m| m.allocs)
                .map_or("–".to_string(), |a| format!("{a:.3}")),
        );
    }
    out.push_str("\nThroughput in MB/s (10^6 B/s), median of the runs.\n\n");
    out.push_str("| scenario | size | depth | usbdf CPU µs/req user + sys | nusb | libusb | switches/req usbdf / nusb / libusb |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for cell in cells.iter().filter(|c| !c.0.starts_with("latency")) {
        let cpu = |imp: &str| {
            find(cell, imp)
                .and_then(|m| {
                    Some((
                        m.raw["cpu_user_us_per_req"].as_f64()?,
                        m.raw["cpu_sys_us_per_req"].as_f64()?,
                    ))
                })
                .map_or("–".to_string(), |(u, s)| format!("{u:.1} + {s:.1}"))
        };
        let sw = |imp: &str| {
            find(cell, imp)
                .and_then(|m| m.raw["switches_per_req"].as_f64())
                .map_or("–".to_string(), |v| format!("{v:.2}"))
        };
        if find(cell, "usbdf").is_some_and(|m| m.raw["cpu_user_us_per_req"].is_null()) {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} / {} |",
            cell.0,
            size_label(cell.1),
            cell.2,
            cpu("usbdf"),
            cpu("nusb"),
            cpu("libusb"),
            sw("usbdf"),
            sw("nusb"),
            sw("libusb"),
        );
    }
    out.push_str("\nCPU time of the measuring process per completed request over the measured window (`getrusage`; under TCG the emulated host controller's work lands on whichever task it interrupts).\n\n");
    out.push_str("| latency | usbdf median / p99 | nusb median / p99 | libusb median / p99 | usbdf/nusb | usbdf/libusb |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for cell in cells.iter().filter(|c| c.0.starts_with("latency")) {
        let show = |m: Option<&Measurement>| {
            m.map_or("–".to_string(), |m| {
                format!("{:.0} / {:.0} µs", m.median, m.p99.unwrap_or(f64::NAN))
            })
        };
        let u = find(cell, "usbdf");
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {} |",
            cell.0,
            size_label(cell.1),
            show(u),
            show(find(cell, "nusb")),
            show(find(cell, "libusb")),
            ratio(u, find(cell, "nusb")),
            ratio(u, find(cell, "libusb")),
        );
    }
    out.push_str("\nLatency ratios: lower is better for usbdf.\n");
    out
}

/// MB/s by transfer size at depth 8, one panel per direction, one line per implementation.
/// Hand-written SVG: no plotting crate and no fonts needed.
fn chart(results: &[Measurement]) -> String {
    const W: f64 = 420.0;
    const H: f64 = 300.0;
    const PAD_L: f64 = 55.0;
    const PAD_B: f64 = 40.0;
    const PAD_T: f64 = 30.0;
    const PAD_R: f64 = 15.0;
    const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#7f7f7f"];
    let panels = ["sourcesink-in", "sourcesink-out", "loopback-echo"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        W * panels.len() as f64,
        H + 30.0
    );
    for (p, scenario) in panels.iter().enumerate() {
        let ox = p as f64 * W;
        let points: Vec<&Measurement> = results
            .iter()
            .filter(|m| m.scenario == *scenario && m.depth == 8)
            .collect();
        let mut sizes: Vec<u64> = points.iter().map(|m| m.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let ymax = points.iter().map(|m| m.median).fold(1.0, f64::max) * 1.1;
        let x = |i: usize| {
            let n = sizes.len().max(2) - 1;
            ox + PAD_L + (W - PAD_L - PAD_R) * (i as f64 / n as f64)
        };
        let y = |v: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - v / ymax);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{} MB/s, depth 8</text>",
            ox + W / 2.0,
            scenario
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/><line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"black\"/>",
            ox + PAD_L,
            PAD_T,
            H - PAD_B,
            ox + W - PAD_R
        );
        for t in 0..=4 {
            let v = ymax * t as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{0}\" y=\"{1}\" text-anchor=\"end\">{2:.0}</text><line x1=\"{3}\" y1=\"{4}\" x2=\"{5}\" y2=\"{4}\" stroke=\"#ddd\"/>",
                ox + PAD_L - 4.0,
                y(v) + 4.0,
                v,
                ox + PAD_L,
                y(v),
                ox + W - PAD_R,
            );
        }
        for (i, size) in sizes.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(i),
                H - PAD_B + 16.0,
                size_label(*size)
            );
        }
        for (k, imp) in IMPLS.iter().enumerate() {
            let line: Vec<(f64, f64)> = sizes
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    points
                        .iter()
                        .find(|m| m.size == *s && m.imp == *imp)
                        .map(|m| (x(i), y(m.median)))
                })
                .collect();
            if line.is_empty() {
                continue;
            }
            let path: Vec<String> = line.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                COLORS[k],
                path.join(" ")
            );
            for (a, b) in &line {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3\" fill=\"{}\"/>",
                    COLORS[k]
                );
            }
        }
    }
    for (k, imp) in IMPLS.iter().enumerate() {
        let lx = 60.0 + k as f64 * 110.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{imp}</text>",
            H + 8.0,
            COLORS[k],
            lx + 18.0,
            H + 13.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_builds_outputs() {
        let console = vec![
            "noise".to_string(),
            r#"@@bench {"scenario":"sourcesink-in","size":65536,"depth":8,"impl":"usbdf","runs":[1,2,3],"median":2.000,"unit":"MB/s","allocs_per_request":0.0000}"#.to_string(),
            r#"@@bench {"scenario":"sourcesink-in","size":65536,"depth":8,"impl":"nusb","runs":[2,2,2],"median":2.000,"unit":"MB/s"}"#.to_string(),
            r#"@@bench {"scenario":"latency-control","size":18,"depth":1,"impl":"usbdf","runs":[300],"median":300.0,"unit":"us","p99_runs":[400],"p99":400.0}"#.to_string(),
        ];
        let results = parse_results(&console);
        assert_eq!(results.len(), 3);
        let t = table(&results);
        assert!(
            t.contains("| sourcesink-in | 64 KiB | 8 | 2.0 | 2.0 | – | – | 1.00 |"),
            "{t}"
        );
        assert!(t.contains("300 / 400 µs"), "{t}");
        assert!(chart(&results).contains("<polyline"));
    }
}
