//! Time-boxed fuzzing of the cargo-fuzz targets in `fuzz/` (its own cargo root, not in the
//! workspace): a step of `cargo xtask test`, and `cargo xtask fuzz` for longer runs.
//!
//! Per target: `cargo +nightly fuzz run <target> <scratch corpus> fuzz/corpus/<target> --
//! -max_total_time=<s> -rss_limit_mb=2048`. The committed seeds are only read; new inputs go
//! to a scratch corpus under `target/fuzz/corpus/<target>` (fresh in CI, kept by
//! `cargo xtask fuzz` so longer runs build on each other) and crash inputs to
//! `target/fuzz/artifacts/<target>/`, so a run never dirties the tree. Everything is built
//! once (`cargo fuzz build`) into `target/fuzz`, then the targets run in parallel, one per
//! core.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{self, bail, Result};

/// Seconds per target in `cargo xtask test`.
pub const CI_SECONDS: u64 = 20;
/// libFuzzer's memory limit per target.
const RSS_LIMIT_MB: u32 = 2048;
/// Output lines shown when a target fails.
const TAIL_LINES: usize = 40;
/// No sanitizer: the targets fuzz safe Rust, where AddressSanitizer finds nothing the
/// panics and debug assertions (overflow checks) do not, while it made the build ≈ 2× and
/// the runs ≈ 3× slower. Coverage guidance and `-Cdebug-assertions` stay.
const SANITIZER: &str = "none";

/// What to fuzz and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Seconds per target.
    pub seconds: u64,
    /// Targets to run; empty: all of them.
    pub targets: Vec<String>,
    /// Start from the committed seeds only (CI), or keep the scratch corpus of earlier runs.
    pub fresh_corpus: bool,
}

/// The outcome of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRun {
    /// The target.
    pub target: String,
    /// Inputs executed (libFuzzer's final count), if it printed one.
    pub execs: Option<u64>,
    /// Wall time.
    pub elapsed: Duration,
}

fn fuzz_dir() -> PathBuf {
    cmd::workspace_root().join("fuzz")
}

fn scratch_dir() -> PathBuf {
    cmd::target_dir().join("fuzz")
}

/// `cargo +nightly <args>` in `fuzz/`, not inheriting the toolchain this xtask runs on.
fn nightly_cargo(args: &[&str]) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .args(args)
        .current_dir(fuzz_dir())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    command
}

