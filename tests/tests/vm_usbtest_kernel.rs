//! The kernel's own `usbtest.ko` on the same SourceSink gadget, the reference for
//! `vm_usbtest`: load it (`pattern=1`), let it bind interface 0 of gadget zero, run each case
//! through `USBDEVFS_IOCTL` → `USBTEST_REQUEST` as testusb does, record pass/fail and
//! duration (`@@usbtest impl=kernel ...` lines), then unload it so the interface is free for
//! every later test.
//!
//! Kernel failures are results, not test failures (7 fails in the kernel itself on
//! dummy_hcd): this test fails only when the driver cannot be loaded, bound, driven or
//! unloaded.

use std::path::Path;
use std::time::{Duration, Instant};

use usbdf_tests::usbtest::{kernel, summary, Params};
use usbdf_tests::vm::{self, EXTRA_MODULES, SOURCE_SINK};

const USBTEST_SYSFS: &str = "/sys/bus/usb/drivers/usbtest";
const PATTERN_PARAM: &str = "/sys/module/usbtest/parameters/pattern";

/// Unloads usbtest when dropped, also when the test fails.
struct Loaded;

impl Drop for Loaded {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match kernel::unload("usbtest") {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rmmod usbtest: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    eprintln!("rmmod usbtest failed: {e}");
                    break;
                }
            }
        }
    }
}

/// (case, parameters, pattern): the cases and parameters of `vm_usbtest`, plus the variants
/// that show where the kernel itself stops (4 and 7 with lengths that are not whole packets).
#[rustfmt::skip]
fn plan() -> Vec<(u32, Params, u32)> {
    let d = Params::DEFAULT;
    let n = d.iterations; // testusb's default, as vm_usbtest
    let p = |iterations, length, vary, sglen| Params { iterations, length, vary, sglen };
    vec![
        (0, d, 1),
        (1, p(n, 512, 0, 32), 1),
        (2, p(n, 512, 0, 32), 1),
        (3, p(n, 2048, 421, 32), 1),
        (4, p(n, 2048, 421, 32), 1),
        (4, p(n, 2048, 512, 32), 1),
        (5, p(n, 512, 0, 32), 1),
        (6, p(n, 512, 0, 32), 1),
        (7, p(n, 512, 579, 32), 1),
        (7, p(n, 4096, 41, 32), 1),
        (7, p(n, 64, 63, 32), 1),
        (7, p(n, 4096, 512, 32), 1),
        (8, p(n, 4096, 512, 32), 1),
        (9, p(n, 512, 512, 32), 1),
        (10, p(n, 512, 512, 32), 1),
        (11, p(n, 512, 512, 32), 1),
        (12, p(n, 512, 512, 32), 1),
        (13, p(n, 512, 512, 32), 1),
        (14, p(15_000, 256, 1, 32), 1),
        (17, p(n, 512, 0, 32), 1),
        (18, p(n, 512, 0, 32), 1),
        (19, p(n, 512, 0, 32), 1),
        (20, p(n, 512, 0, 32), 1),
        (21, p(15_000, 256, 1, 32), 1),
        (24, p(n, 512, 512, 8), 1),
        (24, p(n, 512, 512, 32), 1),
        (24, p(n, 65536, 512, 8), 1),
        (27, p(n, 65536, 0, 8), 0),
        (28, p(n, 65536, 0, 8), 0),
        (29, p(n, 512, 512, 32), 1),
    ]
}

#[test]
fn usbtest_kernel_reference_on_sourcesink() {
    vm::require_vm();
    let info = vm::find_gadget(&SOURCE_SINK)
        .expect("list devices")
        .expect("SourceSink enumerated");
    let node = format!(
        "/dev/bus/usb/{:03}/{:03}",
        info.busnum(),
        info.device_address()
    );
    let module = EXTRA_MODULES
        .iter()
        .find(|m| m.file == "usbtest")
        .expect("usbtest in the image");
    let module = vm::Module {
        params: "pattern=1",
        ..*module
    };
    vm::load_module(&module).expect("load usbtest.ko");
    let _loaded = Loaded;
    // Wait (bounded) for usbtest to bind interface 0.
    let interface = format!(
        "{}:1.0",
        info.sysfs_path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("sysfs name")
    );
    let bound = Path::new(USBTEST_SYSFS).join(&interface);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bound.exists() {
        assert!(
            Instant::now() < deadline,
            "usbtest did not bind {interface} ({} missing)",
            bound.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("usbtest bound {interface}; device node {node}");
    let mut passed = 0;
    let mut failed = Vec::new();
    for (case, params, pattern) in plan() {
        std::fs::write(PATTERN_PARAM, pattern.to_string()).expect("set usbtest pattern");
        let o = kernel::run(&node, case, params).expect("open the device node");
        let result = if o.passed() { "pass" } else { "fail" };
        let detail = if o.passed() {
            format!(
                "{}; pattern={pattern}; rc={} kernel_duration_ms={}",
                params.describe(),
                o.rc,
                o.kernel_duration.as_millis()
            )
        } else {
            format!(
                "{}; pattern={pattern}; errno={} ({})",
                params.describe(),
                o.errno,
                std::io::Error::from_raw_os_error(o.errno)
            )
        };
        summary(
            "kernel",
            &format!("{case:02}"),
            result,
            o.wall.as_millis(),
            &detail,
        );
        if o.passed() {
            passed += 1;
        } else {
            failed.push(case);
        }
    }
    std::fs::write(PATTERN_PARAM, "1").expect("reset usbtest pattern");
    eprintln!("kernel usbtest: {passed} passed, failed: {failed:?}");
}
