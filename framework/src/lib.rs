//! usbdf: a host-side USB driver framework modelled on KMDF USB I/O targets.
#![warn(missing_docs)]

pub mod descriptor;
