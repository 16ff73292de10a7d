//! `cargo xtask bench --perf`: sample where the guest's CPU time goes.
//!
//! qemu TCG emulates no PMU, so hardware events (cycles, instructions) do not exist in the
//! guest; perf's software event `cpu-clock` (an hrtimer per CPU) does. The agent runs the
//! bench program behind [`WRAPPER_PATH`], a shell script that records the whole guest
//! (`perf record -e cpu-clock -a -g`) while the program runs, then prints `perf report`
//! tables on the console, each line prefixed with [`LINE`]. The host cuts them out of the
//! console ([`extract`]), adds a summary (idle / user / kernel, top symbols:
//! [`summarise`]) and writes `target/bench/perf-<impls>.txt`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where the perf executable lands in the image.
pub const PERF_PATH: &str = "/usr/bin/perf";
/// Where the wrapper script lands in the image.
pub const WRAPPER_PATH: &str = "/usbdf/perf-wrap";
/// Prefix of a report line on the console.
pub const LINE: &str = "@@perf | ";
/// Prefix of a section header on the console.
const SECTION: &str = "@@perf section ";
/// The raw table section, parsed by [`summarise`].
const TABLE: &str = "table";
/// Default sampling frequency (Hz per CPU).
pub const DEFAULT_FREQ: u32 = 999;

/// The wrapper script: `perf-wrap <program> <args…>`.
pub fn wrapper_script(freq: u32) -> String {
    format!(
        r#"#!/bin/sh
# Written by `cargo xtask bench --perf`: sample the whole guest (cpu-clock: TCG has no PMU)
# while "$@" runs, then print the reports on the console for the host.
# libusb-bench is run as a (no-op) test too: only the bench driver is profiled (the
# libusb-bench processes it starts are, with -a, part of its profile).
case "$1" in
*/usbdf-bench) ;;
*) exec "$@" ;;
esac
data=/tmp/perf.data
echo 0 > /proc/sys/kernel/kptr_restrict
echo -1 > /proc/sys/kernel/perf_event_paranoid
{PERF_PATH} record -e cpu-clock -F {freq} -a -g -B -o $data -- "$@"
rc=$?
report() {{
    {PERF_PATH} report -i $data --stdio --no-children "$@" 2>&1 | grep -v tips.txt |
        sed 's/^/{LINE}/'
}}
echo "@@perf begin"
echo "{SECTION}dso"
report -g none --sort dso
echo "{SECTION}dso,sym"
report -g none --sort dso,sym --percent-limit 0.5
echo "{SECTION}sym, with callers"
report -g fractal,5,callee --sort sym --percent-limit 1.5
echo "{SECTION}{TABLE}"
report -g none --sort comm,dso,sym -n -t '|'
echo "@@perf end"
exit $rc
"#
    )
}

/// The reports printed by the wrapper: (section name, lines), in order.
pub fn extract(console: &[String]) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in console {
        if let Some(name) = line.find(SECTION).map(|at| &line[at + SECTION.len()..]) {
            sections.push((name.trim().to_string(), Vec::new()));
        } else if let Some(text) = line.find(LINE).map(|at| &line[at + LINE.len()..]) {
            if let Some((_, lines)) = sections.last_mut() {
                lines.push(text.trim_end().to_string());
            }
        }
    }
    sections
}

/// One row of the raw table: samples of one (command, object, symbol).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    samples: u64,
    comm: String,
    dso: String,
    /// `k` (kernel), `.` (user), or whatever perf printed between the brackets.
    mode: String,
    sym: String,
}

/// Parse `perf report -n -t '|' --sort comm,dso,sym` lines.
fn parse_table(lines: &[String]) -> Vec<Row> {
    lines
        .iter()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut fields = l.splitn(5, '|').map(str::trim);
            let _overhead = fields.next()?;
            let samples = fields.next()?.parse().ok()?;
            let comm = fields.next()?.to_string();
            let dso = fields.next()?.to_string();
            let sym = fields.next()?;
            let (mode, sym) = match sym.strip_prefix('[').and_then(|s| s.split_once("] ")) {
                Some((mode, sym)) => (mode.to_string(), sym.trim().to_string()),
                None => (String::new(), sym.to_string()),
            };
            Some(Row {
                samples,
                comm,
                dso,
                mode,
                sym,
            })
        })
        .collect()
}

/// The idle loop: the swapper task in an idle or halt function.
fn is_idle(row: &Row) -> bool {
    row.comm.starts_with("swapper")
        && row.mode == "k"
        && (row.sym.contains("idle") || row.sym.contains("halt"))
}

