//! Provisioning: everything the VM needs that does not come from this workspace, cached
//! under `target/vm/` (nothing is downloaded twice).
//!
//! | what | from | override |
//! |---|---|---|
//! | `qemu-system-x86_64`, `xz` | host packages (installed with apt when root) | — |
//! | busybox | `busybox-static` (downloaded, unpacked) | `USBDF_VM_BUSYBOX` |
//! | `udevadm` (guest `systemd-udevd`) | `udev` (downloaded, unpacked) | `USBDF_VM_UDEVADM` |
//! | kernel + modules | `linux-image-<abi>-amd64-unsigned` | `USBDF_VM_KERNEL`, `USBDF_VM_MODULES` |
//! | `perf` (`bench --perf` only, see [`perf`]) | host package `linux-perf` (installed with apt when root) | `USBDF_VM_PERF` |

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{apt, kernel};
use crate::cmd::{self, bail, Result};
use crate::layout::{Module, BOOT_MODULES, EXTRA_MODULES};

/// Everything provisioned for one VM run.
#[derive(Debug)]
pub struct Assets {
    /// The emulator.
    pub qemu: PathBuf,
    /// Uncompressed kernel ELF (booted through its PVH entry).
    pub vmlinux: PathBuf,
    /// Every module of [`BOOT_MODULES`] and [`EXTRA_MODULES`] with its `.ko` file.
    pub modules: Vec<(Module, PathBuf)>,
    /// A statically linked busybox.
    pub busybox: PathBuf,
    /// `udevadm`, which runs as `systemd-udevd` when called by that name.
    pub udevadm: PathBuf,
}

/// Provision every asset into `cache` (normally `target/vm`).
pub fn provision(cache: &Path) -> Result<Assets> {
    let qemu = apt::ensure_tool("qemu-system-x86_64", "qemu-system-x86")?;
    let names: Vec<&str> = BOOT_MODULES
        .iter()
        .chain(EXTRA_MODULES)
        .map(|m| m.file)
        .collect();
    let kernel = kernel::provision(cache, &names)?;
    let modules = BOOT_MODULES
        .iter()
        .chain(EXTRA_MODULES)
        .map(|m| Ok((*m, kernel::find_module(&kernel.modules_dir, m.file)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Assets {
        qemu,
        vmlinux: kernel.vmlinux,
        modules,
        busybox: busybox(cache)?,
        udevadm: udevadm(cache)?,
    })
}

fn busybox(cache: &Path) -> Result<PathBuf> {
    if let Some(path) = env::var_os("USBDF_VM_BUSYBOX") {
        return Ok(PathBuf::from(path));
    }
    let deb = apt::download("busybox-static", &cache.join("debs"))?;
    let dir = cache.join("busybox");
    apt::unpack(&deb, &dir)?;
    find_program(&dir, "busybox")
}

fn udevadm(cache: &Path) -> Result<PathBuf> {
    if let Some(path) = env::var_os("USBDF_VM_UDEVADM") {
        return Ok(PathBuf::from(path));
    }
    let deb = apt::download("udev", &cache.join("debs"))?;
    let dir = cache.join("udev");
    apt::unpack(&deb, &dir)?;
    let udevadm = find_program(&dir, "udevadm")?;
    // The image takes udevadm's shared libraries from the host: make sure they are there.
    if missing_libraries(&udevadm)? {
        if !cmd::is_root() {
            bail!(
                "udevadm's shared libraries are missing on this host (see `ldd {}`): install \
                 the library packages `dpkg-deb -f {} Depends` lists",
                udevadm.display(),
                deb.display()
            );
        }
        let libs: Vec<String> = apt::depends(&deb)?
            .into_iter()
            .filter(|d| d.starts_with("lib"))
            .collect();
        eprintln!(
            "   provisioning: installing udev's libraries: {}",
            libs.join(" ")
        );
        apt::install(&libs.iter().map(String::as_str).collect::<Vec<_>>())?;
        if missing_libraries(&udevadm)? {
            bail!(
                "udevadm still misses shared libraries after installing {}",
                libs.join(" ")
            );
        }
    }
    Ok(udevadm)
}

fn missing_libraries(elf: &Path) -> Result<bool> {
    let out = cmd::output(Command::new("ldd").arg(elf))?;
    Ok(out.contains("not found"))
}

/// Find the program `name` in the usual `bin` directories of an unpacked package.
fn find_program(dir: &Path, name: &str) -> Result<PathBuf> {
    ["bin", "usr/bin", "sbin", "usr/sbin"]
        .iter()
        .map(|sub| dir.join(sub).join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("no program `{name}` in {}", dir.display()).into())
}

/// Find a regular file named `name` anywhere below `dir`.
pub fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    fn walk(dir: &Path, name: &str) -> std::io::Result<Option<PathBuf>> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                if let Some(found) = walk(&path, name)? {
                    return Ok(Some(found));
                }
            } else if kind.is_file() && entry.file_name() == name {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }
    walk(dir, name)?.ok_or_else(|| format!("no `{name}` under {}", dir.display()).into())
}

/// The `perf` executable for the guest (`cargo xtask bench --perf`): Debian's `linux-perf`
/// on the host (installed with apt when missing and we are root), packed with its shared
/// libraries like udevadm. The guest kernel is Debian's 6.1, like bookworm's `linux-perf`.
///
/// Depending on the package version the ELF is `/usr/bin/perf_<version>` (with
/// `/usr/bin/perf` a version-dispatching script from linux-base) or `/usr/bin/perf` itself.
pub fn perf() -> Result<PathBuf> {
    if let Some(path) = env::var_os("USBDF_VM_PERF") {
        return Ok(PathBuf::from(path));
    }
    if find_perf().is_none() {
        if !cmd::is_root() || cmd::which("apt-get").is_none() {
            bail!(
                "`perf` is missing: install the `linux-perf` package (Debian: `sudo apt-get \
                 install linux-perf`) or point USBDF_VM_PERF at a perf executable"
            );
        }
        eprintln!("   provisioning: installing linux-perf (for the guest's `perf`)");
        apt::install(&["linux-perf"])?;
    }
    let perf = find_perf().ok_or("installed linux-perf but found no perf executable")?;
    if missing_libraries(&perf)? {
        bail!(
            "perf's shared libraries are missing on this host (see `ldd {}`)",
            perf.display()
        );
    }
    Ok(perf)
}

/// The perf ELF on the host: `/usr/bin/perf_*` (newest name first), else `/usr/bin/perf`
/// when it is an ELF rather than the wrapper script.
fn find_perf() -> Option<PathBuf> {
    let is_elf = |path: &Path| {
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && magic == *b"\x7fELF"
    };
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("perf_") && n[5..].starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .collect();
    versioned.sort();
    versioned
        .into_iter()
        .rev()
        .chain([PathBuf::from("/usr/bin/perf")])
        .find(|p| is_elf(p))
}
