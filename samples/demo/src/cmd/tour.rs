//! What runs with no arguments: bind the sample drivers, print the bindings, and show
//! each driver working. Steps that need a program on the device side (a serial echo,
//! HID input reports) use the [`Peers`] when there are some, and say what they skipped
//! when there are none.

use std::io::Write;
use std::time::Duration;

use usbdf::driver::Binding;
use usbdf::{Host, Timeout};
use usbdf_cdc_acm::{AcmError, CdcAcm, ControlLines, LineCoding};
use usbdf_hid::{HidDevice, InputReport, ReportKind};
use usbdf_loopback::{SourceSink, StreamConfig};

use crate::bind::{bind, Bound};
use crate::cmd::hid::{describe_descriptor, read_inputs, sample_input};
use crate::cmd::loopback::{self, LoopbackArgs, LoopbackOutcome};
use crate::cmd::serial::describe;
use crate::cmd::{hex, list};
use crate::error::{DemoError, Result, StepExt};
use crate::peer::Peers;

/// How much the tour moves, and how long it waits for what a device side may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TourOptions {
    /// Bytes streamed through the Loopback function.
    pub loopback_bytes: usize,
    /// Bytes streamed from the SourceSink function.
    pub sourcesink_bytes: usize,
    /// Bytes sent through the CDC-ACM port.
    pub serial_bytes: usize,
    /// Input reports the HID device side is asked to send (with a peer), or the most read
    /// (without one).
    pub hid_reports: usize,
    /// How long to wait for each input report.
    pub hid_wait: Duration,
}

impl Default for TourOptions {
    fn default() -> Self {
        TourOptions {
            loopback_bytes: 8 << 20,
            sourcesink_bytes: 4 << 20,
            serial_bytes: 1000,
            hid_reports: 3,
            hid_wait: Duration::from_secs(2),
        }
    }
}

/// What the Loopback step did.
pub type LoopbackSummary = LoopbackOutcome;

/// What the SourceSink step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceSinkSummary {
    /// Bytes read from the source and checked against pattern 1.
    pub checked_bytes: u64,
    /// Source throughput, MB/s.
    pub mb_per_s: f64,
    /// Bytes of pattern the sink accepted.
    pub sink_bytes: usize,
    /// Bytes written and read back through the vendor requests.
    pub vendor_bytes: usize,
}

/// What the CDC-ACM step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSummary {
    /// The line coding set.
    pub line_coding_set: LineCoding,
    /// The line coding read back.
    pub line_coding_read: LineCoding,
    /// Bytes the device took.
    pub bytes_written: usize,
    /// Bytes echoed back and compared (`None`: no device side to echo).
    pub bytes_echoed: Option<usize>,
}

/// What the HID step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidSummary {
    /// Reports in the report descriptor.
    pub descriptor_reports: usize,
    /// The output report as the device side received it (`None`: no device side).
    pub output_received: Option<Vec<u8>>,
    /// The input reports received, decoded.
    pub inputs: Vec<InputReport>,
}

/// What the tour did; a step that did not run is `None` and explained in `skipped`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The host's name (`system` or `simulator`).
    pub host: &'static str,
    /// What the registry bound.
    pub bindings: Vec<Binding>,
    /// The Loopback step.
    pub loopback: Option<LoopbackSummary>,
    /// The SourceSink step.
    pub sourcesink: Option<SourceSinkSummary>,
    /// The CDC-ACM step.
    pub serial: Option<SerialSummary>,
    /// The HID step.
    pub hid: Option<HidSummary>,
    /// What was skipped, and why.
    pub skipped: Vec<String>,
}

/// Bind the sample drivers on `host`, print the bindings, and run each driver's step.
///
/// # Errors
/// The first step that fails, with its cause.
pub fn run(host: &Host, peers: &mut Peers, options: &TourOptions) -> Result<Summary> {
    let bound = bind(host)?;
    print_bindings(host, &bound)?;
    let mut summary = Summary {
        host: host.name(),
        bindings: bound.bindings(),
        loopback: None,
        sourcesink: None,
        serial: None,
        hid: None,
        skipped: Vec::new(),
    };
    match bound.loopbacks.first() {
        Some(h) => {
            let args = LoopbackArgs {
                total: options.loopback_bytes,
                ..LoopbackArgs::default()
            };
            let o = loopback::stream(&h.get(), &args).step("loopback")?;
            println!(
                "loopback: echoed a {}-byte message; streamed {} bytes in {}-byte requests, \
                 {} in flight, every byte verified: {:.1} MB/s each way",
                o.echoed,
                o.verified_bytes,
                args.size,
                args.depth,
                o.mb_per_s()
            );
            summary.loopback = Some(o);
        }
        None => skip(&mut summary, "loopback"),
    }
    match bound.sourcesinks.first() {
        Some(h) => summary.sourcesink = Some(sourcesink(&h.get(), options).step("sourcesink")?),
        None => skip(&mut summary, "sourcesink"),
    }
    match bound.ports.first() {
        Some(h) => {
            let (s, skipped) = serial(&h.get(), peers, options).step("cdc-acm")?;
            summary.serial = Some(s);
            summary.skipped.extend(skipped);
        }
        None => skip(&mut summary, "cdc-acm"),
    }
    match bound.hids.first() {
        Some(h) => {
            let (s, skipped) = hid(&h.get(), peers, options).step("hid")?;
            summary.hid = Some(s);
            summary.skipped.extend(skipped);
        }
        None => skip(&mut summary, "hid"),
    }
    println!("All demos passed on the {} host.", host.name());
    Ok(summary)
}

