//! The kernel's usbtest (`usbtest.ko`) cases 27 (bulk OUT) and 28 (bulk IN) throughput:
//! `sglen` URBs of `length` bytes in flight, `iterations × sglen` transfers, timed by the
//! kernel. Driven like `testusb`: `USBDEVFS_IOCTL` → `USBTEST_REQUEST` on interface 0.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::gadget;
use crate::measure::{Cell, Scenario};
use crate::{Config, Result};

/// `struct usbtest_param_64` (include/uapi/... drivers/usb/misc/usbtest.c).
#[repr(C)]
#[derive(Default)]
struct Param64 {
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

const fn iowr(ty: u8, nr: u8, size: usize) -> u64 {
    (3u64 << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

const USBDEVFS_IOCTL: u64 = iowr(b'U', 18, std::mem::size_of::<UsbdevfsIoctl>());
const USBTEST_REQUEST_64: u64 = iowr(b'U', 100, std::mem::size_of::<Param64>());

/// usbtest bound to the SourceSink gadget.
pub struct Usbtest {
    node: std::path::PathBuf,
}

impl Usbtest {
    /// `insmod usbtest.ko` (it binds gadget zero's IDs) and wait for the bind.
    pub fn load() -> Result<Usbtest> {
        let path = "/lib/modules/usbdf/usbtest.ko";
        let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let params = CString::new("")?;
        // SAFETY: a valid fd and a NUL-terminated parameter string.
        let rc =
            unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
        let err = std::io::Error::last_os_error();
        if rc != 0 && err.raw_os_error() != Some(libc::EEXIST) {
            return Err(format!("insmod usbtest: {err}").into());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new("/sys/bus/usb/drivers/usbtest")
            .read_dir()
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().contains(':'))
            })
            .unwrap_or(false)
        {
            if std::time::Instant::now() > deadline {
                return Err("usbtest did not bind the SourceSink interface".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Usbtest {
            node: gadget::sourcesink_node()?,
        })
    }

    fn request(&self, test: u32, iterations: u32, cell: &Cell) -> Result<Duration> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.node)?;
        let mut param = Param64 {
            test_num: test,
            iterations,
            length: cell.size as u32,
            vary: 0,
            sglen: cell.depth as u32,
            ..Param64::default()
        };
        let mut wrapper = UsbdevfsIoctl {
            ifno: 0,
            ioctl_code: USBTEST_REQUEST_64 as libc::c_int,
            data: (&mut param as *mut Param64).cast(),
        };
        // SAFETY: USBDEVFS_IOCTL with a valid wrapper pointing at a live parameter block.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                USBDEVFS_IOCTL as _,
                &mut wrapper as *mut UsbdevfsIoctl,
            )
        };
        if rc < 0 {
            return Err(format!(
                "usbtest case {test} ({cell:?}): {}",
                std::io::Error::last_os_error()
            )
            .into());
        }
        Ok(Duration::from_secs(param.duration_sec as u64)
            + Duration::from_micros(param.duration_usec as u64))
    }

    /// One run, MB/s: calibrated so the kernel's timed run lasts about the window.
    pub fn throughput(&self, cell: &Cell, cfg: &Config) -> Result<f64> {
        let test = if cell.scenario == Scenario::SourceSinkIn {
            28
        } else {
            27
        };
        let per_iteration = (cell.size * cell.depth) as f64;
        let probe = 20u32;
        let t = self.request(test, probe, cell)?.as_secs_f64().max(1e-6);
        let iterations =
            ((cfg.window.as_secs_f64() / (t / probe as f64)) as u32).clamp(1, 1_000_000);
        let t = self
            .request(test, iterations, cell)?
            .as_secs_f64()
            .max(1e-6);
        Ok(per_iteration * iterations as f64 / t / 1e6)
    }
}
