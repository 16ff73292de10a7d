//! Turning the console stream into results: agent markers plus libtest's own
//! `test result:` lines, counted per test binary.

use std::time::Duration;

use super::protocol::{Event, Outcome};

/// The result of one test binary.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Target name.
    pub name: String,
    /// How it ended; `None` if the VM died first.
    pub outcome: Option<Outcome>,
    /// From libtest's `test result:` line; `None` if it printed none.
    pub counts: Option<(u64, u64)>,
    /// Wall time on the host.
    pub elapsed: Duration,
}

impl Binary {
    /// Exited 0 and printed a passing result line.
    pub fn ok(&self) -> bool {
        self.outcome == Some(Outcome::Exit(0)) && matches!(self.counts, Some((_, 0)))
    }
}

/// What a console line means for the host's progress output.
#[derive(Debug, PartialEq, Eq)]
pub enum Shown {
    /// Nothing to show (kernel noise; it stays in the console log).
    Hidden,
    /// A progress line of ours.
    Status(String),
    /// Test output, to pass through.
    Output,
}

/// Everything learnt from one VM run.
#[derive(Debug, Default)]
pub struct Report {
    /// Host time from qemu start to the agent's `ready`.
    pub ready_after: Option<Duration>,
    /// The guest's own uptime at `ready`.
    pub guest_ready_ms: Option<u64>,
    /// Finished (or interrupted) test binaries, in run order.
    pub binaries: Vec<Binary>,
    /// Agent errors.
    pub errors: Vec<String>,
    /// The agent said `done`.
    pub done: bool,
    current: Option<(Binary, Duration)>,
}

impl Report {
    /// Feed one console line seen `at` after qemu started.
    pub fn line(&mut self, line: &str, at: Duration) -> Shown {
        let Some(event) = Event::parse(line) else {
            if let Some((binary, _)) = &mut self.current {
                if let Some(counts) = parse_test_result(line) {
                    let (passed, failed) = binary.counts.unwrap_or((0, 0));
                    binary.counts = Some((passed + counts.0, failed + counts.1));
                }
                return Shown::Output;
            }
            return Shown::Hidden;
        };
        match event {
            Event::Phase(text) => Shown::Status(format!("guest: {text}")),
            Event::Ready(ms) => {
                self.ready_after = Some(at);
                self.guest_ready_ms = Some(ms);
                Shown::Status(format!(
                    "gadgets enumerated {:.1} s after qemu start (guest uptime {:.1} s)",
                    at.as_secs_f64(),
                    ms as f64 / 1000.0
                ))
            }
            Event::Begin(name) => {
                let status = format!("running {name}");
                self.current = Some((
                    Binary {
                        name,
                        outcome: None,
                        counts: None,
                        elapsed: Duration::ZERO,
                    },
                    at,
                ));
                Shown::Status(status)
            }
            Event::End(name, outcome) => {
                let (mut binary, started) = self.current.take().unwrap_or_else(|| {
                    (
                        Binary {
                            name: name.clone(),
                            outcome: None,
                            counts: None,
                            elapsed: Duration::ZERO,
                        },
                        at,
                    )
                });
                binary.outcome = Some(outcome);
                binary.elapsed = at.saturating_sub(started);
                let verdict = if binary.ok() { "ok" } else { "FAILED" };
                let status = format!(
                    "{name}: {verdict} ({outcome}, {:.1} s)",
                    binary.elapsed.as_secs_f64()
                );
                self.binaries.push(binary);
                Shown::Status(status)
            }
            Event::Error(text) => {
                self.errors.push(text.clone());
                Shown::Status(format!("guest error: {text}"))
            }
            Event::Done => {
                self.done = true;
                Shown::Hidden
            }
        }
    }

    /// Close a binary the VM never finished (watchdog, crash).
    pub fn interrupt(&mut self, at: Duration) {
        if let Some((mut binary, started)) = self.current.take() {
            binary.elapsed = at.saturating_sub(started);
            self.binaries.push(binary);
        }
    }

    /// Total (passed, failed) tests.
    pub fn counts(&self) -> (u64, u64) {
        self.binaries
            .iter()
            .filter_map(|b| b.counts)
            .fold((0, 0), |(p, f), (bp, bf)| (p + bp, f + bf))
    }

    /// Whether the run passed, given the binaries that were `expected`.
    pub fn ok(&self, expected: &[String]) -> bool {
        self.done
            && self.errors.is_empty()
            && expected
                .iter()
                .all(|name| self.binaries.iter().any(|b| &b.name == name && b.ok()))
    }
}

/// `(passed, failed)` from a libtest line such as
/// `test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.12s`.
pub fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        match what {
            "passed" => passed = n.parse().ok(),
            "failed" => failed = n.parse().ok(),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_result_lines() {
        let ok = "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.12s";
        assert_eq!(parse_test_result(ok), Some((3, 0)));
        let bad = "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s";
        assert_eq!(parse_test_result(bad), Some((1, 2)));
        assert_eq!(parse_test_result("test foo ... ok"), None);
    }

    #[test]
    fn a_run_is_ok_only_if_every_binary_passed() {
        let mut report = Report::default();
        let t = Duration::from_secs(1);
        assert_eq!(
            report.line("[    0.1] usb 1-1: new high-speed USB device", t),
            Shown::Hidden
        );
        report.line("@@usbdf-vm ready 2900", t);
        report.line("@@usbdf-vm begin vm_smoke", t);
        assert_eq!(
            report.line("test result: ok. 4 passed; 0 failed; 0 ignored", t),
            Shown::Output
        );
        report.line("@@usbdf-vm end vm_smoke exit=0", t);
        let expected = ["vm_smoke".to_string()];
        assert!(!report.ok(&expected), "not done yet");
        report.line("@@usbdf-vm done", t);
        assert!(report.ok(&expected));
        assert_eq!(report.counts(), (4, 0));
        assert!(
            !report.ok(&["vm_smoke".into(), "vm_other".into()]),
            "a binary without a result fails the run"
        );
    }

    #[test]
    fn a_crash_after_passing_tests_is_a_failure() {
        let mut report = Report::default();
        let t = Duration::ZERO;
        report.line("@@usbdf-vm begin vm_smoke", t);
        report.line("test result: ok. 1 passed; 0 failed", t);
        report.line("@@usbdf-vm end vm_smoke signal=11", t);
        report.line("@@usbdf-vm done", t);
        assert!(!report.ok(&["vm_smoke".into()]));
    }
}
