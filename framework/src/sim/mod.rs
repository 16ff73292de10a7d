//! An in-process simulated USB host controller, with device models and
//! fault injection.
//!
//! TODO guide
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
