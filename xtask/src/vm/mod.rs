//! The real-gadget VM suite: provision a kernel and tools, build the `vm_*` test
//! binaries, pack them with the agent into an initramfs, boot it in qemu, report.
//!
//! Host side: [`provision`], [`build`], [`initramfs`] (with [`cpio`]), [`qemu`], [`report`].
//! Guest side: [`agent`], which executes [`configfs`] steps for the shared layout.
//! [`protocol`] is what the two say to each other.

pub mod agent;
mod apt;
pub(crate) mod build;
pub mod configfs;
mod cpio;
pub(crate) mod initramfs;
mod kernel;
pub(crate) mod protocol;
pub(crate) mod provision;
pub(crate) mod qemu;
pub(crate) mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cmd::{self, Result};
use protocol::{Plan, TEST_DIR};

/// Default deadline for the whole VM run.
const DEFAULT_TIMEOUT_SECS: u64 = 1200;
/// Longest a single test binary may run inside the VM.
const MAX_BINARY_SECS: u64 = 600;
/// The agent's per-binary deadline leaves the host this much of the run's deadline, so a
/// hung binary is reported by the agent (with the kernel log) before the host watchdog.
const HOST_MARGIN_SECS: u64 = 30;

/// Options for one suite run.
#[derive(Debug, Default)]
pub struct Options {
    /// Save the whole console log here.
    pub keep_console: Option<PathBuf>,
    /// Arguments for every in-VM test binary (filters, ...).
    pub test_args: Vec<String>,
}

/// The outcome of a suite run.
#[derive(Debug)]
pub struct Summary {
    /// Every expected binary passed.
    pub ok: bool,
    /// Tests passed, over all binaries.
    pub passed: u64,
    /// Tests failed, over all binaries.
    pub failed: u64,
    /// Test binaries that printed no `test result:` line (crashed, killed, never ran).
    pub unfinished: usize,
    /// qemu start → all gadgets enumerated.
    pub ready_after: Option<Duration>,
}

/// Run the VM suite.
pub fn run(options: &Options) -> Result<Summary> {
    let cache = cmd::target_dir().join("vm");
    std::fs::create_dir_all(&cache)?;
    let timeout = Duration::from_secs(match std::env::var("USBDF_VM_TIMEOUT_SECS") {
        Ok(secs) => secs
            .parse()
            .map_err(|e| format!("USBDF_VM_TIMEOUT_SECS={secs}: {e}"))?,
        Err(_) => DEFAULT_TIMEOUT_SECS,
    });

    let step = Instant::now();
    eprintln!("   vm: provisioning (cache: {})", cache.display());
    let assets = provision::provision(&cache)?;
    eprintln!(
        "   vm: provisioned in {:.1} s",
        step.elapsed().as_secs_f64()
    );

    let step = Instant::now();
    eprintln!("   vm: building test binaries");
    let tests = build::build_vm_tests()?;
    eprintln!(
        "   vm: built {} in {:.1} s",
        tests
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        step.elapsed().as_secs_f64()
    );

    let step = Instant::now();
    let plan = Plan {
        timeout_secs: timeout
            .as_secs()
            .saturating_sub(HOST_MARGIN_SECS)
            .clamp(10, MAX_BINARY_SECS),
        args: options.test_args.clone(),
        wrapper: Vec::new(),
        tests: tests
            .iter()
            .map(|t| (t.name.clone(), format!("{TEST_DIR}/{}", t.name)))
            .collect(),
    };
    let agent = std::env::current_exe()?;
    let image = cache.join("initramfs.cpio");
    let contents = initramfs::Contents {
        agent: &agent,
        tests: &tests,
        plan: &plan,
        extras: &[],
    };
    let size = initramfs::write(&image, &assets, &contents)?;
    eprintln!(
        "   vm: packed {} ({:.1} MiB) in {:.1} s",
        image.display(),
        size as f64 / (1024.0 * 1024.0),
        step.elapsed().as_secs_f64()
    );

    eprintln!(
        "   vm: booting {} (deadline {} s)",
        assets.vmlinux.display(),
        timeout.as_secs()
    );
    let mut report = report::Report::default();
    let boot = qemu::Boot {
        qemu: &assets.qemu,
        kernel: &assets.vmlinux,
        initrd: &image,
        timeout,
        keep_console: options.keep_console.as_ref(),
        output: None,
    };
    let (end, console) = qemu::run(&boot, &mut report)?;
    let expected: Vec<String> = tests.iter().map(|t| t.name.clone()).collect();
    let ok = report.ok(&expected) && end == qemu::End::Exited;
    if !ok {
        explain_failure(&end, &report, &expected, &console);
    }
    if let Some(path) = &options.keep_console {
        eprintln!("   vm: console log saved to {}", path.display());
    }
    let (passed, failed) = report.counts();
    let unfinished = expected.len()
        - report
            .binaries
            .iter()
            .filter(|b| b.counts.is_some())
            .count();
    Ok(Summary {
        ok,
        passed,
        failed,
        unfinished,
        ready_after: report.ready_after,
    })
}

/// Say why the run failed. Test failures were streamed already; when the VM or a binary
/// died without a verdict, show the console's tail (kernel messages included).
fn explain_failure(
    end: &qemu::End,
    report: &report::Report,
    expected: &[String],
    console: &[String],
) {
    let mut show_tail = !report.done || !report.errors.is_empty();
    if *end == qemu::End::TimedOut {
        eprintln!("   vm: watchdog: the VM did not finish before the deadline; killed it");
    } else if !report.done {
        eprintln!("   vm: the VM stopped before the agent finished");
    }
    for name in expected {
        match report.binaries.iter().find(|b| &b.name == name) {
            None => eprintln!("   vm: {name}: never ran"),
            Some(b) if b.counts.is_none() => {
                eprintln!("   vm: {name}: no `test result:` line (crashed or killed?)");
                show_tail = true;
            }
            Some(_) => {}
        }
    }
    if show_tail && console.is_empty() {
        eprintln!("   vm: the console stayed empty (did qemu start? is the kernel PVH-bootable?)");
    } else if show_tail {
        let tail = &console[console.len().saturating_sub(qemu::TAIL_LINES)..];
        eprintln!("   vm: last {} console lines:", tail.len());
        for line in tail {
            eprintln!("   | {line}");
        }
    }
}
