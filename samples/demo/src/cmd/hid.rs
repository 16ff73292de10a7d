//! `hid`: a HID interface's report descriptor, its input reports decoded by usage, and
//! output and feature reports sent.

use std::time::Duration;

use usbdf::{Host, Timeout};
use usbdf_hid::{HidDevice, HidError, InputReport, Report, ReportDescriptor, ReportKind};

use crate::cmd::{hex, parse_hex, VidPid};
use crate::error::{DemoError, Result, StepExt};
use crate::peer::Peers;

/// `hid`'s flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct HidArgs {
    /// Send an output report: its ID, a colon, the data in hex (`2:de:ad:be:ef`).
    /// Repeatable.
    #[arg(long, value_name = "ID:HEX")]
    pub output: Vec<ReportArg>,
    /// Read a feature report (GET_REPORT). Repeatable.
    #[arg(long, value_name = "ID")]
    pub feature_get: Vec<u8>,
    /// Set a feature report (SET_REPORT): `ID:HEX`. Repeatable.
    #[arg(long, value_name = "ID:HEX")]
    pub feature_set: Vec<ReportArg>,
    /// Input reports to print (0: none).
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    /// Give up on input reports after this long without one (milliseconds).
    #[arg(long, default_value_t = 5000)]
    pub wait_ms: u64,
    /// The HID device, as vid:pid in hex (default: the first HID interface bound).
    #[arg(long)]
    pub device: Option<VidPid>,
}

impl Default for HidArgs {
    fn default() -> Self {
        HidArgs {
            output: Vec::new(),
            feature_get: Vec::new(),
            feature_set: Vec::new(),
            count: 5,
            wait_ms: 5000,
            device: None,
        }
    }
}

/// A report ID and its data, from `ID:HEX` (the ID decimal or `0x` hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportArg {
    /// The report ID (0: the descriptor uses none).
    pub id: u8,
    /// The data, without the ID byte.
    pub data: Vec<u8>,
}

impl std::str::FromStr for ReportArg {
    type Err = DemoError;

    fn from_str(s: &str) -> Result<ReportArg> {
        let (id, data) = s.split_once(':').unwrap_or((s, ""));
        let id = match id.strip_prefix("0x") {
            Some(h) => u8::from_str_radix(h, 16),
            None => id.parse(),
        }
        .map_err(|_| DemoError::Argument(format!("{s:?}: the report ID must be 0..=255")))?;
        Ok(ReportArg {
            id,
            data: parse_hex(data)?,
        })
    }
}

/// What a `hid` run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidOutcome {
    /// The input reports received, decoded.
    pub inputs: Vec<InputReport>,
    /// Feature reports read, as (ID, data).
    pub features: Vec<(u8, Vec<u8>)>,
    /// Output reports sent.
    pub outputs_sent: usize,
}

/// One line per report of the descriptor: kind, ID, size, fields and usages.
pub fn describe_descriptor(rd: &ReportDescriptor) -> Vec<String> {
    rd.reports()
        .iter()
        .map(|r| {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| {
                    let usages: Vec<String> = f
                        .usages
                        .iter()
                        .map(|u| {
                            if u.first == u.last {
                                u.first.to_string()
                            } else {
                                format!("{}..{}", u.first, u.last)
                            }
                        })
                        .collect();
                    format!(
                        "{} x {} bits {} [{}..{}]",
                        f.count,
                        f.bit_size,
                        usages.join(","),
                        f.logical_min,
                        f.logical_max
                    )
                })
                .collect();
            format!(
                "{:?} report {}: {} bytes: {}",
                r.kind,
                r.id,
                r.data_len(),
                fields.join("; ")
            )
        })
        .collect()
}

/// An input report as `report 1: Vendor:0x0002 = [1, 2, 3]`, values grouped by usage.
pub fn describe_input(r: &InputReport) -> String {
    if let Some(e) = &r.error {
        return format!("report {}: not decoded ({e}): {}", r.id, hex(&r.raw));
    }
    let mut groups: Vec<(String, Vec<i64>)> = Vec::new();
    for v in &r.fields {
        let name = v.usage.map_or_else(|| "-".to_owned(), |u| u.to_string());
        match groups.last_mut() {
            Some((last, values)) if *last == name => values.push(v.value),
            _ => groups.push((name, vec![v.value])),
        }
    }
    let groups: Vec<String> = groups
        .into_iter()
        .map(|(name, values)| match values.as_slice() {
            [one] => format!("{name} = {one}"),
            many => format!("{name} = {many:?}"),
        })
        .collect();
    format!("report {}: {}", r.id, groups.join(", "))
}

