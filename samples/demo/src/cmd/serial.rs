//! `serial`: a terminal on a CDC-ACM port. Standard input goes to the device, what the
//! device sends goes to standard output; line coding, control lines and serial-state
//! notifications are reported on standard error.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use usbdf::{Host, Timeout};
use usbdf_cdc_acm::{
    AcmError, AcmReader, AcmWriter, CdcAcm, ControlLines, LineCoding, Notification, Parity,
    SerialState, StopBits,
};

use crate::cmd::VidPid;
use crate::error::{DemoError, Result, StepExt};

/// How often the device reader looks whether standard input has ended.
const READ_SLICE: Timeout = Timeout::millis(100);
/// Bound of each write to the device.
const WRITE_TIMEOUT: Timeout = Timeout::millis(5000);

/// `serial`'s flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SerialArgs {
    /// Bits per second (SET_LINE_CODING; 8N1).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Assert DTR (data terminal ready).
    #[arg(long)]
    pub dtr: bool,
    /// Assert RTS (request to send).
    #[arg(long)]
    pub rts: bool,
    /// The port's device, as vid:pid in hex (default: the first port bound).
    #[arg(long)]
    pub device: Option<VidPid>,
    /// After standard input ends, keep printing what the device sends until it has been
    /// quiet this long (milliseconds).
    #[arg(long, default_value_t = 500)]
    pub linger_ms: u64,
}

impl Default for SerialArgs {
    fn default() -> Self {
        SerialArgs {
            baud: 115_200,
            dtr: false,
            rts: false,
            device: None,
            linger_ms: 500,
        }
    }
}

/// What a terminal session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialOutcome {
    /// The line coding read back after setting it.
    pub line_coding: LineCoding,
    /// Bytes from standard input to the device.
    pub sent: u64,
    /// Bytes from the device to standard output.
    pub received: u64,
    /// The serial states the device notified, in order.
    pub states: Vec<SerialState>,
}

/// A line coding as `115200 8N1`.
pub fn describe(lc: &LineCoding) -> String {
    let parity = match lc.parity {
        Parity::None => "N".to_owned(),
        Parity::Odd => "O".to_owned(),
        Parity::Even => "E".to_owned(),
        Parity::Mark => "M".to_owned(),
        Parity::Space => "S".to_owned(),
        Parity::Other(v) => format!("?{v}"),
    };
    let stop = match lc.stop_bits {
        StopBits::One => "1".to_owned(),
        StopBits::OnePointFive => "1.5".to_owned(),
        StopBits::Two => "2".to_owned(),
        StopBits::Other(v) => format!("?{v}"),
    };
    format!("{} {}{parity}{stop}", lc.rate, lc.data_bits.get())
}

/// Set the line coding and control lines from `args`, then copy `input` to the port and
/// the port to `output` until `input` ends and the device has been quiet for
/// `args.linger_ms`.
///
/// # Errors
/// A class request, a read or a write that fails; the line coding does not read back.
pub fn session(
    port: &CdcAcm,
    args: &SerialArgs,
    input: &mut impl Read,
    output: &mut (impl Write + Send),
) -> Result<SerialOutcome> {
    pump(prepare(port, args)?, args, input, output)
}

/// A port set up for a session: what [`pump`] needs, without the port itself (so the
/// registry can stop it while a session waits on standard input).
struct Prepared {
    line_coding: LineCoding,
    notifications: Receiver<Notification>,
    reader: AcmReader,
    writer: AcmWriter,
}

/// Set the line coding (checked by reading it back) and the control lines; subscribe to
/// notifications.
fn prepare(port: &CdcAcm, args: &SerialArgs) -> Result<Prepared> {
    let coding = LineCoding {
        rate: args.baud,
        ..LineCoding::default()
    };
    port.set_line_coding(&coding).step("SET_LINE_CODING")?;
    let line_coding = port.line_coding().step("GET_LINE_CODING")?;
    eprintln!("serial: line coding {}", describe(&line_coding));
    if line_coding != coding {
        return Err(DemoError::Check(format!(
            "the port reads back line coding {} after {} was set",
            describe(&line_coding),
            describe(&coding)
        )));
    }
    let lines = ControlLines {
        dtr: args.dtr,
        rts: args.rts,
    };
    if let Some(s) = port.latest_serial_state() {
        eprintln!("serial: state {s:?}");
    }
    // Changes from here on are printed as they come.
    let notifications = port.subscribe();
    port.set_control_lines(lines)
        .step("SET_CONTROL_LINE_STATE")?;
    eprintln!("serial: DTR {} RTS {}", on(lines.dtr), on(lines.rts));
    Ok(Prepared {
        line_coding,
        notifications,
        reader: port.reader(),
        writer: port.writer(),
    })
}

