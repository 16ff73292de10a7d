//! The real-gadget environment of the VM suite, for tests.
//!
//! Inside the VM (`cargo xtask test`) the guest agent has created the gadgets below on
//! `dummy_hcd` UDCs and the guest's own USB host stack has enumerated them before any
//! test binary starts. Tests talk to them through nusb/usbdf as the host, and to the
//! gadget side through [`ACM_TTY`], [`HID_DEVICE`] and configfs ([`unbind`], [`rebind`]).
//!
//! | gadget | IDs | UDC | function |
//! |---|---|---|---|
//! | [`SOURCE_SINK`] | `0525:a4a0` | `dummy_udc.0` | SourceSink, pattern 1, 4096-byte buffers |
//! | [`LOOPBACK`] | `0525:a4a9` | `dummy_udc.1` | Loopback, qlen 32, 4096-byte buffers |
//! | [`ACM`] | `0525:a4a7` | `dummy_udc.2` | CDC-ACM, gadget side [`ACM_TTY`] |
//! | [`HID`] | `0525:a4ac` | `dummy_udc.3` | HID, [`HID_REPORT_DESCRIPTOR`], gadget side [`HID_DEVICE`] |
//!
//! Tests run one at a time (`--test-threads=1`): they share the gadgets. A test that
//! unbinds a gadget must rebind it before it ends, also when it fails ([`Unbound`] does).
//! Never synchronise with sleeps: poll with a deadline ([`wait_for_device`],
//! [`wait_for_removal`], [`read_exact_timeout`]).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nusb::{DeviceInfo, MaybeFuture};

mod layout;
pub use self::layout::*;

/// How often the `wait_*` helpers look again.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Whether we run where the gadgets exist: the agent sets `USBDF_IN_VM=1` (set it yourself
/// after `cargo xtask gadgets up` on a host with dummy_hcd).
pub fn in_vm() -> bool {
    std::env::var_os("USBDF_IN_VM").is_some_and(|v| v == "1")
}

/// Panic with instructions unless [`in_vm`]: the `vm_*` tests are meaningless elsewhere.
pub fn require_vm() {
    assert!(
        in_vm(),
        "this test needs the VM's gadgets: run it with `cargo xtask test --vm-only`, or set \
         USBDF_IN_VM=1 after `cargo xtask gadgets up` (docs/testing.md)"
    );
}

fn udc_file(gadget: &Gadget) -> std::path::PathBuf {
    Path::new(CONFIGFS_GADGETS).join(gadget.name).join("UDC")
}

/// Unbind `gadget` from its UDC: for the host side, a surprise removal.
pub fn unbind(gadget: &Gadget) -> io::Result<()> {
    fs::write(udc_file(gadget), "\n")
}

/// Bind `gadget` to its UDC again: the host side sees it arrive and enumerates it.
pub fn rebind(gadget: &Gadget) -> io::Result<()> {
    fs::write(udc_file(gadget), gadget.udc)
}

/// Whether `gadget` is bound to its UDC (configfs' view, not the host's).
pub fn is_bound(gadget: &Gadget) -> io::Result<bool> {
    Ok(!fs::read_to_string(udc_file(gadget))?.trim().is_empty())
}

/// An unbound gadget that is rebound when this guard drops, so a failing test does not
/// leave it missing for the next one.
#[must_use = "the gadget is rebound when this guard drops"]
#[derive(Debug)]
pub struct Unbound {
    gadget: Gadget,
}

impl Unbound {
    /// Unbind `gadget` now.
    pub fn new(gadget: &Gadget) -> io::Result<Unbound> {
        unbind(gadget)?;
        Ok(Unbound { gadget: *gadget })
    }

    /// Rebind now and report errors (dropping rebinds too, ignoring errors).
    pub fn rebind(self) -> io::Result<()> {
        let gadget = self.gadget;
        std::mem::forget(self);
        rebind(&gadget)
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = rebind(&self.gadget);
    }
}

/// The enumerated device with these IDs, if any (serial not checked).
pub fn find_device(vendor_id: u16, product_id: u16) -> io::Result<Option<DeviceInfo>> {
    let mut devices = nusb::list_devices().wait().map_err(io::Error::from)?;
    Ok(devices.find(|d| d.vendor_id() == vendor_id && d.product_id() == product_id))
}

/// The enumerated device of `gadget` (IDs and serial number match), if any.
pub fn find_gadget(gadget: &Gadget) -> io::Result<Option<DeviceInfo>> {
    let mut devices = nusb::list_devices().wait().map_err(io::Error::from)?;
    Ok(devices.find(|d| {
        d.vendor_id() == gadget.vendor_id
            && d.product_id() == gadget.product_id
            && d.serial_number() == Some(gadget.serial)
    }))
}

/// Whether the host has put `device` in a configuration (enumeration finished: its
/// interfaces exist and can be claimed).
pub fn is_configured(device: &DeviceInfo) -> bool {
    fs::read_to_string(device.sysfs_path().join("bConfigurationValue"))
        .is_ok_and(|v| !v.trim().is_empty())
}

