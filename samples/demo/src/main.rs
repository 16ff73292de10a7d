//! `cargo run -p usbdf-demo`: the sample drivers on real devices, or on the built-in
//! simulated ones when none is attached. The arguments and the dispatch; the work is in
//! the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use usbdf_demo::cmd::{hid, list, loopback, serial};
use usbdf_demo::{error, DemoHost, HostMode, Result, TourOptions};

/// usbdf's sample drivers (gadget zero Loopback and SourceSink, CDC-ACM, HID) on the
/// devices attached, or on built-in simulated devices when none is.
///
/// With no subcommand: bind the drivers, print the bindings, and show each one working.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Use the built-in simulated devices, whatever is attached.
    #[arg(long, global = true, conflicts_with = "real")]
    sim: bool,
    /// Use the system's USB stack, even when no sample device is attached.
    #[arg(long, global = true)]
    real: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The devices and which driver bound each interface.
    List,
    /// Echo and throughput through the Loopback function, every byte checked.
    Loopback(loopback::LoopbackArgs),
    /// A terminal on a CDC-ACM port: stdin to the device, the device to stdout.
    Serial(serial::SerialArgs),
    /// Decoded input reports of a HID interface; output and feature reports.
    Hid(hid::HidArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error::chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let mode = match (cli.sim, cli.real) {
        (true, _) => HostMode::Simulated,
        (_, true) => HostMode::System,
        _ => HostMode::Auto,
    };
    let host = DemoHost::choose(mode)?;
    // The serial terminal's standard output is the device's: say it on stderr there.
    match cli.command {
        Some(Command::Serial(_)) => eprintln!("{}", host.choice()),
        _ => println!("{}", host.choice()),
    }
    let mut peers = host.peers();
    let h = host.host();
    match cli.command {
        None => usbdf_demo::run_with(h, &mut peers, &TourOptions::default()).map(drop),
        Some(Command::List) => list::run(h).map(drop),
        Some(Command::Loopback(args)) => loopback::run(h, &args).map(drop),
        Some(Command::Serial(args)) => serial::run(h, &args).map(drop),
        Some(Command::Hid(args)) => hid::run(h, &args, &mut peers).map(drop),
    }
}
