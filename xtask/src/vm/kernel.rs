//! The guest kernel: Debian's unsigned image package, or a local kernel
//! (`USBDF_VM_KERNEL`, `USBDF_VM_MODULES`).
//!
//! qemu boots an uncompressed `vmlinux` through its PVH entry in about half the time of
//! the bzImage, so we pull the ELF out of the bzImage: its payload is an XZ stream that
//! starts at the magic `FD 37 7A 58 5A 00`.

use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{apt, provision::find_file};
use crate::cmd::{bail, Result};

/// A kernel ready to boot and the directory holding its modules.
#[derive(Debug)]
pub struct Kernel {
    /// Uncompressed ELF kernel.
    pub vmlinux: PathBuf,
    /// Searched recursively for `<module>.ko`.
    pub modules_dir: PathBuf,
}

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Provision the kernel into `cache`, keeping the `modules` (file stems) it will need.
pub fn provision(cache: &Path, modules: &[&str]) -> Result<Kernel> {
    let local_kernel = env::var_os("USBDF_VM_KERNEL").map(PathBuf::from);
    let local_modules = env::var_os("USBDF_VM_MODULES").map(PathBuf::from);
    if let (Some(image), Some(modules_dir)) = (&local_kernel, &local_modules) {
        let vmlinux = ensure_vmlinux(image, &cache.join("local-vmlinux"))?;
        return Ok(Kernel {
            vmlinux,
            modules_dir: modules_dir.clone(),
        });
    }
    if local_kernel.is_some() != local_modules.is_some() {
        bail!(
            "set both USBDF_VM_KERNEL and USBDF_VM_MODULES (a kernel and its modules), or neither"
        );
    }

    let package = format!("{}-unsigned", apt::first_dependency("linux-image-amd64")?);
    let dir = cache.join("kernel").join(&package);
    // Keep only what the image needs (the unpacked package is ~460 MB); the stamp names
    // the modules kept, so a changed module list re-extracts from the cached .deb.
    let stamp = dir.join(".usbdf-complete");
    let kept = modules.join(" ");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(kept.as_str()) {
        check_package(&package)?;
        let deb = apt::download(&package, &cache.join("debs"))?;
        eprintln!("   provisioning: unpacking {package}");
        let _ = fs::remove_dir_all(&dir);
        let unpacked = dir.join("unpacked");
        apt::unpack(&deb, &unpacked)?;
        let boot = unpacked.join("boot");
        let image = fs::read_dir(&boot)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .ok_or_else(|| format!("no vmlinuz-* in {}", boot.display()))?;
        ensure_vmlinux(&image, &dir.join("vmlinux"))?;
        fs::create_dir_all(dir.join("modules"))?;
        for module in modules {
            let from = find_module(&unpacked.join("lib/modules"), module)?;
            fs::copy(
                &from,
                dir.join("modules").join(from.file_name().expect("a file")),
            )?;
        }
        fs::remove_dir_all(&unpacked)?;
        fs::write(&stamp, &kept)?;
    }
    Ok(Kernel {
        vmlinux: dir.join("vmlinux"),
        modules_dir: dir.join("modules"),
    })
}

/// `linux-image-amd64` depends on `linux-image-<abi>-amd64`; the unsigned build of the
/// same ABI, `linux-image-<abi>-amd64-unsigned`, must be in the package lists too.
fn check_package(unsigned: &str) -> Result<()> {
    if !apt::exists(unsigned) {
        let signed = unsigned.trim_end_matches("-unsigned");
        bail!("{signed} has no unsigned build `{unsigned}` in the package lists (try `apt-get update`)");
    }
    Ok(())
}

/// Turn `image` (a vmlinux or a bzImage) into an uncompressed ELF at `out`, once.
fn ensure_vmlinux(image: &Path, out: &Path) -> Result<PathBuf> {
    let bytes =
        fs::read(image).map_err(|e| format!("cannot read kernel {}: {e}", image.display()))?;
    if bytes.starts_with(ELF_MAGIC) {
        return Ok(image.to_path_buf());
    }
    // Reuse an earlier extraction only if it came from this very image.
    let meta = fs::metadata(image)?;
    let source = format!("{} {} {:?}", image.display(), meta.len(), meta.modified()?);
    let source_file = out.with_extension("source");
    if out.exists() && fs::read_to_string(&source_file).is_ok_and(|s| s == source) {
        return Ok(out.to_path_buf());
    }
    crate::vm::apt::ensure_tool("xz", "xz-utils")?;
    for start in find_all(&bytes, XZ_MAGIC) {
        if let Some(elf) = xz_decompress(&bytes[start..])? {
            if elf.starts_with(ELF_MAGIC) {
                let tmp = out.with_extension("tmp");
                fs::write(&tmp, &elf)?;
                fs::rename(&tmp, out)?;
                fs::write(&source_file, &source)?;
                return Ok(out.to_path_buf());
            }
        }
    }
    bail!(
        "{}: no XZ-compressed ELF inside (a kernel built with another compression? \
         point USBDF_VM_KERNEL at its vmlinux)",
        image.display()
    )
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
}

/// Decompress the single XZ stream at the start of `data` (trailing bytes are ignored).
/// `None` if it is not a valid stream.
fn xz_decompress(data: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut child = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        // xz stops reading after the stream ends: a broken pipe here is expected.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    Ok(out.status.success().then_some(out.stdout))
}

/// Find `<name>.ko` below `dir` (the kernel spells some names with `-`, some with `_`).
pub fn find_module(dir: &Path, name: &str) -> Result<PathBuf> {
    find_file(dir, &format!("{name}.ko"))
        .or_else(|_| find_file(dir, &format!("{}.ko", name.replace('-', "_"))))
        .or_else(|_| find_file(dir, &format!("{}.ko", name.replace('_', "-"))))
        .map_err(|_| {
            format!(
                "module {name}.ko not found under {} (compressed modules are not supported)",
                dir.display()
            )
            .into()
        })
}
