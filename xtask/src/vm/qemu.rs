//! Booting the image in qemu (TCG: no KVM needed) and watching its serial console.
//!
//! The console is read line by line and fed to a [`Report`]; a watchdog kills qemu at the
//! run's deadline. After the agent's `done` marker qemu gets a few seconds to power off.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::report::{Report, Shown};
use crate::cmd::Result;

/// How to boot.
pub struct Boot<'a> {
    /// `qemu-system-x86_64`.
    pub qemu: &'a Path,
    /// Uncompressed kernel (PVH entry).
    pub kernel: &'a Path,
    /// The initramfs.
    pub initrd: &'a Path,
    /// The whole run's deadline.
    pub timeout: Duration,
    /// Save the full console here.
    pub keep_console: Option<&'a PathBuf>,
    /// Shows a test binary's output line instead of printing it (the bench's progress
    /// bar); `None` prints it.
    pub output: Option<&'a dyn Fn(&str)>,
}

/// How the VM run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// qemu exited (after `done`, or not).
    Exited,
    /// The watchdog killed it.
    TimedOut,
}

/// Host variables handed to the guest's tests as they are, so a seeded run printed by a
/// test (`USBDF_VM_SEED=… to repeat`) can be replayed with the same `cargo xtask` command.
const FORWARDED: [&str; 2] = ["USBDF_VM_SEED", "USBDF_SOAK_SEED"];

/// The guest kernel's command line, plus the [`FORWARDED`] variables that are set and
/// `USBDF_VM_APPEND` if set: `NAME=value` words the kernel does not know go to /init's
/// environment and so to every test binary (`cargo xtask soak` passes its settings that
/// way). Module parameters such as `usbcore.…=` do not work here: the agent loads modules
/// with finit_module, which ignores the command line.
fn kernel_command_line() -> String {
    let mut line = String::from("console=ttyS0 quiet panic=-1 rdinit=/init");
    let append = std::env::var("USBDF_VM_APPEND").unwrap_or_default();
    for name in FORWARDED {
        // `USBDF_VM_APPEND` wins (`cargo xtask soak` sets its own seed there).
        if append.contains(&format!("{name}=")) {
            continue;
        }
        if let Ok(value) = std::env::var(name) {
            let value = value.trim();
            // One word each: the kernel splits its command line on white space.
            if !value.is_empty() && !value.contains(char::is_whitespace) {
                line.push_str(&format!(" {name}={value}"));
            }
        }
    }
    if !append.trim().is_empty() {
        line.push(' ');
        line.push_str(append.trim());
    }
    line
}

/// Lines of console kept for a failure report.
pub const TAIL_LINES: usize = 40;

/// Boot, stream the console into `report`, print progress; returns how it ended and the
/// whole console.
pub fn run(boot: &Boot<'_>, report: &mut Report) -> Result<(End, Vec<String>)> {
    let mut command = Command::new(boot.qemu);
    command
        .args(["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048"])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-serial", "stdio", "-monitor", "none"])
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initrd)
        .args(["-append", &kernel_command_line()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", boot.qemu.display()))?;

    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut log = match boot.keep_console {
        Some(path) => Some(BufWriter::new(
            File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => None,
    };
    let mut console = Vec::new();
    let deadline = started + boot.timeout;
    let mut done_at: Option<Instant> = None;
    let end = loop {
        let now = Instant::now();
        // After `done`, give the guest a moment to power off by itself.
        let limit = match done_at {
            Some(t) => deadline.min(t + Duration::from_secs(10)),
            None => deadline,
        };
        if now >= limit {
            kill(&mut child);
            break if done_at.is_some() {
                End::Exited
            } else {
                End::TimedOut
            };
        }
        match rx.recv_timeout(limit - now) {
            Ok(line) => {
                if let Some(log) = &mut log {
                    writeln!(log, "{line}")?;
                }
                match report.line(&line, started.elapsed()) {
                    Shown::Hidden => {}
                    Shown::Status(status) => eprintln!("   vm: {status}"),
                    Shown::Output => match boot.output {
                        Some(show) => show(&line),
                        None => eprintln!("       {line}"),
                    },
                }
                if report.done && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
                console.push(line);
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                // Both streams closed: qemu is exiting.
                let _ = child.wait();
                break End::Exited;
            }
        }
    };
    report.interrupt(started.elapsed());
    if let Some(log) = &mut log {
        log.flush()?;
    }
    Ok((end, console))
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