fn skip(summary: &mut Summary, what: &str) {
    println!("{what}: skipped, no such device bound");
    summary.skipped.push(format!("{what}: no device bound"));
}

fn print_bindings(host: &Host, bound: &Bound) -> Result<()> {
    let bindings = bound.bindings();
    println!("Bindings ({}):", bindings.len());
    for b in &bindings {
        println!(
            "  {:<18} {:04x}:{:04x}  {} addr {:<3} interfaces {:?}",
            b.driver, b.vendor_id, b.product_id, b.bus_id, b.address, b.interfaces
        );
    }
    let devices = host.devices().step("list the USB devices")?;
    for p in list::Listing::new(host.name(), &devices, bound).problems {
        println!("  problem: {p}");
    }
    std::io::stdout().flush().step("write to standard output")
}

fn sourcesink(ss: &SourceSink, options: &TourOptions) -> Result<SourceSinkSummary> {
    const T: Timeout = Timeout::millis(2000);
    let first = ss.read_checked(4096, T).step("read the source")?.len() as u64;
    let t = ss
        .read_throughput(&StreamConfig::new(options.sourcesink_bytes, 64 * 1024, 8))
        .step("stream from the source")?;
    let sink_bytes = 4096;
    ss.write_pattern(sink_bytes, T)
        .step("write the pattern to the sink")?;
    let ep0: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(3)).collect();
    ss.vendor_write(&ep0, T).step("vendor request 0x5b")?;
    let back = ss
        .vendor_read(ep0.len() as u16, T)
        .step("vendor request 0x5c")?;
    if back != ep0 {
        return Err(DemoError::Check(format!(
            "vendor 0x5c read back {} instead of {}",
            hex(&back),
            hex(&ep0)
        )));
    }
    let s = SourceSinkSummary {
        checked_bytes: first + t.bytes,
        mb_per_s: t.bytes_per_second() / 1e6,
        sink_bytes,
        vendor_bytes: ep0.len(),
    };
    println!(
        "sourcesink: {} bytes of pattern 1 read and checked ({:.1} MB/s); {} bytes of \
         pattern accepted by the sink; vendor requests 0x5b/0x5c round-tripped {} bytes",
        s.checked_bytes, s.mb_per_s, s.sink_bytes, s.vendor_bytes
    );
    Ok(s)
}

/// The bytes the tour sends through the port: a greeting, then a counting pattern.
fn serial_payload(len: usize) -> Vec<u8> {
    let greeting = b"hello over CDC-ACM\r\n";
    greeting
        .iter()
        .copied()
        .chain((0..).map(|i: usize| (i % 251) as u8))
        .take(len.max(1))
        .collect()
}

