//! Command-line flags of each task (hand-parsed: a handful of flags needs no parser crate).

use std::path::PathBuf;

use crate::cmd::{bail, Result};

/// `cargo xtask help`.
pub const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--no-vm | --vm-only] [--no-fuzz] [--keep-console <path>] [<filter>...] [-- <libtest args>...]
      fmt check, clippy, doc, cargo test, bounded fuzzing (20 s per fuzz target), then the
      real-gadget suite in a qemu VM. <filter> and libtest args go to the in-VM test binaries.
  fuzz [--seconds <n>] [<target>...]
      run the cargo-fuzz targets in fuzz/ (all, or those named) for <n> seconds each
      (default 300), keeping the new corpus under target/fuzz/corpus/.
  soak --minutes <n> [--vm]
      race soaks with fresh seeds (simulator; with --vm also the real Loopback/SourceSink).
  bench [--quick] [--runs <n>] [--update-docs] (see `cargo xtask bench --help`)
      throughput and latency: usbdf vs nusb, libusb, kernel usbtest, in the gadget VM.
  gadgets --print | up | down
      print the configfs steps that build the VM's gadgets, or run them on this host
      (needs root and a kernel with dummy_hcd or a real UDC).

environment: USBDF_VM_TIMEOUT_SECS, USBDF_VM_KERNEL, USBDF_VM_MODULES, USBDF_VM_BUSYBOX,
             USBDF_VM_UDEVADM (see docs/testing.md)
";

/// `cargo xtask test` options.
#[derive(Debug, Default)]
pub struct Test {
    /// Skip the VM suite.
    pub no_vm: bool,
    /// Run only the VM suite.
    pub vm_only: bool,
    /// Skip the bounded fuzzing step.
    pub no_fuzz: bool,
    /// Save the VM's console log here.
    pub keep_console: Option<PathBuf>,
    /// Arguments for the in-VM libtest binaries (filters, `--exact`, ...).
    pub test_args: Vec<String>,
}

impl Test {
    /// Parse the arguments after `test`.
    pub fn parse(args: &[String]) -> Result<Test> {
        let mut flags = Test::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--no-vm" => flags.no_vm = true,
                "--vm-only" => flags.vm_only = true,
                "--no-fuzz" => flags.no_fuzz = true,
                "--keep-console" => match args.next() {
                    Some(path) => flags.keep_console = Some(PathBuf::from(path)),
                    None => bail!("--keep-console needs a path"),
                },
                "--" => flags.test_args.extend(args.by_ref().cloned()),
                flag if flag.starts_with("--") => bail!("unknown flag `{flag}`\n\n{USAGE}"),
                filter => flags.test_args.push(filter.to_string()),
            }
        }
        if flags.no_vm && flags.vm_only {
            bail!("--no-vm and --vm-only exclude each other");
        }
        Ok(flags)
    }
}

/// What `cargo xtask gadgets` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gadgets {
    /// Print the steps as shell commands.
    Print,
    /// Load the modules, create and bind every gadget on this host.
    Up,
    /// Unbind and remove every gadget.
    Down,
}

impl Gadgets {
    /// Parse the arguments after `gadgets`.
    pub fn parse(args: &[String]) -> Result<Gadgets> {
        match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["--print"] | ["print"] => Ok(Gadgets::Print),
            ["up"] => Ok(Gadgets::Up),
            ["down"] => Ok(Gadgets::Down),
            _ => bail!("usage: cargo xtask gadgets --print | up | down"),
        }
    }
}

/// `cargo xtask fuzz` options.
#[derive(Debug, PartialEq, Eq)]
pub struct Fuzz {
    /// Seconds per target.
    pub seconds: u64,
    /// Targets named; empty: all.
    pub targets: Vec<String>,
}

/// Default seconds per target of `cargo xtask fuzz`.
pub const FUZZ_DEFAULT_SECONDS: u64 = 300;

impl Fuzz {
    /// Parse the arguments after `fuzz`.
    pub fn parse(args: &[String]) -> Result<Fuzz> {
        let mut flags = Fuzz {
            seconds: FUZZ_DEFAULT_SECONDS,
            targets: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--seconds" => match args.next().map(|s| s.parse::<u64>()) {
                    Some(Ok(n)) if n > 0 => flags.seconds = n,
                    _ => bail!("--seconds needs a positive number"),
                },
                flag if flag.starts_with("--") => bail!("unknown flag `{flag}`\n\n{USAGE}"),
                target => flags.targets.push(target.to_string()),
            }
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn fuzz_flags() {
        assert_eq!(
            Fuzz::parse(&args("")).unwrap(),
            Fuzz {
                seconds: FUZZ_DEFAULT_SECONDS,
                targets: vec![]
            }
        );
        assert_eq!(
            Fuzz::parse(&args("--seconds 60 bos_descriptor")).unwrap(),
            Fuzz {
                seconds: 60,
                targets: vec!["bos_descriptor".into()]
            }
        );
        assert!(Fuzz::parse(&args("--seconds 0")).is_err());
        assert!(Fuzz::parse(&args("--seconds")).is_err());
        assert!(Test::parse(&args("--no-fuzz")).unwrap().no_fuzz);
    }
}
