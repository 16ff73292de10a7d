//! `cargo xtask gadgets`: the VM's gadgets on this host (or printed as shell).
//!
//! `--print` shows the exact steps the guest agent performs; `up` performs them here
//! (modprobe instead of insmod), so the `vm_*` test binaries can run against a host
//! kernel's dummy_hcd with `USBDF_IN_VM=1`; `down` undoes it.

use std::path::Path;
use std::process::Command;

use crate::cmd::{self, bail, Result};
use crate::flags;
use crate::layout::{BOOT_MODULES, CONFIGFS_GADGETS, GADGETS};
use crate::vm::configfs;

/// Run the task.
pub fn run(args: &[String]) -> Result<()> {
    match flags::Gadgets::parse(args)? {
        flags::Gadgets::Print => {
            print!("{}", script());
            Ok(())
        }
        flags::Gadgets::Up => up(),
        flags::Gadgets::Down => down(),
    }
}

fn modprobe_lines() -> Vec<String> {
    BOOT_MODULES
        .iter()
        .map(|m| {
            format!("modprobe {} {}", m.file, m.params)
                .trim_end()
                .to_string()
        })
        .collect()
}

/// The whole bring-up as a shell script.
fn script() -> String {
    let mut out = String::from(
        "# usbdf VM gadgets: what the guest agent does (it uses insmod, in this order)\n",
    );
    for line in modprobe_lines() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config\n");
    for gadget in &GADGETS {
        out.push_str(&format!(
            "# {} {:04x}:{:04x} on {}\n",
            gadget.name, gadget.vendor_id, gadget.product_id, gadget.udc
        ));
        for step in configfs::create(gadget) {
            out.push_str(&format!("{step}\n"));
        }
        out.push_str(&format!("{}\n", configfs::bind(gadget)));
    }
    out
}

fn up() -> Result<()> {
    if !cmd::is_root() {
        bail!("`cargo xtask gadgets up` writes configfs and loads modules: run it as root");
    }
    for module in BOOT_MODULES {
        let mut modprobe = Command::new("modprobe");
        modprobe
            .arg(module.file)
            .args(module.params.split_whitespace());
        cmd::run(&mut modprobe)?;
    }
    if !Path::new(CONFIGFS_GADGETS).exists() {
        cmd::run(Command::new("mount").args(["-t", "configfs", "none", "/sys/kernel/config"]))?;
    }
    for gadget in &GADGETS {
        for step in configfs::create(gadget) {
            step.apply()?;
        }
        configfs::bind(gadget).apply()?;
        eprintln!(
            "{} {:04x}:{:04x} bound to {}",
            gadget.name, gadget.vendor_id, gadget.product_id, gadget.udc
        );
    }
    Ok(())
}

fn down() -> Result<()> {
    for gadget in &GADGETS {
        if !Path::new(CONFIGFS_GADGETS).join(gadget.name).exists() {
            continue;
        }
        // Unbinding an unbound gadget fails; that is fine.
        let _ = configfs::unbind(gadget).apply();
        for step in configfs::remove(gadget) {
            step.apply()?;
        }
        eprintln!("{} removed", gadget.name);
    }
    Ok(())
}
