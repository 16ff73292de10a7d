//! # usbdf: a host-side USB driver framework
//!
//! usbdf gives user-space USB drivers the object model of Windows KMDF's USB
//! I/O targets, on top of [`nusb`](https://docs.rs/nusb): a [`Device`]
//! target with descriptors, configuration and a [`ControlPipe`];
//! [`Interface`]s with alternate settings; typed [`Pipe`]s (`Pipe<Bulk, In>`
//! …) checked against the descriptor when opened; and reusable [`Request`]
//! objects that are sent, completed exactly once and handed back.
//!
//! ```no_run
//! use usbdf::{Bulk, DeviceSelector, Host, In, Out, Request, SendOptions, Status, Timeout};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Host::system().open(&DeviceSelector::id(0x0525, 0xa4a9))?;
//! let iface = device.claim_interface(0)?;
//! let out = iface.open_first::<Bulk, Out>()?;
//! let inp = iface.open_first::<Bulk, In>()?;
//!
//! // Synchronous, with a required timeout.
//! let mut req = Request::with_capacity(512);
//! req.memory_mut().set(b"hello")?;
//! let done = out.write_sync(req, Timeout::millis(500))?;
//! assert_eq!(done.status(), Status::Success);
//!
//! // Asynchronous, from a preallocated pool, cancellable per request.
//! let pool = inp.request_pool(8, 4096);
//! let sent = inp.read(pool.take().unwrap(), 4096, &SendOptions::new())?;
//! let cancel = sent.cancel_handle();
//! cancel.cancel();
//! let done = futures::executor::block_on(sent);
//! assert!(matches!(done.status(), Status::Cancelled | Status::Success));
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//! * Every sent request completes exactly once, with a [`Status`], the bytes
//!   moved, and the request back ([`Completion`]).
//! * Cancelling one request ([`CancelHandle`]) completes it `Cancelled`
//!   with the bytes that moved; every other request on the pipe keeps all
//!   its data and its order. A timeout completes `TimedOut`, never
//!   `Cancelled`. Cancel after completion is a harmless
//!   [`CancelOutcome::NotPending`].
//! * An unplug is reported as [`Status::Disconnected`] on every request,
//!   whatever the OS said.
//! * Sending and completing requests from a [`RequestPool`] allocates
//!   nothing.
//!
//! ## Backends
//! [`Host::system`] drives real devices through nusb. [`sim::SimHost`] is
//! an in-process simulated host controller with device models (gadget zero
//! loopback and source/sink, CDC-ACM, HID) and fault injection, for tests
//! and for trying usbdf without hardware.
#![warn(missing_docs)]

mod backend;
pub mod control;
pub mod descriptor;
pub mod driver;
mod engine;
mod error;
mod memory;
mod options;
mod pool;
mod reader;
mod request;
pub mod sim;
mod status;
mod target;
mod wait;

pub use backend::{BackendError, BackendErrorKind};
pub use control::{ControlCancel, ControlPipe, ControlSent, SetupPacket};
pub use engine::{CancelHandle, CancelOutcome, CompletionRoutine, Sent, StopAction, TargetState};
pub use error::{Error, SendError, SendErrorKind};
pub use memory::{CapacityError, Memory};
pub use options::{PacketSizeCheck, PipePolicy, SendOptions, ShortPacket, Timeout, Zlp};
pub use pool::RequestPool;
pub use reader::{
    ContinuousReader, ReadComplete, ReaderConfig, ReaderState, ReadersFailed, ReadersFailedAction,
    StateChange,
};
pub use request::{Completion, Request, RequestId};
pub use status::Status;
pub use target::{
    Bulk, Device, DeviceInfo, DeviceSelector, Host, In, Interface, InterfaceClaim, Interrupt, Out,
    Pipe, PipeDirection, PipeInformation, PipeType, Speed,
};

#[cfg(test)]
mod send_sync {
    use super::*;
    use static_assertions::assert_impl_all;

    assert_impl_all!(Device: Send, Sync);
    assert_impl_all!(Interface: Send, Sync);
    assert_impl_all!(Pipe<Bulk, In>: Send, Sync);
    assert_impl_all!(Pipe<Bulk, Out>: Send, Sync);
    assert_impl_all!(Pipe<Interrupt, In>: Send, Sync);
    assert_impl_all!(Pipe<Interrupt, Out>: Send, Sync);
    assert_impl_all!(ControlPipe: Send, Sync);
    assert_impl_all!(Request: Send, Sync);
    assert_impl_all!(Memory: Send, Sync);
    assert_impl_all!(Completion: Send, Sync);
    assert_impl_all!(RequestPool: Send, Sync);
    assert_impl_all!(ContinuousReader<Bulk>: Send, Sync);
    assert_impl_all!(ContinuousReader<Interrupt>: Send, Sync);
    assert_impl_all!(Sent: Send, Sync);
    assert_impl_all!(CancelHandle: Send, Sync);
    assert_impl_all!(ControlSent: Send, Sync);
    assert_impl_all!(ControlCancel: Send, Sync);
    assert_impl_all!(Host: Send, Sync);
    assert_impl_all!(Status: Send, Sync, Copy);
    assert_impl_all!(Error: Send, Sync);
    assert_impl_all!(SendError: Send, Sync);
}
