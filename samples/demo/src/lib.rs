//! `usbdf-demo`: the command-line program a new user runs first, as a library so tests
//! (the simulator suite here, the VM suite in `tests/`) can run every part of it.
//!
//! With no arguments ([`run`]) it binds the four sample drivers (gadget zero's Loopback
//! and SourceSink, CDC-ACM, HID) to the devices present through a
//! [`Registry`](usbdf::driver::Registry), or to the built-in simulated devices when none
//! is attached, says which, and shows each driver working. The subcommands are in [`cmd`]:
//! `list`, `loopback`, `serial`, `hid`.
//!
//! | module | what |
//! |---|---|
//! | [`host`] | real devices or the simulator: [`DemoHost`], [`HostMode`] |
//! | [`simulated`] | the simulated devices and their device sides: [`SimBench`] |
//! | [`peer`] | the device side of a port or a HID function: [`Peers`] |
//! | [`mod@bind`] | the registry with the four drivers; [`Handle`]s to the bound instances |
//! | [`cmd`] | `tour` (no arguments), `list`, `loopback`, `serial`, `hid` |
//! | [`error`] | [`DemoError`]: the failed step with its cause |
//!
//! ```
//! // What `usbdf-demo --sim` does.
//! let summary = usbdf_demo::run(true)?;
//! assert_eq!(summary.host, "simulator");
//! assert_eq!(summary.bindings.len(), 4);
//! assert!(summary.loopback.unwrap().mb_per_s() > 0.0);
//! assert_eq!(summary.serial.unwrap().bytes_echoed, Some(1000));
//! assert_eq!(summary.hid.unwrap().inputs.len(), 3);
//! # Ok::<(), usbdf_demo::DemoError>(())
//! ```
#![warn(missing_docs)]

pub mod bind;
pub mod cmd;
pub mod error;
pub mod host;
pub mod peer;
pub mod simulated;

pub use bind::{bind, Bound, Handle};
pub use cmd::tour::{Summary, TourOptions};
pub use error::{DemoError, Result};
pub use host::{DemoHost, HostMode};
pub use peer::{HidPeer, Peers, SerialPeer};
pub use simulated::SimBench;

use usbdf::Host;

/// The program with no arguments: choose the host (the simulator with `force_sim`, else
/// real devices when a sample device is attached), say which, and run the tour there.
///
/// # Errors
/// The first step that fails.
pub fn run(force_sim: bool) -> Result<Summary> {
    let mode = if force_sim {
        HostMode::Simulated
    } else {
        HostMode::Auto
    };
    let host = DemoHost::choose(mode)?;
    println!("{}", host.choice());
    run_with(host.host(), &mut host.peers(), &TourOptions::default())
}

/// The tour on `host` with no device side: on real devices, what needs a program on
/// the device (a serial echo, HID input reports) is skipped and said so.
///
/// # Errors
/// The first step that fails.
pub fn run_on(host: &Host) -> Result<Summary> {
    run_with(host, &mut Peers::none(), &TourOptions::default())
}

/// The tour on `host`, driving `peers` as the device side.
///
/// # Errors
/// The first step that fails.
pub fn run_with(host: &Host, peers: &mut Peers, options: &TourOptions) -> Result<Summary> {
    cmd::tour::run(host, peers, options)
}
