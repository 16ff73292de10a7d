//! The device side of the sample devices: what a program on the gadget does.
//!
//! A loopback device answers by itself, but a serial port only echoes when something on
//! the device reads its tty and writes back, and a HID function only sends input reports
//! when something on the device writes them. The tour asks its [`Peers`] to do that at the
//! right moment. The simulator provides both (see [`SimBench`](crate::SimBench)); on real
//! hardware a test provides them (the VM suite uses the gadget's `/dev/ttyGS0` and
//! `/dev/hidg0`), and without them the tour skips what needs them and says so.

use std::io;
use std::time::Duration;

/// The far end of a CDC-ACM port.
pub trait SerialPeer: Send {
    /// Send back the `len` bytes the host has just written, within `timeout`.
    ///
    /// # Errors
    /// The device side could not read or write them in time.
    fn echo(&mut self, len: usize, timeout: Duration) -> io::Result<()>;
}

/// The device side of a HID function.
pub trait HidPeer: Send {
    /// Send one input report (report ID first when the descriptor uses IDs).
    ///
    /// # Errors
    /// The device side could not queue it.
    fn send_input_report(&mut self, report: &[u8]) -> io::Result<()>;

    /// The next output report the device side received (report ID first when the
    /// descriptor uses IDs), waiting at most `timeout`.
    ///
    /// # Errors
    /// None came in time; the device side could not be read.
    fn take_output_report(&mut self, timeout: Duration) -> io::Result<Vec<u8>>;
}

/// The device sides the tour and the subcommands may drive; `None` where there is none.
#[derive(Default)]
pub struct Peers {
    /// The CDC-ACM port's far end.
    pub serial: Option<Box<dyn SerialPeer>>,
    /// The HID function's device side.
    pub hid: Option<Box<dyn HidPeer>>,
}

impl Peers {
    /// No device side: real devices without a cooperating program on them.
    pub fn none() -> Peers {
        Peers::default()
    }
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("serial", &self.serial.is_some())
            .field("hid", &self.hid.is_some())
            .finish()
    }
}