/// Summary of the raw table: idle / user / kernel shares, per command, top symbols.
pub fn summarise(sections: &[(String, Vec<String>)], top: usize) -> String {
    let Some((_, lines)) = sections.iter().find(|(name, _)| name == TABLE) else {
        return "no perf table in the console (did perf run?)\n".to_string();
    };
    let rows = parse_table(lines);
    let total: u64 = rows.iter().map(|r| r.samples).sum();
    let mut out = String::new();
    if total == 0 {
        out.push_str("no samples\n");
        return out;
    }
    let idle: u64 = rows.iter().filter(|r| is_idle(r)).map(|r| r.samples).sum();
    let busy_rows: Vec<&Row> = rows.iter().filter(|r| !is_idle(r)).collect();
    let busy = total - idle;
    let sum = |mode: &str| -> u64 {
        busy_rows
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| r.samples)
            .sum()
    };
    let (user, kernel) = (sum("."), sum("k"));
    let pct = |n: u64, of: u64| 100.0 * n as f64 / of.max(1) as f64;
    let _ = writeln!(
        out,
        "samples: {total} (cpu-clock, all CPUs); idle {idle} ({:.1} %), busy {busy} ({:.1} %)",
        pct(idle, total),
        pct(busy, total)
    );
    let _ = writeln!(
        out,
        "busy samples: user {:.1} %, kernel {:.1} %, other {:.1} %",
        pct(user, busy),
        pct(kernel, busy),
        pct(busy - user - kernel, busy)
    );

    let mut by_comm: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &busy_rows {
        let e = by_comm.entry(&r.comm).or_default();
        if r.mode == "." {
            e.0 += r.samples;
        } else {
            e.1 += r.samples;
        }
    }
    let mut by_comm: Vec<_> = by_comm.into_iter().collect();
    by_comm.sort_by_key(|(_, (u, k))| std::cmp::Reverse(u + k));
    out.push_str("\nbusy samples by command (% of busy: user + kernel)\n");
    for (comm, (u, k)) in by_comm.iter().take(top) {
        let _ = writeln!(
            out,
            "  {:>5.1} %  {:>5.1} + {:>5.1}  {comm}",
            pct(u + k, busy),
            pct(*u, busy),
            pct(*k, busy)
        );
    }

    for (title, mode) in [("user-space", "."), ("kernel (not idle)", "k")] {
        let mut by_sym: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for r in busy_rows.iter().filter(|r| r.mode == mode) {
            *by_sym.entry((&r.dso, &r.sym)).or_default() += r.samples;
        }
        let mut by_sym: Vec<_> = by_sym.into_iter().collect();
        by_sym.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let _ = writeln!(
            out,
            "\ntop {top} {title} symbols, self (% of busy samples, % of {title} samples)"
        );
        let of = if mode == "." { user } else { kernel };
        for ((dso, sym), n) in by_sym.iter().take(top) {
            let _ = writeln!(
                out,
                "  {:>5.1} %  {:>5.1} %  {dso}  {sym}",
                pct(*n, busy),
                pct(*n, of)
            );
        }
    }
    out
}

/// The file written for one run: summary, then every section as perf printed it.
pub fn render(sections: &[(String, Vec<String>)]) -> String {
    let mut out = String::from("# cargo xtask bench --perf: summary\n\n");
    out.push_str(&summarise(sections, 15));
    for (name, lines) in sections {
        let _ = writeln!(out, "\n# perf report: {name}\n");
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_and_summarises() {
        let console: Vec<String> = [
            "bench: noise",
            "@@perf begin",
            "@@perf section dso",
            "@@perf | # Overhead  Shared Object",
            "@@perf |     60.00%  [kernel.kallsyms]",
            "[   12.3] a kernel line in between",
            "@@perf section table",
            "@@perf | # Overhead|Samples|Command|Shared Object|Symbol",
            "@@perf |  50.00% |50|swapper|[kernel.kallsyms]|[k] pv_native_safe_halt",
            "@@perf |  20.00% |20|usbdf-bench|usbdf-bench|[.] usbdf::engine::pump",
            "@@perf |  10.00% |10|usbdf-bench|[kernel.kallsyms]|[k] proc_do_submiturb",
            "@@perf |  10.00% |10|swapper|[dummy_hcd]|[k] dummy_timer",
            "@@perf |  10.00% |10|usbdf-bench|libc.so.6|[.] __memmove_avx_unaligned_erms",
            "@@perf end",
        ]
        .map(String::from)
        .to_vec();
        let sections = extract(&console);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].1.len(), 2, "{sections:?}");
        let rows = parse_table(&sections[1].1);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1].sym, "usbdf::engine::pump");
        assert_eq!(rows[1].mode, ".");
        let summary = summarise(&sections, 15);
        assert!(summary.contains("idle 50 (50.0 %), busy 50"), "{summary}");
        assert!(summary.contains("user 60.0 %, kernel 40.0 %"), "{summary}");
        assert!(
            summary.contains("40.0 %   66.7 %  usbdf-bench  usbdf::engine::pump"),
            "{summary}"
        );
        assert!(render(&sections).contains("# perf report: dso"));
    }

    #[test]
    fn script_records_the_whole_guest() {
        let script = wrapper_script(499);
        assert!(script.contains("record -e cpu-clock -F 499 -a -g"));
        assert!(script.starts_with("#!/bin/sh\n"));
    }
}
