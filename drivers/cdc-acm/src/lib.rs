#![doc = include_str!("../README.md")]
//!
//! # Layout
//! | module | what |
//! |---|---|
//! | `descriptors` | CDC functional descriptors, [`find_cdc_acm`] (pure) |
//! | `line` | [`LineCoding`], [`ControlLines`], [`SerialState`] (pure) |
//! | `notify` | notification parser and reassembler (pure), delivery |
//! | `port` | [`AcmReader`] / [`AcmWriter`]: the data pipes as streams |
//! | `acm` | [`CdcAcm`]: the bound function and its class requests |
//! | `driver` | [`CdcAcmDriver`]: the `usbdf::driver::Driver` plugin |
//!
//! # Cancellation
//! Dropping a [`CdcAcm`] stops the notification reader and cancels data transfers in
//! flight; [`CdcAcm::stop`] cancels them without dropping. A blocking read cut short by a
//! stop or a timeout returns the bytes that had arrived (see [`AcmReader`]).
#![warn(missing_docs)]

mod acm;
mod descriptors;
mod driver;
mod error;
mod line;
mod notify;
mod port;

pub use acm::{
    AcmConfig, CdcAcm, GET_LINE_CODING, SEND_BREAK, SET_CONTROL_LINE_STATE, SET_LINE_CODING,
};
pub use descriptors::{
    find_cdc_acm, find_cdc_acm_at, AcmCapabilities, AcmInfo, CallManagement, CdcFunctional,
    EndpointInfo, FindError, FunctionalError, Union, SUBCLASS_ACM, SUBTYPE_ACM,
    SUBTYPE_CALL_MANAGEMENT, SUBTYPE_HEADER, SUBTYPE_UNION,
};
pub use driver::{CdcAcmDriver, ID_TABLE};
pub use error::AcmError;
pub use line::{
    ControlLines, DataBits, LineCoding, LineCodingError, Parity, SerialState, StopBits,
};
pub use notify::{
    Assembler, Notification, NotificationCallback, NotificationError, HEADER_LEN, MAX_DATA_LEN,
    NETWORK_CONNECTION, NOTIFICATION_REQUEST_TYPE, RESPONSE_AVAILABLE, SERIAL_STATE,
};
pub use port::{AcmReader, AcmWriter};

#[cfg(test)]
mod send_sync {
    use super::*;
    static_assertions::assert_impl_all!(CdcAcm: Send, Sync);
    static_assertions::assert_impl_all!(AcmReader: Send, Sync, Clone);
    static_assertions::assert_impl_all!(AcmWriter: Send, Sync, Clone);
    static_assertions::assert_impl_all!(AcmError: Send, Sync, std::error::Error);
    static_assertions::assert_impl_all!(CdcAcmDriver: usbdf::driver::Driver);
}
