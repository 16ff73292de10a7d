//! Building the in-VM test binaries.
//!
//! VM tests are the `usbdf-tests` integration targets named `vm_*`, each with
//! `required-features = ["vm"]`, so a plain `cargo test` never builds them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cmd::{self, bail, Result};

/// A built libtest executable.
#[derive(Debug, Clone)]
pub struct TestBinary {
    /// The cargo target name, e.g. `vm_smoke`.
    pub name: String,
    /// The executable on the host.
    pub path: PathBuf,
}

/// `cargo test -p usbdf-tests --features vm --no-run --test 'vm_*'`, returning the
/// executables cargo reports in its JSON messages.
pub fn build_vm_tests() -> Result<Vec<TestBinary>> {
    let mut command = cargo();
    command
        .args([
            "test",
            "-p",
            "usbdf-tests",
            "--features",
            "vm",
            "--no-run",
            "--test",
            "vm_*",
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(cmd::workspace_root())
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", cmd::display(&command)))?;
    let stdout = child.stdout.take().expect("piped");
    let mut tests = Vec::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(test) = parse_artifact(&line?) {
            tests.push(test);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed: {status}", cmd::display(&command));
    }
    if tests.is_empty() {
        bail!("no `vm_*` test targets in usbdf-tests");
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

/// The cargo that runs us (so toolchain overrides carry over).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// A test executable from one line of cargo's JSON output.
fn parse_artifact(line: &str) -> Option<TestBinary> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
        return None;
    }
    Some(TestBinary {
        name: msg["target"]["name"].as_str()?.to_string(),
        path: PathBuf::from(msg["executable"].as_str()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tidy check: every `tests/tests/vm_*.rs` is a `[[test]]` with `required-features =
    /// ["vm"]`; otherwise plain `cargo test` would build and run it without gadgets.
    #[test]
    fn every_vm_test_target_is_feature_gated() {
        let root = cmd::workspace_root().join("tests");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let gated: Vec<&str> = manifest
            .split("[[test]]")
            .skip(1)
            .filter(|block| block.contains(r#"required-features = ["vm"]"#))
            .filter_map(|block| block.lines().find_map(|l| l.trim().strip_prefix("name = ")))
            .map(|name| name.trim_matches('"'))
            .collect();
        for entry in std::fs::read_dir(root.join("tests")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(target) = name.strip_prefix("vm_").and(name.strip_suffix(".rs")) {
                assert!(
                    gated.contains(&target),
                    "tests/tests/{name} needs a [[test]] entry with required-features = [\"vm\"]"
                );
            }
        }
        for target in gated {
            assert!(
                target.starts_with("vm_"),
                "VM test target `{target}` must be named vm_*"
            );
        }
    }

    #[test]
    fn reads_test_executables_from_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["test"],"name":"vm_smoke"},"profile":{"test":true},"executable":"/t/debug/deps/vm_smoke-0a1b","fresh":false}"#;
        let test = parse_artifact(line).unwrap();
        assert_eq!(test.name, "vm_smoke");
        assert_eq!(test.path, PathBuf::from("/t/debug/deps/vm_smoke-0a1b"));
        let lib = r#"{"reason":"compiler-artifact","target":{"name":"nusb"},"profile":{"test":false},"executable":null}"#;
        assert!(parse_artifact(lib).is_none());
        assert!(parse_artifact(r#"{"reason":"build-finished","success":true}"#).is_none());
    }
}
