//! Device models of real gadget functions.

mod loopback;

pub use loopback::{Loopback, LOOPBACK_IN, LOOPBACK_OUT};
