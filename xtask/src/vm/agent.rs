//! The guest agent: the VM image's `/init` (this very binary, run as PID 1).
//!
//! Boot: mount the pseudo file systems, load the kernel modules in [`BOOT_MODULES`] order,
//! start `systemd-udevd` (nusb's hotplug watch listens to udev's netlink group), create
//! and bind the gadgets of [`GADGETS`], wait until the guest's own host stack has
//! enumerated all of them, then run each test binary of the plan with a deadline, streaming
//! its output to the console between `begin`/`end` markers (see `protocol`). Finally
//! power off. A failure anywhere is reported as an `error` marker; the host decides.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::configfs;
use super::protocol::{Event, Outcome, Plan, PLAN_PATH};
use crate::cmd::{bail, Result};
use crate::layout::{Gadget, BOOT_MODULES, GADGETS, MODULE_DIR};

/// How long the guest may take to enumerate every gadget after binding.
const ENUMERATION_DEADLINE: Duration = Duration::from_secs(30);

/// Run the agent; never returns (the VM powers off).
pub fn main() -> ! {
    std::panic::set_hook(Box::new(|info| {
        say(&Event::Error(format!("agent panicked: {info}")));
        power_off();
    }));
    if let Err(err) = run() {
        say(&Event::Error(err.to_string()));
    }
    say(&Event::Done);
    power_off();
}

fn run() -> Result<()> {
    phase("mounting file systems");
    mount("proc", "/proc", "proc")?;
    mount("sysfs", "/sys", "sysfs")?;
    mount("devtmpfs", "/dev", "devtmpfs")?;
    mount("tmpfs", "/run", "tmpfs")?;
    mount("tmpfs", "/tmp", "tmpfs")?;

    phase("loading kernel modules");
    for module in BOOT_MODULES {
        load_module(
            &Path::new(MODULE_DIR).join(format!("{}.ko", module.file)),
            module.params,
        )?;
    }
    mount("configfs", "/sys/kernel/config", "configfs")?;

    phase("starting systemd-udevd");
    let status = Command::new("/lib/systemd/systemd-udevd")
        .arg("--daemon")
        .status()?;
    if !status.success() {
        bail!("systemd-udevd --daemon: {status}");
    }

    phase("creating and binding gadgets");
    for gadget in &GADGETS {
        for step in configfs::create(gadget) {
            step.apply()?;
        }
        configfs::bind(gadget).apply()?;
    }
    wait_enumerated(&GADGETS)?;
    say(&Event::Ready(uptime_ms()?));

    let plan = Plan::decode(&fs::read_to_string(PLAN_PATH)?)?;
    for (name, path) in &plan.tests {
        say(&Event::Begin(name.clone()));
        let outcome = run_test(path, &plan)?;
        say(&Event::End(name.clone(), outcome));
        if outcome != Outcome::Exit(0) {
            // The console runs `quiet`: put the kernel's view in the log for the post-mortem.
            print_kernel_log_tail(KERNEL_LOG_LINES);
        }
    }
    Ok(())
}

/// Kernel log lines printed after a failing test binary.
const KERNEL_LOG_LINES: usize = 30;

/// Print the last `lines` of the kernel log buffer (`dmesg | tail`).
fn print_kernel_log_tail(lines: usize) {
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: SYSLOG_ACTION_READ_ALL (3) copies at most `len` bytes into `buf`.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as libc::c_int) };
    let Ok(n) = usize::try_from(n) else { return };
    let text = String::from_utf8_lossy(&buf[..n]);
    let all: Vec<&str> = text.lines().collect();
    println!("---- kernel log, last {lines} lines ----");
    for line in &all[all.len().saturating_sub(lines)..] {
        println!("{line}");
    }
    println!("---- end of kernel log ----");
}

/// Announce a boot phase, stamped with the guest's uptime.
fn phase(text: &str) {
    let at = uptime_ms().map_or(String::new(), |ms| {
        format!(" (uptime {:.2} s)", ms as f64 / 1000.0)
    });
    say(&Event::Phase(format!("{text}{at}")));
}

