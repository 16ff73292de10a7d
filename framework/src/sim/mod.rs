//! An in-process simulated USB host controller, with device models and
//! fault injection: usbdf without hardware.
//!
//! A [`SimHost`] is a USB bus of its own. Plug [`DeviceModel`]s into it and
//! drive them through [`SimHost::host`], a [`Host`](crate::Host) like
//! [`Host::system`](crate::Host::system): the same `open`, `claim_interface`,
//! `open_pipe`, requests, cancel and timeouts, with no OS in between.
//!
//! ```
//! use usbdf::sim::{Loopback, SimHost};
//! use usbdf::{Bulk, DeviceSelector, In, Out, Request, Status, Timeout};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = SimHost::new();
//! let gadget = sim.plug(Loopback::default()); // Linux f_loopback, 0525:a4a9
//!
//! let device = sim.host().open(&DeviceSelector::id(0x0525, 0xa4a9))?;
//! let iface = device.claim_interface(0)?;
//! let out = iface.open_pipe::<Bulk, Out>(0x01)?;
//! let inp = iface.open_pipe::<Bulk, In>(0x81)?;
//!
//! let mut req = Request::with_capacity(64);
//! req.memory_mut().set(b"ping")?;
//! out.write_sync(req, Timeout::millis(500))?;
//! let echo = inp.read_sync(Request::with_capacity(512), 512, Timeout::millis(500))?;
//! assert_eq!(echo.data(), b"ping");
//!
//! // Surprise removal: pending and later I/O fails with Disconnected.
//! gadget.unplug();
//! let c = inp.read_sync(Request::with_capacity(512), 512, Timeout::millis(500));
//! assert!(c.is_err() || c.unwrap().status() == Status::Disconnected);
//! # Ok(()) }
//! ```
//!
//! ## Models
//! | model | mimics | IDs | endpoints |
//! |---|---|---|---|
//! | [`Loopback`] | Linux `f_loopback` (qlen, bulk_buflen, its echo quirks) | `0525:a4a9` | bulk OUT `0x01`, IN `0x81` |
//! | [`SourceSink`] | Linux `f_sourcesink` / gadget zero (patterns, halt on mismatch, vendor `0x5b`/`0x5c`) | `0525:a4a0` | bulk IN `0x81`, OUT `0x01` |
//! | [`CdcAcm`] | Linux `f_acm` serial port; device side [`AcmPort`] | `0525:a4a7` | interrupt IN `0x83`, bulk OUT `0x02`, IN `0x82` |
//! | [`Hid`] | Linux `f_hid`; device side [`HidDevice`] | `0525:a4ac` | interrupt IN `0x81`, OUT `0x01` |
//! | [`Composite`] | several functions on one device | any | the functions' |
//!
//! Writing a model for your own device means implementing [`DeviceModel`]:
//! descriptors, class/vendor control requests, and one method per OUT
//! packet and per IN token. The simulator answers the chapter 9 standard
//! requests itself.
//!
//! ## How the simulated controller behaves
//! It copies nusb 0.2's semantics, which the engine relies on, and the
//! behaviour of Linux's `dummy_hcd` with real gadget functions:
//! * one controller thread per plugged device moves packets of the
//!   endpoint's max packet size (64 at full speed, 512 high, 1024 super:
//!   [`SimOptions::speed`]); transfers on an endpoint finish in FIFO order;
//! * an IN transfer must ask for a non-zero multiple of the max packet
//!   size (else `InvalidArgument`); it ends on a short packet or when full;
//! * a model NAK makes the endpoint wait until the model calls
//!   [`Notifier::notify`] (or a 1 ms retry); a STALL halts the endpoint
//!   until the host clears it (which resets the data toggle);
//! * control transfers honour their timeout (a NAKing request ends
//!   `TimedOut`), dropping one cancels it;
//! * an unplug completes every pending transfer `Disconnected`, or `Fault`
//!   with [`SimOptions::fault_on_unplug`] (as Linux does at random); after
//!   it every call fails with `Disconnected`;
//! * wakers are one-shot, like nusb's: a backend completion wakes the
//!   engine once, and the engine polls to be woken again.
//!
//! ## Faults
//! Wrap any model in a [`FaultInjector`] for packet-level faults (stall,
//! NAK forever, seeded random NAKs, short packet, babble, control NAK or
//! stall), and use the [`SimDeviceHandle`] for bus-level ones (unplug now
//! or after *k* packets, delayed completions, throughput limits with
//! [`SimDeviceHandle::set_packets_per_ms`] to catch transfers mid-flight).
mod backend;
mod conn;
mod controller;
mod fault;
mod host;
mod model;
mod models;
mod rng;
mod standard;

pub use fault::{FaultInjector, Faults};
pub use host::{SimDeviceHandle, SimHost, SimOptions};
pub use model::{
    bulk_endpoint, bulk_max_packet_size, device_descriptor, interrupt_endpoint, ControlReply,
    DeviceModel, InReply, ModelDescriptors, Notifier, OutReply,
};
pub use models::*;

#[cfg(test)]
mod tests;