/// Copy `input` to the port and the port to `output` until `input` ends and the port has
/// been quiet for `args.linger_ms`.
fn pump(
    prepared: Prepared,
    args: &SerialArgs,
    input: &mut impl Read,
    output: &mut (impl Write + Send),
) -> Result<SerialOutcome> {
    let Prepared {
        line_coding,
        notifications,
        reader,
        mut writer,
    } = prepared;
    let ended = AtomicBool::new(false);
    let linger = Timeout::After(Duration::from_millis(args.linger_ms.max(1)));
    writer.set_timeout(WRITE_TIMEOUT);
    let (ended_ref, reader_ref) = (&ended, &reader);
    let (to_device, from_device) = std::thread::scope(|s| {
        let from_device = s.spawn(move || {
            let mut buf = [0u8; 4096];
            let mut received = 0u64;
            let mut states = Vec::new();
            loop {
                let done = ended_ref.load(Ordering::Acquire);
                let read =
                    reader_ref.read_timeout(&mut buf, if done { linger } else { READ_SLICE });
                report_states(&notifications, &mut states);
                match read {
                    Ok(n) => {
                        output
                            .write_all(&buf[..n])
                            .and_then(|()| output.flush())
                            .step("write to standard output")?;
                        received += n as u64;
                    }
                    Err(AcmError::TimedOut) if done => return Ok((received, states)),
                    Err(AcmError::TimedOut) => {}
                    Err(e) => return Err(e).step("read from the port"),
                }
            }
        });
        let to_device = copy_to_device(input, &mut writer);
        ended.store(true, Ordering::Release);
        (to_device, from_device.join())
    });
    let sent = to_device?;
    let (received, states) = from_device
        .map_err(|_| DemoError::Check("the thread reading the port panicked".into()))??;
    Ok(SerialOutcome {
        line_coding,
        sent,
        received,
        states,
    })
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn copy_to_device(input: &mut impl Read, writer: &mut impl Write) -> Result<u64> {
    let mut buf = [0u8; 4096];
    let mut sent = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).step("read standard input"),
        };
        writer
            .write_all(&buf[..n])
            .step(format!("write to the port after {sent} bytes"))?;
        sent += n as u64;
    }
}

fn report_states(rx: &Receiver<Notification>, states: &mut Vec<SerialState>) {
    for n in rx.try_iter() {
        match n {
            Notification::SerialState(s) => {
                eprintln!("serial: state {s:?}");
                states.push(s);
            }
            other => eprintln!("serial: notification {other:?}"),
        }
    }
}

/// `serial`: bind the drivers on `host` and run a [`session`] on the chosen port with
/// standard input and output.
///
/// # Errors
/// No matching port bound; as [`session`].
pub fn run(host: &Host, args: &SerialArgs) -> Result<SerialOutcome> {
    run_with(
        host,
        args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
    )
}

/// [`run`] with other input and output (tests).
///
/// # Errors
/// As [`run`].
pub fn run_with(
    host: &Host,
    args: &SerialArgs,
    input: &mut impl Read,
    output: &mut (impl Write + Send),
) -> Result<SerialOutcome> {
    let bound = crate::bind::bind(host)?;
    let handle = bound
        .ports
        .iter()
        .find(|p| args.device.is_none_or(|id| id.is(p.get().device())))
        .ok_or(DemoError::NoDevice("CDC-ACM port"))?;
    let prepared = {
        // Released before the session: the registry can stop the port meanwhile (an
        // unplug), and the session's reads and writes then fail with `Disconnected`.
        let port = handle.get();
        let d = port.device().device_descriptor();
        eprintln!(
            "serial: port on {:04x}:{:04x}, interfaces {} and {}",
            d.vendor_id,
            d.product_id,
            port.info().comm_interface,
            port.info().data_interface
        );
        prepare(&port, args)?
    };
    pump(prepared, args, input, output)
}