/// Print a marker on its own line.
fn say(event: &Event) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}

fn mount(source: &str, target: &str, fstype: &str) -> Result<()> {
    fs::create_dir_all(target)?;
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (source, target_c, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!("mount {target}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `insmod`: `finit_module(2)` on the file. Already loaded counts as success.
fn load_module(path: &Path, params: &str) -> Result<()> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let params = CString::new(params)?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd and NUL-terminated parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    let err = std::io::Error::last_os_error();
    if rc != 0 && err.raw_os_error() != Some(libc::EEXIST) {
        bail!("insmod {}: {err}", path.display());
    }
    Ok(())
}

/// Poll sysfs until each gadget shows up as a configured device on the guest's host side.
fn wait_enumerated(gadgets: &[Gadget]) -> Result<()> {
    let deadline = Instant::now() + ENUMERATION_DEADLINE;
    loop {
        let missing: Vec<&Gadget> = gadgets.iter().filter(|g| !enumerated(g)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = missing.iter().map(|g| g.name).collect();
            bail!(
                "gadgets not enumerated after {ENUMERATION_DEADLINE:?}: {}",
                names.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn enumerated(gadget: &Gadget) -> bool {
    let Ok(entries) = fs::read_dir("/sys/bus/usb/devices") else {
        return false;
    };
    let read =
        |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).map(|s| s.trim().to_string());
    entries.filter_map(|e| e.ok()).any(|entry| {
        let dir = entry.path();
        read(&dir, "idVendor").ok() == Some(format!("{:04x}", gadget.vendor_id))
            && read(&dir, "idProduct").ok() == Some(format!("{:04x}", gadget.product_id))
            && read(&dir, "serial").ok().as_deref() == Some(gadget.serial)
            && read(&dir, "bConfigurationValue")
                .ok()
                .is_some_and(|v| !v.is_empty())
    })
}

fn uptime_ms() -> Result<u64> {
    let text = fs::read_to_string("/proc/uptime")?;
    let secs: f64 = text.split_whitespace().next().unwrap_or("0").parse()?;
    Ok((secs * 1000.0) as u64)
}

/// Run one libtest binary (behind the plan's wrapper, if any) with the plan's arguments and
/// deadline; its stdout and stderr go to the console line by line.
fn run_test(path: &str, plan: &Plan) -> Result<Outcome> {
    let (reader, writer) = pipe()?;
    let mut command = match plan.wrapper.split_first() {
        Some((program, prefix)) => {
            let mut command = Command::new(program);
            command.args(prefix).arg(path);
            command
        }
        None => Command::new(path),
    };
    let mut child = command
        .arg("--test-threads=1")
        .args(&plan.args)
        .env("USBDF_IN_VM", "1")
        .env("RUST_BACKTRACE", "1")
        .env("PATH", "/bin")
        .env("HOME", "/tmp")
        .current_dir("/tmp")
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()
        .map_err(|e| format!("{path}: {e}"))?;
    let (eof_tx, eof_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::io::stdout();
        for line in BufReader::new(reader).split(b'\n').map_while(|l| l.ok()) {
            let mut out = out.lock();
            let _ = out.write_all(&line);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
        let _ = out.flush();
        let _ = eof_tx.send(());
    });
    let deadline = Instant::now() + Duration::from_secs(plan.timeout_secs);
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            break match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exit(code),
                (None, Some(sig)) => Outcome::Signal(sig),
                (None, None) => Outcome::Exit(-1),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::Timeout;
        }
        // Polling a child's exit needs a short sleep; this is not test synchronisation.
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the output drain (a leftover grandchild could keep the pipe open: don't wait forever).
    let _ = eof_rx.recv_timeout(Duration::from_secs(5));
    Ok(outcome)
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> std::io::Result<(fs::File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    unsafe { Ok((fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

fn power_off() -> ! {
    // SAFETY: sync and reboot have no memory-safety preconditions; we are PID 1.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
        // If power-off is not wired up, a reset also ends qemu (it runs with -no-reboot).
        libc::reboot(libc::RB_AUTOBOOT);
    }
    loop {
        std::thread::park();
    }
}
