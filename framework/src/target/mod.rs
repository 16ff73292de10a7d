//! Targets: the host (where devices come from), devices, interfaces and
//! typed pipes.

mod device;
mod host;
mod interface;
mod pipe;

pub use device::Device;
pub use host::{DeviceInfo, DeviceSelector, Host};
pub use interface::{Interface, InterfaceClaim};
pub use pipe::{Bulk, In, Interrupt, Out, Pipe, PipeDirection, PipeInformation, PipeType};

/// The speed a device is connected at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Speed {
    /// 1.5 Mbit/s.
    Low,
    /// 12 Mbit/s.
    Full,
    /// 480 Mbit/s.
    High,
    /// 5 Gbit/s.
    Super,
    /// 10 Gbit/s or more.
    SuperPlus,
}