/// Input report `n` of a demo sequence for `report`, on the wire (ID first when IDs are
/// used): data byte `i` is `16 * n + i`.
pub fn sample_input(rd: &ReportDescriptor, report: &Report, n: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(report.wire_len());
    if rd.uses_report_ids() {
        wire.push(report.id);
    }
    wire.extend((0..report.data_len()).map(|i| (16 * n + i) as u8));
    wire
}

/// Read up to `count` input reports, each within `wait`; fewer when none comes in time.
///
/// # Errors
/// The reader failed (not a timeout).
pub fn read_inputs(hid: &HidDevice, count: usize, wait: Duration) -> Result<Vec<InputReport>> {
    let mut got = Vec::new();
    while got.len() < count {
        match hid.read_input(Timeout::After(wait)) {
            Ok(r) => {
                println!("hid: {}", describe_input(&r));
                got.push(r);
            }
            Err(HidError::TimedOut) => break,
            Err(e) => return Err(e).step("read an input report"),
        }
    }
    Ok(got)
}

/// Send `args`' output and feature reports, read its feature reports, then print up to
/// `args.count` input reports (asking `peers.hid`, when there is one, to send them).
///
/// # Errors
/// Any request that fails.
pub fn exercise(hid: &HidDevice, args: &HidArgs, peers: &mut Peers) -> Result<HidOutcome> {
    let rd = hid.descriptor();
    for line in describe_descriptor(rd) {
        println!("hid: {line}");
    }
    for o in &args.output {
        hid.write_output(o.id, &o.data)
            .step(format!("send output report {}", o.id))?;
        println!("hid: output report {} sent: {}", o.id, hex(&o.data));
    }
    for f in &args.feature_set {
        hid.set_feature(f.id, &f.data)
            .step(format!("set feature report {}", f.id))?;
        println!("hid: feature report {} set: {}", f.id, hex(&f.data));
    }
    let mut features = Vec::new();
    for &id in &args.feature_get {
        let data = hid
            .get_feature(id)
            .step(format!("get feature report {id}"))?;
        println!("hid: feature report {id}: {}", hex(&data));
        features.push((id, data));
    }
    if let (Some(peer), Some(report)) =
        (peers.hid.as_mut(), rd.reports_of(ReportKind::Input).next())
    {
        for n in 0..args.count {
            peer.send_input_report(&sample_input(rd, report, n))
                .step("have the device side send an input report")?;
        }
    }
    let wait = Duration::from_millis(args.wait_ms.max(1));
    let inputs = read_inputs(hid, args.count, wait)?;
    if inputs.len() < args.count {
        println!(
            "hid: {} of {} input reports within {wait:?} each",
            inputs.len(),
            args.count
        );
    }
    Ok(HidOutcome {
        inputs,
        features,
        outputs_sent: args.output.len(),
    })
}

/// `hid`: bind the drivers on `host` and [`exercise`] the chosen HID interface.
///
/// # Errors
/// No matching HID interface bound; as [`exercise`].
pub fn run(host: &Host, args: &HidArgs, peers: &mut Peers) -> Result<HidOutcome> {
    let bound = crate::bind::bind(host)?;
    let handle = bound
        .hids
        .iter()
        .find(|h| args.device.is_none_or(|id| id.is(h.get().device())))
        .ok_or(DemoError::NoDevice("HID interface"))?;
    let hid = handle.get().clone();
    let d = hid.device().device_descriptor();
    println!(
        "hid: interface {} of {:04x}:{:04x}, input endpoint {:#04x}",
        hid.interface_number(),
        d.vendor_id,
        d.product_id,
        hid.input_endpoint()
    );
    exercise(&hid, args, peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_args_parse() {
        let r: ReportArg = "2:de:ad".parse().unwrap();
        assert_eq!(
            r,
            ReportArg {
                id: 2,
                data: vec![0xde, 0xad]
            }
        );
        let r: ReportArg = "0x03".parse().unwrap();
        assert_eq!(
            r,
            ReportArg {
                id: 3,
                data: vec![]
            }
        );
        assert!("300:00".parse::<ReportArg>().is_err());
        assert!("1:xyz".parse::<ReportArg>().is_err());
    }
}
