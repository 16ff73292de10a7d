//! The bench variants of the SourceSink and Loopback gadgets, applied at run time over
//! configfs.
//!
//! The VM agent binds the test layout (`tests/src/vm/layout.rs`: SourceSink pattern 1,
//! `bulk_buflen` 4096). For throughput the gadget must not be the limit, so the bench
//! unbinds it, changes the function's attributes (configfs refuses while the function is
//! linked into a configuration), relinks and rebinds, then waits for enumeration.
//! Loopback echoes one gadget request per OUT request it fills, so its `bulk_buflen` is set
//! to the transfer size of each echo cell.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../../../tests/src/vm/layout.rs"]
mod layout;

use layout::{Gadget, CONFIGFS_GADGETS, LOOPBACK, SOURCE_SINK};

/// The bench's SourceSink attributes: (file, value).
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("pattern", "0"),
    ("bulk_buflen", "65536"),
    ("bulk_qlen", "32"),
];

/// For the progress line.
pub const DESCRIPTION: &str = "pattern 0, bulk_buflen 65536, bulk_qlen 32";

/// SourceSink's IDs (gadget zero's, which usbtest binds).
pub const VID_PID: (u16, u16) = (SOURCE_SINK.vendor_id, SOURCE_SINK.product_id);

/// Loopback's IDs.
pub const LOOPBACK_VID_PID: (u16, u16) = (layout::LOOPBACK.vendor_id, layout::LOOPBACK.product_id);

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    fs::write(path, value)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Unbind SourceSink, set [`ATTRIBUTES`], rebind, wait until the host has configured it.
pub fn reconfigure_sourcesink() -> std::io::Result<()> {
    reconfigure(&SOURCE_SINK, ATTRIBUTES)
}

/// Give Loopback gadget requests of `buflen` bytes, 32 of them.
pub fn reconfigure_loopback(buflen: usize) -> std::io::Result<()> {
    reconfigure(
        &LOOPBACK,
        &[("bulk_buflen", &buflen.to_string()), ("qlen", "32")],
    )
}

fn reconfigure(gadget: &Gadget, attributes: &[(&str, &str)]) -> std::io::Result<()> {
    let root = PathBuf::from(CONFIGFS_GADGETS).join(gadget.name);
    let instance = gadget.function.instance();
    let function = root.join("functions").join(&instance);
    let link = root.join("configs/c.1").join(instance);
    write(&root.join("UDC"), "\n")?;
    wait_gone(gadget);
    fs::remove_file(&link)?;
    for (file, value) in attributes {
        write(&function.join(file), value)?;
    }
    std::os::unix::fs::symlink(&function, &link)?;
    write(&root.join("UDC"), gadget.udc)?;
    wait_configured(gadget, Duration::from_secs(30))
}

fn sysfs_devices() -> Vec<PathBuf> {
    fs::read_dir("/sys/bus/usb/devices")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn present(gadget: &Gadget, configured: bool) -> bool {
    sysfs_devices().iter().any(|dir| {
        read(dir, "serial") == gadget.serial
            && (!configured || !read(dir, "bConfigurationValue").is_empty())
    })
}

fn wait_gone(gadget: &Gadget) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while present(gadget, false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_configured(gadget: &Gadget, limit: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + limit;
    while !present(gadget, true) {
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "{} did not re-enumerate after reconfiguration",
                gadget.name
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let udev/usbfs finish creating the device node.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// The `/dev/bus/usb/BBB/DDD` node of the SourceSink gadget.
pub fn sourcesink_node() -> std::io::Result<PathBuf> {
    for dir in sysfs_devices() {
        if read(&dir, "serial") == SOURCE_SINK.serial {
            let bus: u32 = read(&dir, "busnum").parse().unwrap_or(0);
            let dev: u32 = read(&dir, "devnum").parse().unwrap_or(0);
            return Ok(PathBuf::from(format!("/dev/bus/usb/{bus:03}/{dev:03}")));
        }
    }
    Err(std::io::Error::other("SourceSink not found in sysfs"))
}