/// Make sure the nightly toolchain and `cargo fuzz` are there; install cargo-fuzz from the
/// package registry if it is missing. Never skips: a missing piece is an error.
fn ensure_tools() -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !nightly.is_ok_and(|s| s.success()) {
        bail!(
            "fuzzing needs the nightly toolchain (cargo-fuzz uses -Zsanitizer options): \
             `rustup toolchain install nightly --profile minimal`"
        );
    }
    let present = nightly_cargo(&["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("    cargo-fuzz is missing: cargo install cargo-fuzz --locked");
    let mut install = Command::new("cargo");
    install.args(["install", "cargo-fuzz", "--locked"]);
    if let Err(e) = cmd::run(&mut install) {
        bail!(
            "installing cargo-fuzz failed ({e}); the fuzz step cannot run. Install it by \
             hand (`cargo install cargo-fuzz --locked`, needs the crates.io registry) and \
             run again"
        );
    }
    Ok(())
}

/// The targets `cargo fuzz list` reports.
fn list_targets() -> Result<Vec<String>> {
    let out = cmd::output(&mut nightly_cargo(&["fuzz", "list"]))?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Build every target once (the runs then find them up to date).
fn build() -> Result<()> {
    let target_dir = scratch_dir();
    let target_dir = target_dir.to_string_lossy();
    let mut build = nightly_cargo(&[
        "fuzz",
        "build",
        "--sanitizer",
        SANITIZER,
        "--target-dir",
        &target_dir,
    ]);
    cmd::run(&mut build)
}

/// Copy the files of `from` into `to` (created; flat, as cargo-fuzz corpora are).
fn copy_corpus(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    if !from.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The number of inputs libFuzzer executed, from its final output:
/// `stat::number_of_executed_units: N` (with `-print_final_stats=1`), else `#N\tDONE`.
pub fn parse_execs(output: &str) -> Option<u64> {
    let stat = output.lines().find_map(|l| {
        l.trim()
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    });
    stat.or_else(|| {
        output.lines().rev().find_map(|l| {
            let (count, rest) = l
                .trim()
                .strip_prefix('#')?
                .split_once(char::is_whitespace)?;
            if rest.trim_start().starts_with("DONE") {
                count.parse().ok()
            } else {
                None
            }
        })
    })
}

/// Run one target for `seconds`, output captured; an error carries its tail.
fn run_target(target: &str, seconds: u64, fresh: bool) -> Result<TargetRun> {
    let corpus = scratch_dir().join("corpus").join(target);
    let artifacts = scratch_dir().join("artifacts").join(target);
    if fresh && corpus.exists() {
        fs::remove_dir_all(&corpus)?;
    }
    copy_corpus(&fuzz_dir().join("corpus").join(target), &corpus)?;
    fs::create_dir_all(&artifacts)?;
    let target_dir = scratch_dir();
    let mut command = nightly_cargo(&["fuzz", "run", "--sanitizer", SANITIZER]);
    command
        .arg("--target-dir")
        .arg(&target_dir)
        .arg(target)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = command
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", cmd::display(&command)))?;
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        bail!(
            "fuzz target `{target}` failed ({}): crash input under {}\n\
             `{}` said (last {TAIL_LINES} lines):\n{tail}",
            out.status,
            artifacts.display(),
            cmd::display(&command)
        );
    }
    Ok(TargetRun {
        target: target.to_string(),
        execs: parse_execs(&text),
        elapsed,
    })
}

/// Build, then run the targets in parallel (one per core), printing each one's executions.
pub fn run(options: &Options) -> Result<Vec<TargetRun>> {
    ensure_tools()?;
    let all = list_targets()?;
    let targets = if options.targets.is_empty() {
        all
    } else {
        for t in &options.targets {
            if !all.contains(t) {
                bail!("no fuzz target `{t}` (there are: {})", all.join(", "));
            }
        }
        options.targets.clone()
    };
    let t = Instant::now();
    build()?;
    eprintln!("    fuzz: built in {:.1} s", t.elapsed().as_secs_f64());

    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for chunk in targets.chunks(jobs) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|target| {
                let target = target.clone();
                let (seconds, fresh) = (options.seconds, options.fresh_corpus);
                std::thread::spawn(move || {
                    run_target(&target, seconds, fresh).map_err(|e| e.to_string())
                })
            })
            .collect();
        for handle in handles {
            match handle.join().expect("fuzz runner thread") {
                Ok(run) => {
                    let execs = run.execs.map_or("? (no final stats)".to_string(), |n| {
                        format!(
                            "{n} executions ({:.0}/s)",
                            n as f64 / run.elapsed.as_secs_f64()
                        )
                    });
                    eprintln!(
                        "    fuzz: {}: {execs} in {:.1} s",
                        run.target,
                        run.elapsed.as_secs_f64()
                    );
                    results.push(run);
                }
                Err(e) => {
                    eprintln!("    fuzz: {e}");
                    failures.push(e);
                }
            }
        }
    }
    eprintln!(
        "    fuzz: {} targets × {} s ran in {:.1} s ({jobs} at a time)",
        targets.len(),
        options.seconds,
        t.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        bail!("{} fuzz target(s) failed", failures.len());
    }
    if let Some(missing) = results.iter().find(|r| r.execs.is_none()) {
        bail!(
            "fuzz target `{}` printed no final statistics: did it run?",
            missing.target
        );
    }
    Ok(results)
}

/// `cargo xtask fuzz [--seconds N] [target...]`.
pub fn task(args: &[String]) -> Result<()> {
    let options = crate::flags::Fuzz::parse(args)?;
    run(&Options {
        seconds: options.seconds,
        targets: options.targets,
        fresh_corpus: false,
    })?;
    eprintln!(
        "    fuzz: new inputs are in {}; merge the interesting ones into fuzz/corpus/ with \
         `cargo +nightly fuzz cmin`",
        scratch_dir().join("corpus").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_come_from_libfuzzers_final_lines() {
        let out = "#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #65536\tpulse  cov: 80 ft: 200 corp: 40/900b lim: 4 exec/s: 32768 rss: 40Mb\n\
                   #701234\tDONE   cov: 90 ft: 250 corp: 44/1000b lim: 4 exec/s: 35061 rss: 41Mb\n\
                   Done 701234 runs in 21 second(s)\n";
        assert_eq!(parse_execs(out), Some(701_234));
        let with_stats = format!("{out}stat::number_of_executed_units: 701240\n");
        assert_eq!(parse_execs(&with_stats), Some(701_240));
        assert_eq!(
            parse_execs("INFO: Running with entropic power schedule\n"),
            None
        );
    }
}
