//! Shared helpers for usbdf integration tests.