fn serial(
    port: &CdcAcm,
    peers: &mut Peers,
    options: &TourOptions,
) -> Result<(SerialSummary, Vec<String>)> {
    let set = LineCoding {
        rate: 115_200,
        ..LineCoding::default()
    };
    port.set_line_coding(&set).step("SET_LINE_CODING")?;
    let read = port.line_coding().step("GET_LINE_CODING")?;
    if read != set {
        return Err(DemoError::Check(format!(
            "line coding {} was set but {} read back",
            describe(&set),
            describe(&read)
        )));
    }
    port.set_control_lines(ControlLines::ASSERTED)
        .step("SET_CONTROL_LINE_STATE")?;
    let data = serial_payload(options.serial_bytes);
    let mut summary = SerialSummary {
        line_coding_set: set,
        line_coding_read: read,
        bytes_written: 0,
        bytes_echoed: None,
    };
    let mut skipped = Vec::new();
    let writer = port.writer();
    let head = format!(
        "cdc-acm: line coding {} set and read back; DTR and RTS asserted",
        describe(&read)
    );
    let Some(peer) = peers.serial.as_mut() else {
        // Nothing on the device side will answer: write once, briefly.
        let why = match writer.write_timeout(&data, Timeout::millis(500)) {
            Ok(n) => {
                summary.bytes_written = n;
                format!("wrote {n} bytes; nothing on the device side echoes them")
            }
            Err(AcmError::TimedOut) => "the device took no data within 500 ms (nothing reads \
                 its side; on a Linux gadget, open /dev/ttyGS0)"
                .to_owned(),
            Err(e) => return Err(e).step("write to the port"),
        };
        println!("{head}; {why}: echo skipped");
        skipped.push(format!("cdc-acm echo: {why}"));
        return Ok((summary, skipped));
    };
    writer.set_timeout(Timeout::millis(5000));
    (&writer).write_all(&data).step("write to the port")?;
    summary.bytes_written = data.len();
    peer.echo(data.len(), Duration::from_secs(5))
        .step("have the device side echo")?;
    let reader = port.reader();
    reader.set_timeout(Timeout::millis(5000));
    let mut back = vec![0; data.len()];
    std::io::Read::read_exact(&mut &reader, &mut back).step("read the echo")?;
    if back != data {
        let at = back.iter().zip(&data).position(|(a, b)| a != b);
        return Err(DemoError::Check(format!(
            "the echo differs from what was sent at byte {at:?}"
        )));
    }
    summary.bytes_echoed = Some(back.len());
    println!(
        "{head}; {} bytes echoed by the device side, byte for byte",
        back.len()
    );
    Ok((summary, skipped))
}

fn hid(
    hid: &HidDevice,
    peers: &mut Peers,
    options: &TourOptions,
) -> Result<(HidSummary, Vec<String>)> {
    let rd = hid.descriptor();
    let lines = describe_descriptor(rd);
    println!("hid: report descriptor with {} reports:", lines.len());
    for line in &lines {
        println!("hid:   {line}");
    }
    let mut summary = HidSummary {
        descriptor_reports: lines.len(),
        output_received: None,
        inputs: Vec::new(),
    };
    let mut skipped = Vec::new();
    let Some(peer) = peers.hid.as_mut() else {
        let inputs = read_inputs(hid, options.hid_reports.max(1), options.hid_wait)?;
        if inputs.is_empty() {
            let why = format!(
                "no input report within {:?} (nothing on the device side sends one; on a \
                 Linux gadget, write reports to /dev/hidg0)",
                options.hid_wait
            );
            println!("hid: {why}");
            skipped.push(format!("hid input: {why}"));
        }
        println!("hid: output report skipped: nothing on the device side would read it");
        skipped.push("hid output: no device side".into());
        summary.inputs = inputs;
        return Ok((summary, skipped));
    };
    if let Some(out) = rd.reports_of(ReportKind::Output).next() {
        let data: Vec<u8> = (1..=out.data_len() as u8).collect();
        hid.write_output(out.id, &data)
            .step(format!("send output report {}", out.id))?;
        let got = peer
            .take_output_report(Duration::from_secs(5))
            .step("read the output report on the device side")?;
        if got.ends_with(&data) {
            println!(
                "hid: output report {} reached the device side: {}",
                out.id,
                hex(&got)
            );
        } else {
            return Err(DemoError::Check(format!(
                "output report {} arrived as {}, not ending with {}",
                out.id,
                hex(&got),
                hex(&data)
            )));
        }
        summary.output_received = Some(got);
    }
    let Some(input) = rd.reports_of(ReportKind::Input).next() else {
        skipped.push("hid input: the descriptor has no input report".into());
        return Ok((summary, skipped));
    };
    let sent: Vec<Vec<u8>> = (0..options.hid_reports)
        .map(|n| sample_input(rd, input, n))
        .collect();
    for r in &sent {
        peer.send_input_report(r)
            .step("have the device side send an input report")?;
    }
    let inputs = read_inputs(hid, sent.len(), options.hid_wait)?;
    let raw: Vec<&[u8]> = inputs.iter().map(|r| r.raw.as_slice()).collect();
    if raw != sent.iter().map(Vec::as_slice).collect::<Vec<_>>() {
        return Err(DemoError::Check(format!(
            "{} input reports sent, {} received as sent",
            sent.len(),
            raw.iter()
                .zip(&sent)
                .filter(|(a, b)| **a == b.as_slice())
                .count()
        )));
    }
    summary.inputs = inputs;
    Ok((summary, skipped))
}
