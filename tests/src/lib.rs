//! Shared helpers for usbdf integration tests.
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod gadget;
pub mod soak;
#[cfg(target_os = "linux")]
pub mod usbtest;
#[cfg(target_os = "linux")]
pub mod vm;
