//! Helpers for the usbtest battery (`vm_usbtest*`): the Linux kernel's usbtest cases
//! (drivers/usb/misc/usbtest.c) re-implemented with usbdf, and a driver for the kernel's own
//! `usbtest.ko` through `USBDEVFS_IOCTL` → `USBTEST_REQUEST` (tools/usb/testusb.c).
//!
//! Every case prints one machine-readable line on stderr, outside libtest's capture, so a run
//! shows it whether the test passed or failed:
//!
//! ```text
//! @@usbtest impl=usbdf case=01 result=pass ms=812 params="iterations=1000 length=512"
//! ```
//!
//! `docs/conformance.md` is generated from these lines.

use std::io::Write;
use std::time::Instant;

/// The suite's parameters, as testusb passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How many times the case runs.
    pub iterations: u32,
    /// Transfer length in bytes.
    pub length: u32,
    /// Length step (0 = fixed length).
    pub vary: u32,
    /// Requests kept in flight ("scatter-gather length").
    pub sglen: u32,
}

impl Params {
    /// testusb's defaults: iterations 1000, length 512, vary 512, sglen 32.
    pub const DEFAULT: Params = Params {
        iterations: 1000,
        length: 512,
        vary: 512,
        sglen: 32,
    };

    /// As testusb would print them.
    pub fn describe(&self) -> String {
        format!(
            "iterations={} length={} vary={} sglen={}",
            self.iterations, self.length, self.vary, self.sglen
        )
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// usbtest's length stepping: `len = (len + vary) % max`, 0 becoming `min(vary, max)`.
pub fn next_len(len: usize, vary: usize, max: usize) -> usize {
    if vary == 0 {
        return len;
    }
    let len = (len + vary) % max;
    if len == 0 {
        vary.min(max)
    } else {
        len
    }
}

/// Print one summary line, bypassing libtest's output capture.
pub fn summary(implementation: &str, case: &str, result: &str, ms: u128, params: &str) {
    let line = format!(
        "@@usbtest impl={implementation} case={case} result={result} ms={ms} params=\"{params}\"\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Prints a case's summary line when dropped: `pass`, or `fail` when the test is panicking.
#[derive(Debug)]
pub struct CaseReport {
    case: String,
    params: String,
    start: Instant,
}

impl CaseReport {
    /// Start timing usbdf's case `case` (e.g. `"05"`) run with `params`.
    pub fn new(case: &str, params: impl Into<String>) -> CaseReport {
        let params = params.into();
        eprintln!("usbtest case {case}: {params}");
        CaseReport {
            case: case.to_string(),
            params,
            start: Instant::now(),
        }
    }

    /// Append to the parameters printed (e.g. measured figures).
    pub fn note(&mut self, text: impl AsRef<str>) {
        self.params.push_str("; ");
        self.params.push_str(text.as_ref());
    }
}

impl Drop for CaseReport {
    fn drop(&mut self) {
        let result = if std::thread::panicking() {
            "fail"
        } else {
            "pass"
        };
        summary(
            "usbdf",
            &self.case,
            result,
            self.start.elapsed().as_millis(),
            &self.params,
        );
    }
}

/// SourceSink pattern 1 for a transfer starting on a gadget-request (or packet) boundary:
/// byte `i` is `(i % max_packet) % 63`.
pub fn pattern1(len: usize, max_packet: usize) -> Vec<u8> {
    (0..len).map(|i| ((i % max_packet) % 63) as u8).collect()
}

/// `Err` naming the first wrong byte when `data` (starting on a packet boundary) is not
/// pattern 1.
pub fn check_pattern1(data: &[u8], max_packet: usize) -> Result<(), String> {
    match data
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != ((i % max_packet) % 63) as u8)
    {
        None => Ok(()),
        Some((i, &b)) => Err(format!(
            "pattern 1 mismatch at byte {i} of {}: got {b:#04x}, want {:#04x}",
            data.len(),
            ((i % max_packet) % 63) as u8
        )),
    }
}

/// The kernel's usbtest driver, driven the way testusb does.
pub mod kernel {
    use std::fs::OpenOptions;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::Params;

    /// `struct usbtest_param_64` (include/uapi/linux/usb/... in usbtest.c).
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    struct UsbtestParam64 {
        test_num: u32,
        iterations: u32,
        length: u32,
        vary: u32,
        sglen: u32,
        duration_sec: i64,
        duration_usec: i64,
    }

    /// `struct usbdevfs_ioctl`.
    #[repr(C)]
    struct UsbdevfsIoctl {
        ifno: libc::c_int,
        ioctl_code: libc::c_int,
        data: *mut libc::c_void,
    }

    const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
        (3 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
    }

    /// `USBTEST_REQUEST`: `_IOWR('U', 100, struct usbtest_param_64)`.
    pub const USBTEST_REQUEST: u32 = iowr(b'U', 100, std::mem::size_of::<UsbtestParam64>());
    /// `USBDEVFS_IOCTL`: `_IOWR('U', 18, struct usbdevfs_ioctl)`.
    pub const USBDEVFS_IOCTL: u32 = iowr(b'U', 18, std::mem::size_of::<UsbdevfsIoctl>());

    /// What one kernel test run returned.
    #[derive(Debug, Clone, Copy)]
    pub struct Outcome {
        /// The ioctl's return value (≥ 0 success; 14/21 return the last length).
        pub rc: i64,
        /// errno when `rc < 0`.
        pub errno: i32,
        /// The duration the kernel measured (0 when it failed).
        pub kernel_duration: Duration,
        /// Wall time around the ioctl.
        pub wall: Duration,
    }

    impl Outcome {
        /// Whether the kernel test passed.
        pub fn passed(&self) -> bool {
            self.rc >= 0
        }
    }

    /// Run usbtest case `test` on interface 0 of the device node `node`
    /// (`/dev/bus/usb/BBB/DDD`).
    ///
    /// # Errors
    /// Opening the node.
    pub fn run(node: &str, test: u32, p: Params) -> io::Result<Outcome> {
        let file = OpenOptions::new().read(true).write(true).open(node)?;
        let mut param = UsbtestParam64 {
            test_num: test,
            iterations: p.iterations,
            length: p.length,
            vary: p.vary,
            sglen: p.sglen,
            ..Default::default()
        };
        let mut req = UsbdevfsIoctl {
            ifno: 0,
            ioctl_code: USBTEST_REQUEST as libc::c_int,
            data: (&mut param as *mut UsbtestParam64).cast(),
        };
        let start = Instant::now();
        // SAFETY: a valid fd, a valid usbdevfs_ioctl pointing at a live usbtest_param_64.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                USBDEVFS_IOCTL as _,
                &mut req as *mut UsbdevfsIoctl,
            )
        };
        let errno = if rc < 0 {
            io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        let wall = start.elapsed();
        let kernel_duration = if rc >= 0 {
            Duration::from_secs(param.duration_sec.max(0) as u64)
                + Duration::from_micros(param.duration_usec.max(0) as u64)
        } else {
            Duration::ZERO
        };
        Ok(Outcome {
            rc: rc as i64,
            errno,
            kernel_duration,
            wall,
        })
    }

    /// Unload a module (`delete_module(2)`, non-blocking).
    ///
    /// # Errors
    /// The syscall's error.
    pub fn unload(name: &str) -> io::Result<()> {
        let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
        // SAFETY: a NUL-terminated name.
        let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // usbtest_param_64 is 40 bytes on 64-bit: 5 × u32, padding, 2 × s64.
        assert_eq!(kernel::USBTEST_REQUEST, 0xc028_5564);
        assert_eq!(kernel::USBDEVFS_IOCTL, 0xc010_5512);
    }

    #[test]
    fn length_stepping_is_usbtests() {
        assert_eq!(next_len(2048, 421, 2048), 421);
        assert_eq!(next_len(421, 421, 2048), 842);
        assert_eq!(next_len(512, 512, 512), 512);
        assert_eq!(next_len(1684, 421, 2048), 57);
    }
}
