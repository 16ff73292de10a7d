//! `cargo xtask soak`: the reliability soaks for as long as asked.
//!
//! * the simulator race soak (`framework/tests/soak_races.rs`, release build) in a loop, a
//!   fresh seed each time, until the time is up;
//! * with `--vm`, the VM race soak (`tests/tests/vm_soak.rs`) once with a longer bound, and the
//!   usbfs-memory test of `vm_faults` (it sets usbfs_memory_mb through sysfs itself).
//!
//! Settings reach the in-VM test binaries through the kernel command line: `NAME=value` words
//! the kernel does not know become /init's environment, which the agent's children inherit
//! (`USBDF_VM_APPEND`, read by `vm::qemu`).
//!
//! Prints totals: rounds, cancels, timeouts, races won by completion, bytes verified, bytes lost.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{self, bail, Result};
use crate::vm;

const USAGE: &str = "\
usage: cargo xtask soak [--minutes N] [--rounds R] [--seed S] [--vm]
  --minutes N          total time (default 1); with --vm, half of it goes to the VM soak
                       (at most 240 s: the agent's per-binary limit)
  --rounds R           rounds per simulator iteration (default 20000)
  --seed S             first seed (then S+1, S+2, ...); default from the clock
  --vm                 also run the VM soak (tests/tests/vm_soak.rs) and the usbfs test
";

#[derive(Debug)]
struct Flags {
    minutes: f64,
    rounds: u64,
    seed: Option<u64>,
    vm: bool,
}

fn parse(args: &[String]) -> Result<Flags> {
    let mut f = Flags {
        minutes: 1.0,
        rounds: 20_000,
        seed: None,
        vm: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            match it.next() {
                Some(v) => Ok(v.clone()),
                None => bail!("{name} needs a value\n\n{USAGE}"),
            }
        };
        match a.as_str() {
            "--minutes" => f.minutes = value("--minutes")?.parse()?,
            "--rounds" => f.rounds = value("--rounds")?.parse()?,
            "--seed" => f.seed = Some(value("--seed")?.parse()?),
            "--vm" => f.vm = true,
            "-h" | "--help" => {
                eprint!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if f.minutes.is_nan() || f.minutes <= 0.0 {
        bail!("--minutes must be positive");
    }
    Ok(f)
}

/// Counts summed over the runs, parsed from the soak's report lines.
#[derive(Debug, Default)]
struct Totals {
    runs: u64,
    rounds: u64,
    completions: u64,
    duplicates: u64,
    cancels: u64,
    timed_out: u64,
    races: u64,
    bytes: u64,
    lost: u64,
}

/// The number after `key` in `line`.
fn field(line: &str, key: &str) -> u64 {
    line.split(key)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl Totals {
    /// Add every soak report line (`... seed N | rounds ...`) of `text`.
    fn add(&mut self, text: &str) {
        for line in text.lines().filter(|l| l.contains("| rounds ")) {
            self.runs += 1;
            self.rounds += field(line, "| rounds ");
            self.completions += field(line, " completions ");
            self.duplicates += field(line, " duplicates ");
            self.cancels += field(line, "| cancels ");
            self.timed_out += field(line, "(timed out ");
            self.races += field(line, "races won by completion ");
            self.bytes += field(line, "bytes verified ");
            self.lost += field(line, " lost ");
        }
    }

    fn print(&self, what: &str) {
        println!(
            "soak totals ({what}): {} runs, {} rounds, {} completions, {} duplicates, {} cancels, \
             {} timed out, {} races won by completion, {} bytes verified, {} bytes lost",
            self.runs,
            self.rounds,
            self.completions,
            self.duplicates,
            self.cancels,
            self.timed_out,
            self.races,
            self.bytes,
            self.lost
        );
    }
}

/// Run the task.
pub fn run(args: &[String]) -> Result<()> {
    let flags = parse(args)?;
    let total = Duration::from_secs_f64(flags.minutes * 60.0);
    let vm_secs = if flags.vm {
        (total.as_secs() / 2).clamp(30, 240)
    } else {
        0
    };
    let sim_budget = total.saturating_sub(Duration::from_secs(vm_secs));
    let mut seed = flags.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut failed = Vec::new();

    // simulator: build once, then loop with fresh seeds
    eprintln!(
        "==> soak: simulator race soak for {:.0} s",
        sim_budget.as_secs_f64()
    );
    let test = |seed: u64| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(cmd::workspace_root())
            .args(["test", "--release", "-p", "usbdf", "--test", "soak_races"])
            .args(["--", "--nocapture", "--test-threads=2"])
            .env("USBDF_SOAK_SEED", seed.to_string())
            .env("USBDF_SOAK_ROUNDS", flags.rounds.to_string());
        c
    };
    cmd::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(cmd::workspace_root())
            .args([
                "test",
                "--release",
                "-p",
                "usbdf",
                "--test",
                "soak_races",
                "--no-run",
            ]),
    )?;
    let mut sim = Totals::default();
    let start = Instant::now();
    while start.elapsed() < sim_budget || sim.runs == 0 {
        let out = test(seed).output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        for line in text.lines().filter(|l| l.contains("| rounds ")) {
            eprintln!("   {line}");
        }
        sim.add(&text);
        if !out.status.success() {
            eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
            failed.push(format!("simulator soak, USBDF_SOAK_SEED={seed}"));
            break;
        }
        seed = seed.wrapping_add(1);
    }
    sim.print("simulator");

    if flags.vm {
        // (`usbcore.usbfs_memory_mb=` here would not work: the agent loads usbcore with
        // finit_module, which does not read the kernel command line; the usbfs test sets the
        // parameter through sysfs at run time instead.)
        let append = format!("USBDF_SOAK_SECS={vm_secs} USBDF_SOAK_SEED={seed}");
        eprintln!("==> soak: VM race soak for {vm_secs} s (kernel command line += {append})");
        // Safety of set_var: single-threaded here; the VM runner reads these.
        std::env::set_var("USBDF_VM_APPEND", &append);
        if std::env::var_os("USBDF_VM_TIMEOUT_SECS").is_none() {
            std::env::set_var("USBDF_VM_TIMEOUT_SECS", (vm_secs + 240).to_string());
        }
        let console = cmd::target_dir().join("soak-vm-console.log");
        let summary = vm::run(&vm::Options {
            keep_console: Some(console.clone()),
            test_args: vec![
                "soak_races".into(),
                "usbfs_memory".into(),
                "--nocapture".into(),
            ],
        })?;
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        let mut vm_totals = Totals::default();
        vm_totals.add(&text);
        vm_totals.print("VM");
        for line in text.lines().filter(|l| l.contains("usbfs_memory_mb")) {
            println!("{}", line.trim());
        }
        if !summary.ok {
            failed.push(format!("VM soak (console: {})", console.display()));
        }
    }
    if !failed.is_empty() {
        bail!("soak failed: {}", failed.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_parse_the_report_line() {
        let mut t = Totals::default();
        t.add(
            "x: seed 7 | rounds 14303 completions 14303 duplicates 0 | cancels 3663 (cancelled \
             3576, not-pending 2190, already-requested 308) | timeouts set 2893 (timed out 475) \
             | partial 1 | races won by completion 4463 | bytes verified 19188413 lost 0 | 1s",
        );
        assert_eq!(
            (
                t.runs,
                t.rounds,
                t.cancels,
                t.timed_out,
                t.races,
                t.bytes,
                t.lost
            ),
            (1, 14303, 3663, 475, 4463, 19188413, 0)
        );
    }

    #[test]
    fn flags() {
        let f = parse(&["--minutes".into(), "2".into(), "--vm".into()]).unwrap();
        assert!(f.vm && f.minutes == 2.0);
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