/// Poll `nusb::list_devices` until a device with these IDs is enumerated and configured.
///
/// # Errors
/// `TimedOut` if it has not appeared within `timeout`; enumeration errors.
pub fn wait_for_device(
    vendor_id: u16,
    product_id: u16,
    timeout: Duration,
) -> io::Result<DeviceInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(device) = find_device(vendor_id, product_id)?.filter(is_configured) {
            return Ok(device);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{vendor_id:04x}:{product_id:04x} did not appear within {timeout:?}"),
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Poll `nusb::list_devices` until no device with these IDs is enumerated.
///
/// # Errors
/// `TimedOut` if it is still there after `timeout`; enumeration errors.
pub fn wait_for_removal(vendor_id: u16, product_id: u16, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if find_device(vendor_id, product_id)?.is_none() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{vendor_id:04x}:{product_id:04x} still present after {timeout:?}"),
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Open a tty (e.g. [`ACM_TTY`]) in raw mode: no echo, no line discipline, 8-bit clean,
/// non-blocking reads (use [`read_exact_timeout`]).
pub fn configure_tty_raw(path: impl AsRef<Path>) -> io::Result<File> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    // SAFETY: termios is plain data; tcgetattr fills it before we use it.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(tty.as_raw_fd(), &mut termios) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut termios);
        if libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, &termios) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(tty)
}

/// Open a gadget-side character device (e.g. [`HID_DEVICE`]) for reading and writing,
/// non-blocking (use [`read_exact_timeout`] to read).
pub fn open_gadget_device(path: impl AsRef<Path>) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Fill `buf` from a non-blocking file (tty, `/dev/hidg0`), waiting with poll(2) until
/// `timeout` has passed since the call.
///
/// # Errors
/// `TimedOut` with the number of bytes received so far; read errors.
pub fn read_exact_timeout(file: &mut File, buf: &mut [u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                filled += n;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("got {filled} of {} bytes within {timeout:?}", buf.len()),
            ));
        }
        let mut pollfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pollfd, 1, ms) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Load one of the image's modules (e.g. a member of [`EXTRA_MODULES`]) with its
/// parameters; already loaded is fine.
pub fn load_module(module: &Module) -> io::Result<()> {
    let path = Path::new(MODULE_DIR).join(format!("{}.ko", module.file));
    let file = File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let params = CString::new(module.params).map_err(io::Error::other)?;
    // SAFETY: a valid fd and a NUL-terminated parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    let err = io::Error::last_os_error();
    if rc != 0 && err.raw_os_error() != Some(libc::EEXIST) {
        return Err(err);
    }
    Ok(())
}

/// The kernel's name of a module: the file stem with dashes as underscores
/// (`cdc-acm` → `cdc_acm`), as `/sys/module` and `delete_module(2)` spell it.
pub fn module_name(module: &Module) -> String {
    module.file.replace('-', "_")
}

/// Whether a module is loaded (`/sys/module/<name>/initstate` exists; built-in code has
/// a `/sys/module` directory too, but no `initstate`).
pub fn is_module_loaded(module: &Module) -> bool {
    Path::new("/sys/module")
        .join(module_name(module))
        .join("initstate")
        .exists()
}

/// Unload a module (`delete_module(2)`, non-blocking: fails with `EWOULDBLOCK` while it is
/// in use, e.g. a `/dev/ttyACM*` is open). Not loaded is fine.
pub fn unload_module(module: &Module) -> io::Result<()> {
    let name = CString::new(module_name(module)).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated module name and flags.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    let err = io::Error::last_os_error();
    if rc != 0 && err.raw_os_error() != Some(libc::ENOENT) {
        return Err(io::Error::new(
            err.kind(),
            format!("delete_module {}: {err}", module_name(module)),
        ));
    }
    Ok(())
}

/// A module loaded for one test and unloaded when this guard drops (also when the test
/// fails), so later tests and test binaries find the kernel as the agent left it.
#[must_use = "the module is unloaded when this guard drops"]
#[derive(Debug)]
pub struct LoadedModule {
    module: Module,
}

impl LoadedModule {
    /// Load `module` (see [`load_module`]).
    pub fn load(module: &Module) -> io::Result<LoadedModule> {
        load_module(module)?;
        Ok(LoadedModule { module: *module })
    }

    /// Unload now and report errors (dropping unloads too, ignoring errors).
    pub fn unload(self) -> io::Result<()> {
        let module = self.module;
        std::mem::forget(self);
        unload_module(&module)
    }
}

impl Drop for LoadedModule {
    fn drop(&mut self) {
        let _ = unload_module(&self.module);
    }
}

/// The kernel driver bound to interface `number` (configuration 1) of `gadget` on the
/// host side (`usbfs` while a program has claimed it), or `None`.
///
/// # Errors
/// `NotFound` when the gadget is not enumerated; enumeration errors.
pub fn interface_driver(gadget: &Gadget, number: u8) -> io::Result<Option<String>> {
    let device = find_gadget(gadget)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not enumerated", gadget.name),
        )
    })?;
    let sysfs = device.sysfs_path();
    let base = sysfs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let link = sysfs.join(format!("{base}:1.{number}")).join("driver");
    match fs::read_link(&link) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Poll [`interface_driver`] until it is `want`.
///
/// # Errors
/// `TimedOut` (naming the driver last seen) if that has not happened within `timeout`.
pub fn wait_interface_driver(
    gadget: &Gadget,
    number: u8,
    want: Option<&str>,
    timeout: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = interface_driver(gadget, number)?;
        if now.as_deref() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} interface {number}: driver {now:?}, not {want:?} after {timeout:?}",
                    gadget.name
                ),
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
