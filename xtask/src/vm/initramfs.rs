//! The VM image: an uncompressed newc initramfs assembled from the provisioned assets,
//! the agent (this binary, as `/init`) and the test binaries.
//!
//! | path | what |
//! |---|---|
//! | `/init` | the agent (`xtask` itself, debug info stripped) |
//! | `/bin/busybox`, `/bin/<applet>` | busybox and its applet links (for humans and tests) |
//! | `/bin/udevadm`, `/lib/systemd/systemd-udevd` | udev (the link name selects the daemon role) |
//! | `/lib/modules/usbdf/*.ko` | the kernel modules, flat |
//! | `/usbdf/plan`, `/usbdf/tests/*` | the plan and the test binaries (debug info stripped) |
//! | extras | tools and files a caller adds (e.g. `perf` and its wrapper for `bench --perf`) |
//! | `/lib*/...` | every shared library `ldd` names for the dynamic executables, and the loader |

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::build::TestBinary;
use super::cpio::CpioWriter;
use super::protocol::{Plan, PLAN_PATH};
use super::provision::Assets;
use crate::cmd::{self, Result};
use crate::layout::MODULE_DIR;

/// What goes into the image besides the provisioned assets.
pub struct Contents<'a> {
    /// The agent executable (becomes `/init`).
    pub agent: &'a Path,
    /// Test binaries, packed as the plan names them.
    pub tests: &'a [TestBinary],
    /// The plan; its test paths must be where `tests` land.
    pub plan: &'a Plan,
    /// Anything else to pack.
    pub extras: &'a [Extra<'a>],
}

/// An additional entry of the image.
#[derive(Debug, Clone, Copy)]
pub enum Extra<'a> {
    /// A host executable, packed as is at `image_path` (absolute); its shared libraries
    /// come along like the test binaries'.
    Program {
        /// Where it lands in the image.
        image_path: &'a str,
        /// The executable on the host.
        host_path: &'a Path,
    },
    /// A file with these contents.
    File {
        /// Where it lands in the image.
        image_path: &'a str,
        /// Permission bits.
        mode: u32,
        /// The contents.
        data: &'a [u8],
    },
}

/// Write the image to `out`; returns its size in bytes.
pub fn write(out: &Path, assets: &Assets, contents: &Contents<'_>) -> Result<u64> {
    let tmp = out.with_extension("tmp");
    let mut cpio = CpioWriter::new(BufWriter::new(File::create(&tmp)?));
    for dir in ["dev", "proc", "sys", "run", "tmp", "etc", "root"] {
        cpio.dir(dir)?;
    }
    // The kernel opens /dev/console for /init before anything is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
    cpio.file("etc/group", 0o644, b"root:x:0:\n")?;

    let mut dynamic: Vec<&Path> = vec![contents.agent, &assets.udevadm];
    let scratch = out.with_extension("stripped");
    let mut strip = Strip::new(&scratch)?;
    cpio.file("init", 0o755, &strip.read(contents.agent)?)?;

    cpio.file("bin/busybox", 0o755, &read(&assets.busybox)?)?;
    cpio.file("bin/udevadm", 0o755, &read(&assets.udevadm)?)?;
    cpio.symlink("lib/systemd/systemd-udevd", "/bin/udevadm")?;
    for applet in busybox_applets(&assets.busybox)? {
        if applet != "busybox" && applet != "udevadm" {
            cpio.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    cpio.symlink("sbin", "bin")?;

    for (module, path) in &assets.modules {
        cpio.file(
            &format!("{MODULE_DIR}/{}.ko", module.file),
            0o644,
            &read(path)?,
        )?;
    }

    cpio.file(PLAN_PATH, 0o644, contents.plan.encode().as_bytes())?;
    for (test, (_, image_path)) in contents.tests.iter().zip(&contents.plan.tests) {
        cpio.file(image_path, 0o755, &strip.read(&test.path)?)?;
        dynamic.push(&test.path);
    }

    for extra in contents.extras {
        match *extra {
            Extra::Program {
                image_path,
                host_path,
            } => {
                cpio.file(image_path, 0o755, &read(host_path)?)?;
                dynamic.push(host_path);
            }
            Extra::File {
                image_path,
                mode,
                data,
            } => cpio.file(image_path, mode, data)?,
        }
    }

    let mut libraries = BTreeSet::new();
    for elf in dynamic {
        libraries.extend(shared_libraries(elf)?);
    }
    for lib in &libraries {
        cpio.file(&lib.to_string_lossy(), 0o755, &read(lib)?)?;
    }

    cpio.finish()?;
    fs::rename(&tmp, out)?;
    Ok(fs::metadata(out)?.len())
}

/// Reads our own executables without their debug info (`strip --strip-debug`, symbols
/// kept so panics still name functions): a debug test binary is ≈ 23 MB, 4 MB stripped,
/// and a dozen unstripped ones no longer fit the VM's memory (the kernel's initramfs
/// unpacking fails with "write error").
struct Strip {
    dir: PathBuf,
    /// `strip` could not be run: pack as they are (said once).
    unavailable: bool,
}

impl Strip {
    fn new(dir: &Path) -> Result<Strip> {
        fs::create_dir_all(dir)?;
        Ok(Strip {
            dir: dir.to_path_buf(),
            unavailable: false,
        })
    }

    fn read(&mut self, elf: &Path) -> Result<Vec<u8>> {
        if self.unavailable {
            return read(elf);
        }
        let name = elf.file_name().ok_or("no file name")?;
        let out = self.dir.join(name);
        let status = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&out)
            .arg(elf)
            .status();
        match status {
            Ok(s) if s.success() => {
                let bytes = read(&out)?;
                let _ = fs::remove_file(&out);
                Ok(bytes)
            }
            Ok(s) => Err(format!("strip --strip-debug {}: {s}", elf.display()).into()),
            Err(e) => {
                eprintln!(
                    "   vm: cannot run `strip` ({e}; package binutils): packing binaries with \
                     their debug info, the image may not fit the VM's memory"
                );
                self.unavailable = true;
                read(elf)
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let list = cmd::output(Command::new(busybox).arg("--list"))?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .map(String::from)
        .collect())
}

/// The absolute paths `ldd` resolves for `elf`, loader included.
fn shared_libraries(elf: &Path) -> Result<Vec<PathBuf>> {
    let out = cmd::output(Command::new("ldd").arg(elf))?;
    parse_ldd(&out).map_err(|missing| {
        format!(
            "{}: shared library {missing} not found on this host",
            elf.display()
        )
        .into()
    })
}

/// Parse `ldd` output; `Err(name)` for a library it could not find.
fn parse_ldd(out: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in out.lines().map(str::trim) {
        let target = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(name.trim().to_string());
                }
                target
            }
            None => line,
        };
        let path = target.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parses() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            parse_ldd("\tlibkmod.so.2 => not found\n"),
            Err("libkmod.so.2".to_string())
        );
    }
}
