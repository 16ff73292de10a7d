//! `cargo xtask test`: every check CI runs, in order, failing fast.
//!
//! 1. `cargo fmt --all --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`, and again for the
//!    feature-gated VM tests (`-p usbdf-tests --features vm`)
//! 3. `cargo doc --workspace --no-deps` with `RUSTDOCFLAGS=-D warnings`
//! 4. `cargo test --workspace` (simulator-backed)
//! 5. the loom model of the engine's notify protocol (`RUSTFLAGS=--cfg loom`)
//! 6. bounded fuzzing: every cargo-fuzz target for 20 s (`crate::fuzz`)
//! 7. the VM suite (`crate::vm`)

use std::process::Command;
use std::time::Instant;

use crate::cmd::{self, bail, Result};
use crate::flags;
use crate::fuzz;
use crate::vm;

struct Step {
    title: &'static str,
    command: Command,
}

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(args).current_dir(cmd::workspace_root());
    command
}

fn host_steps() -> Vec<Step> {
    let mut doc = cargo(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    // `--cfg loom` rebuilds the crate graph: keep it in its own target dir.
    let mut loom = cargo(&[
        "test",
        "-p",
        "usbdf",
        "--lib",
        "--target-dir",
        "target/loom",
        "engine::notify",
    ]);
    loom.env("RUSTFLAGS", "--cfg loom");
    vec![
        Step {
            title: "format",
            command: cargo(&["fmt", "--all", "--check"]),
        },
        Step {
            title: "clippy",
            command: cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            title: "clippy (VM tests)",
            command: cargo(&[
                "clippy",
                "-p",
                "usbdf-tests",
                "--features",
                "vm",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            title: "doc (RUSTDOCFLAGS=-D warnings)",
            command: doc,
        },
        Step {
            title: "test",
            command: cargo(&["test", "--workspace"]),
        },
        Step {
            title: "loom model of the engine's notify protocol",
            command: loom,
        },
    ]
}

/// Run the task.
pub fn run(args: &[String]) -> Result<()> {
    let flags = flags::Test::parse(args)?;
    let started = Instant::now();
    let mut steps = if flags.vm_only {
        Vec::new()
    } else {
        host_steps()
    };
    let fuzzing = !flags.vm_only && !flags.no_fuzz;
    let total = steps.len() + usize::from(fuzzing) + usize::from(!flags.no_vm);

    for (i, step) in steps.iter_mut().enumerate() {
        eprintln!(
            "==> [{}/{total}] {}: {}",
            i + 1,
            step.title,
            cmd::display(&step.command)
        );
        let t = Instant::now();
        let result = cmd::run(&mut step.command);
        eprintln!(
            "    {} in {:.1} s",
            if result.is_ok() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        result?;
    }

    if fuzzing {
        eprintln!(
            "==> [{}/{total}] fuzz: each cargo-fuzz target for {} s \
             (cargo +nightly fuzz run <target> ... -- -max_total_time={})",
            steps.len() + 1,
            fuzz::CI_SECONDS,
            fuzz::CI_SECONDS
        );
        let t = Instant::now();
        let result = fuzz::run(&fuzz::Options {
            seconds: fuzz::CI_SECONDS,
            targets: Vec::new(),
            fresh_corpus: true,
        });
        eprintln!(
            "    {} in {:.1} s",
            if result.is_ok() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        result?;
    }

    if !flags.no_vm {
        eprintln!("==> [{total}/{total}] VM suite (real gadgets on dummy_hcd in qemu)");
        let t = Instant::now();
        let summary = vm::run(&vm::Options {
            keep_console: flags.keep_console.clone(),
            test_args: flags.test_args,
        })?;
        let secs = t.elapsed().as_secs_f64();
        if let Some(ready) = summary.ready_after {
            eprintln!("    boot to gadgets ready: {:.1} s", ready.as_secs_f64());
        }
        eprintln!("    VM suite total: {secs:.1} s");
        let unfinished = match summary.unfinished {
            0 => String::new(),
            1 => "; 1 test binary without a result".to_string(),
            n => format!("; {n} test binaries without a result"),
        };
        println!(
            "test result: {}. {} passed; {} failed{unfinished} (VM suite, {secs:.1} s)",
            if summary.ok { "ok" } else { "FAILED" },
            summary.passed,
            summary.failed
        );
        if !summary.ok {
            bail!("the VM suite failed");
        }
    }
    eprintln!(
        "all steps passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
