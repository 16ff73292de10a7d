//! What the host and the guest agent tell each other.
//!
//! Host → guest: a plan file in the image ([`PLAN_PATH`]), one directive per line:
//! `timeout <secs>` (per test binary), `arg <libtest arg>` (repeatable), `wrap <word>`
//! (repeatable: a command prefix, e.g. a profiler, the test's path and arguments follow),
//! `test <name> <path>`.
//!
//! Guest → host: marker lines on the serial console, `@@usbdf-vm <event> ...`:
//! `phase <text>`, `ready <ms since boot>`, `begin <name>`, `end <name> <outcome>` (outcome
//! `exit=<code>`, `signal=<n>` or `timeout`), `error <text>`, and finally `done`. Everything
//! else on the console (test output, kernel messages) is passed through as is.

use std::fmt::{self, Write as _};

/// Prefix of every marker line.
pub const MARKER: &str = "@@usbdf-vm";
/// Where the plan lives in the image.
pub const PLAN_PATH: &str = "/usbdf/plan";
/// Where test binaries live in the image.
pub const TEST_DIR: &str = "/usbdf/tests";

/// What the agent runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Seconds each test binary may run before it is killed.
    pub timeout_secs: u64,
    /// Arguments for every test binary (after `--test-threads=1`).
    pub args: Vec<String>,
    /// Command prefix for every test binary (empty: run it directly): the agent runs
    /// `wrapper[0] wrapper[1..] <path> --test-threads=1 <args>`.
    pub wrapper: Vec<String>,
    /// (name, path in the image), in run order.
    pub tests: Vec<(String, String)>,
}

impl Plan {
    /// The plan file's text.
    pub fn encode(&self) -> String {
        let mut out = format!("timeout {}\n", self.timeout_secs);
        for arg in &self.args {
            writeln!(out, "arg {arg}").expect("write to String");
        }
        for word in &self.wrapper {
            writeln!(out, "wrap {word}").expect("write to String");
        }
        for (name, path) in &self.tests {
            writeln!(out, "test {name} {path}").expect("write to String");
        }
        out
    }

    /// Parse a plan file.
    pub fn decode(text: &str) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "timeout" => {
                    plan.timeout_secs = rest.parse().map_err(|e| format!("plan: {line}: {e}"))?
                }
                "arg" => plan.args.push(rest.to_string()),
                "wrap" => plan.wrapper.push(rest.to_string()),
                "test" => {
                    let (name, path) = rest
                        .split_once(' ')
                        .ok_or_else(|| format!("plan: {line}"))?;
                    plan.tests.push((name.to_string(), path.to_string()));
                }
                _ => return Err(format!("plan: unknown directive `{line}`")),
            }
        }
        Ok(plan)
    }
}

/// A marker event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The agent reached a boot phase.
    Phase(String),
    /// Every gadget is enumerated; milliseconds since the guest kernel started.
    Ready(u64),
    /// A test binary starts.
    Begin(String),
    /// A test binary ended.
    End(String, Outcome),
    /// The agent failed outside any test binary.
    Error(String),
    /// The agent is about to power off.
    Done,
}

/// How a test binary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code.
    Exit(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Killed by the agent at the deadline.
    Timeout,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exit(code) => write!(f, "exit={code}"),
            Outcome::Signal(sig) => write!(f, "signal={sig}"),
            Outcome::Timeout => f.write_str("timeout"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Phase(text) => write!(f, "{MARKER} phase {text}"),
            Event::Ready(ms) => write!(f, "{MARKER} ready {ms}"),
            Event::Begin(name) => write!(f, "{MARKER} begin {name}"),
            Event::End(name, outcome) => write!(f, "{MARKER} end {name} {outcome}"),
            Event::Error(text) => write!(f, "{MARKER} error {text}"),
            Event::Done => write!(f, "{MARKER} done"),
        }
    }
}

impl Event {
    /// Parse a console line; `None` unless it is a well-formed marker.
    pub fn parse(line: &str) -> Option<Event> {
        let rest = line.trim_end().strip_prefix(MARKER)?.strip_prefix(' ')?;
        let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(match kind {
            "phase" => Event::Phase(arg.to_string()),
            "ready" => Event::Ready(arg.parse().ok()?),
            "begin" => Event::Begin(arg.to_string()),
            "end" => {
                let (name, outcome) = arg.rsplit_once(' ')?;
                let outcome = match outcome.split_once('=') {
                    Some(("exit", code)) => Outcome::Exit(code.parse().ok()?),
                    Some(("signal", sig)) => Outcome::Signal(sig.parse().ok()?),
                    None if outcome == "timeout" => Outcome::Timeout,
                    _ => return None,
                };
                Event::End(name.to_string(), outcome)
            }
            "error" => Event::Error(arg.to_string()),
            "done" => Event::Done,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips() {
        let plan = Plan {
            timeout_secs: 300,
            args: vec!["loopback".into(), "--exact".into()],
            wrapper: vec!["/usbdf/perf-wrap".into(), "-F 999".into()],
            tests: vec![("vm_smoke".into(), "/usbdf/tests/vm_smoke".into())],
        };
        assert_eq!(Plan::decode(&plan.encode()).unwrap(), plan);
    }

    #[test]
    fn events_round_trip() {
        for event in [
            Event::Phase("loading modules".into()),
            Event::Ready(2950),
            Event::Begin("vm_smoke".into()),
            Event::End("vm_smoke".into(), Outcome::Exit(101)),
            Event::End("vm_smoke".into(), Outcome::Signal(11)),
            Event::End("vm_smoke".into(), Outcome::Timeout),
            Event::Error("insmod dummy_hcd: File exists".into()),
            Event::Done,
        ] {
            assert_eq!(
                Event::parse(&event.to_string()),
                Some(event.clone()),
                "{event}"
            );
        }
        assert_eq!(Event::parse("test result: ok."), None);
        assert_eq!(Event::parse("@@usbdf-vm end vm_smoke exit=x"), None);
    }
}
