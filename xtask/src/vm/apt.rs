//! Debian packages: install host tools, download and unpack packages into the cache.
//!
//! Everything here goes through `apt-get`/`apt-cache`/`dpkg-deb`, so the configured
//! mirrors and proxies apply.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, bail, Result};

/// Make sure `program` is on `PATH`, installing `package` with apt when we are root.
/// When not root, fail with one message naming exactly what to install.
pub fn ensure_tool(program: &str, package: &str) -> Result<PathBuf> {
    if let Some(path) = cmd::which(program) {
        return Ok(path);
    }
    if !cmd::is_root() || cmd::which("apt-get").is_none() {
        bail!(
            "`{program}` is missing: install the `{package}` package \
             (Debian/Ubuntu: `sudo apt-get install {package}`)"
        );
    }
    eprintln!("   provisioning: installing {package} (for `{program}`)");
    install(&[package])?;
    cmd::which(program)
        .ok_or_else(|| format!("installed {package} but `{program}` is still missing").into())
}

/// `apt-get install -y` some packages (as root), running `apt-get update` once if the
/// first attempt fails (stale or missing package lists).
pub fn install(packages: &[&str]) -> Result<()> {
    let attempt = || {
        cmd::output(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if attempt().is_err() {
        eprintln!("   provisioning: apt-get update");
        cmd::output(Command::new("apt-get").args(["update", "-q"]))?;
        attempt()?;
    }
    Ok(())
}

/// Download `package` (without installing it) into `dir`, unless a `.deb` of it is already
/// there. Returns the `.deb`'s path.
pub fn download(package: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    if let Some(deb) = find_deb(package, dir)? {
        return Ok(deb);
    }
    require_apt(package)?;
    eprintln!("   provisioning: downloading {package}");
    // Download into a scratch directory and move the finished file: an interrupted
    // download never leaves a partial .deb where the cache looks.
    let partial = dir.join(".partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    let attempt = || {
        cmd::output(
            Command::new("apt-get")
                .args(["download", "-q", package])
                .current_dir(&partial),
        )
    };
    if let Err(first) = attempt() {
        if !cmd::is_root() {
            return Err(first);
        }
        cmd::output(Command::new("apt-get").args(["update", "-q"]))?;
        attempt()?;
    }
    let deb = find_deb(package, &partial)?.ok_or_else(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            partial.display()
        )
    })?;
    let dest = dir.join(deb.file_name().expect("a file"));
    fs::rename(&deb, &dest)?;
    Ok(dest)
}

fn find_deb(package: &str, dir: &Path) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Unpack `deb` into `dest` (once: a stamp file marks a complete unpack).
pub fn unpack(deb: &Path, dest: &Path) -> Result<()> {
    let stamp = dest.join(".usbdf-unpacked");
    if stamp.exists() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest)?;
    cmd::output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest))?;
    fs::write(stamp, deb.to_string_lossy().as_bytes())?;
    Ok(())
}

/// The `Depends:` field of a `.deb`, as bare package names.
pub fn depends(deb: &Path) -> Result<Vec<String>> {
    let field = cmd::output(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"))?;
    Ok(field
        .split([',', '|'])
        .filter_map(|dep| dep.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name).to_string())
        .collect())
}

/// The first `Depends:` of `package` in the package lists (`apt-cache depends`).
pub fn first_dependency(package: &str) -> Result<String> {
    let out = cmd::output(Command::new("apt-cache").args(["depends", package]))?;
    out.lines()
        .find_map(|line| line.trim().strip_prefix("Depends:"))
        .map(|dep| dep.trim().trim_matches(['<', '>']).to_string())
        .ok_or_else(|| format!("`apt-cache depends {package}` lists no dependency").into())
}

/// Whether the package lists know `package` (with a downloadable version).
pub fn exists(package: &str) -> bool {
    cmd::output(Command::new("apt-cache").args(["show", "--no-all-versions", package]))
        .is_ok_and(|out| out.contains("Package:"))
}

fn require_apt(package: &str) -> Result<()> {
    if cmd::which("apt-get").is_none() || cmd::which("dpkg-deb").is_none() {
        bail!(
            "the VM suite downloads Debian packages ({package}) with apt-get/dpkg-deb, which \
             this host lacks; see docs/testing.md for the USBDF_VM_* overrides"
        );
    }
    Ok(())
}
