//! libusb 1.0: the `libusb-bench` C program (built by `cargo xtask bench` against Debian's
//! libusb-1.0-0-dev, packed next to this binary), one process per run.

use std::path::PathBuf;
use std::process::Command;

use crate::measure::{Cell, Cpu, Latency, LatencyRun, Run, Scenario};
use crate::{Config, Result};

/// The program, when the image has it.
pub struct Program(PathBuf);

impl Program {
    /// Next to this executable.
    pub fn find() -> Option<Program> {
        let path = std::env::current_exe().ok()?.with_file_name("libusb-bench");
        path.exists().then_some(Program(path))
    }

    fn run(&self, args: &[String]) -> Result<Vec<f64>> {
        let out = Command::new(&self.0).args(args).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "libusb-bench {}: {}: {}{}",
                args.join(" "),
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("result "))
            .ok_or_else(|| format!("libusb-bench: no result line in {text:?}"))?;
        Ok(line
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect())
    }

    /// One throughput run.
    pub fn throughput(&self, cell: &Cell, cfg: &Config) -> Result<Run> {
        let mode = match cell.scenario {
            Scenario::SourceSinkIn => "in",
            Scenario::SourceSinkOut => "out",
            Scenario::LoopbackEcho => "echo-tp",
            _ => return Err("libusb-bench: not a throughput scenario".into()),
        };
        let v = self.run(&[
            mode.to_string(),
            cell.size.to_string(),
            cell.depth.to_string(),
            cfg.warmup.as_millis().to_string(),
            cfg.window.as_millis().to_string(),
        ])?;
        match v.as_slice() {
            [mbps, user_us, sys_us, switches, ..] => Ok(Run {
                mbps: *mbps,
                // Not counted in the C program (it allocates nothing per transfer).
                allocs_per_request: 0.0,
                cpu: Cpu {
                    user_us: *user_us,
                    sys_us: *sys_us,
                    switches: *switches,
                },
            }),
            _ => Err("libusb-bench: bad throughput result".into()),
        }
    }

    /// One latency run.
    pub fn latency(&self, which: Latency, samples: usize) -> Result<LatencyRun> {
        let v = self.run(&[which.mode().to_string(), samples.to_string()])?;
        match v.as_slice() {
            [median, p99, ..] => Ok(LatencyRun {
                median: *median,
                p99: *p99,
            }),
            _ => Err("libusb-bench: bad latency result".into()),
        }
    }
}
