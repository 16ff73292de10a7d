//! Command-line flags of each task (hand-parsed: a handful of flags needs no parser crate).

use std::path::PathBuf;

use crate::cmd::{bail, Result};

/// `cargo xtask help`.
pub const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--no-vm | --vm-only] [--keep-console <path>] [<filter>...] [-- <libtest args>...]
      fmt check, clippy, doc, cargo test, then the real-gadget suite in a qemu VM.
      <filter> and libtest args go to the in-VM test binaries.
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
