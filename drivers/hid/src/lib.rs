//! # usbdf-hid: the USB HID class driver for usbdf
//!
//! Claims a HID interface (class 3), reads its report descriptor and parses
//! it with a checked parser into the layout of every input, output and
//! feature report; keeps a [`ContinuousReader`](usbdf::ContinuousReader) on
//! the interrupt IN pipe and hands input reports over decoded, by usage;
//! sends output reports on the interrupt OUT pipe (or SET_REPORT), and
//! feature reports, idle rates and the protocol on the control pipe.
//!
//! ```
//! use usbdf::sim::{self, SimHost};
//! use usbdf::{DeviceSelector, Timeout};
//! use usbdf_hid::{HidConfig, HidDevice, Usage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated HID function: vendor reports, input ID 1 (8 bytes),
//! // output ID 2 (8 bytes), feature ID 3 (4 bytes).
//! let sim = SimHost::new();
//! let model = sim::Hid::default();
//! let gadget = model.device();
//! let _plugged = sim.plug(model);
//!
//! let device = sim.host().open(&DeviceSelector::id(0x0525, 0xa4ac))?;
//! let hid = HidDevice::open(&device, 0, HidConfig::default())?;
//! assert_eq!(hid.descriptor().input(1).unwrap().data_len(), 8);
//! hid.start()?;
//!
//! gadget.send_input_report(&[1, 10, 20, 30, 40, 50, 60, 70, 80]);
//! let report = hid.read_input(Timeout::millis(1000))?;
//! assert_eq!(report.id, 1);
//! let vendor_2 = Usage::new(0xff00, 0x02);
//! assert_eq!(report.values(vendor_2).collect::<Vec<_>>(), [10, 20, 30, 40, 50, 60, 70, 80]);
//!
//! hid.write_output(2, &[1, 2, 3])?; // zero-padded to 8 bytes
//! assert_eq!(gadget.output_reports(), [vec![2, 1, 2, 3, 0, 0, 0, 0, 0]]);
//! hid.set_feature(3, &[9, 8, 7, 6])?;
//! assert_eq!(hid.get_feature(3)?, [9, 8, 7, 6]);
//! # Ok(()) }
//! ```
//!
//! ## The pieces
//! * [`ReportDescriptor::parse`]: items → [`Report`]s of [`Field`]s (bit
//!   offsets and sizes, counts, [`Usage`]s, logical and physical ranges,
//!   units, [`MainFlags`]) and [`Collection`]s. It never panics, never
//!   loops on device bytes, and bounds every stack and size ([`ParseError`]).
//! * [`Report::decode`] / [`Report::encode`] / [`Report::encode_usages`]:
//!   bits ↔ [`FieldValue`]s.
//! * [`HidDevice`]: the handle, as handy as hidapi: `read_input`,
//!   `write_output`, `get_feature`, `set_feature`, `set_idle`,
//!   `set_protocol`, `descriptor`.
//! * [`HidDriver`]: the [`Driver`](usbdf::driver::Driver) plugin for the
//!   registry ([`ID_TABLE`]: interface class 3).
//!
//! ## Report IDs
//! As in hidapi, ID 0 means "the descriptor uses no report IDs". Data
//! passed to and returned by [`HidDevice`] excludes the ID byte;
//! [`InputReport::raw`] and [`HidDevice::get_report`] keep it.
#![warn(missing_docs)]

mod device;
mod driver;
mod error;
pub mod report;

pub use device::{
    HidConfig, HidDevice, InputCallback, Protocol, GET_IDLE, GET_PROTOCOL, GET_REPORT, SET_IDLE,
    SET_PROTOCOL, SET_REPORT,
};
pub use driver::{BoundCallback, HidDriver, ID_TABLE};
pub use error::HidError;
pub use report::decode::{DecodeError, EncodeError, FieldValue, InputReport};
pub use report::model::{
    generic_desktop, page, Collection, CollectionKind, Field, MainFlags, Report, ReportDescriptor,
    ReportKind, Usage, UsageRange,
};
pub use report::parser::ParseError;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<super::HidDevice>();
        assert_send_sync::<super::HidDriver>();
        assert_send_sync::<super::ReportDescriptor>();
        assert_send_sync::<super::HidError>();
    }
}
