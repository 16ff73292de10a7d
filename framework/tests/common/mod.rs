//! Opening the simulator's bulk gadgets, shared by the simulator test files.
// Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use usbdf::sim::{SimHost, LOOPBACK_IN, LOOPBACK_OUT, SOURCESINK_IN, SOURCESINK_OUT};
use usbdf::{Bulk, Device, DeviceSelector, In, Out, Pipe};

/// SourceSink's IDs (gadget zero, `usbdf::sim::SourceSink`).
pub const SOURCESINK: (u16, u16) = (0x0525, 0xa4a0);
/// Loopback's IDs (`usbdf::sim::Loopback`).
pub const LOOPBACK: (u16, u16) = (0x0525, 0xa4a9);

/// Open the plugged SourceSink, claim interface 0 and open its bulk OUT and IN pipes.
///
/// # Panics
/// When the device is not plugged or any step fails.
pub fn open_sourcesink(sim: &SimHost) -> (Device, Pipe<Bulk, Out>, Pipe<Bulk, In>) {
    open_bulk_pair(sim, SOURCESINK, SOURCESINK_OUT, SOURCESINK_IN)
}

/// Open the plugged Loopback, claim interface 0 and open its bulk OUT and IN pipes.
///
/// # Panics
/// When the device is not plugged or any step fails.
pub fn open_loopback(sim: &SimHost) -> (Device, Pipe<Bulk, Out>, Pipe<Bulk, In>) {
    open_bulk_pair(sim, LOOPBACK, LOOPBACK_OUT, LOOPBACK_IN)
}

fn open_bulk_pair(
    sim: &SimHost,
    (vendor, product): (u16, u16),
    out: u8,
    inp: u8,
) -> (Device, Pipe<Bulk, Out>, Pipe<Bulk, In>) {
    let device = sim
        .host()
        .open(&DeviceSelector::id(vendor, product))
        .unwrap();
    let iface = device.claim_interface(0).unwrap();
    let out = iface.open_pipe::<Bulk, Out>(out).unwrap();
    let inp = iface.open_pipe::<Bulk, In>(inp).unwrap();
    (device, out, inp)
}
