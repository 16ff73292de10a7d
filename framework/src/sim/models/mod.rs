//! Device models of real gadget functions, and a composite of them.

mod cdc_acm;
mod composite;
mod hid;
mod hid_report;
mod loopback;
mod sourcesink;

pub use cdc_acm::{
    AcmLayout, AcmPort, CdcAcm, LineCoding, GET_LINE_CODING, SEND_BREAK, SERIAL_STATE,
    SET_CONTROL_LINE_STATE, SET_LINE_CODING,
};
pub use composite::Composite;
pub use hid::{
    Hid, HidDevice, HidLayout, ReportType, GET_IDLE, GET_PROTOCOL, GET_REPORT, SET_IDLE,
    SET_PROTOCOL, SET_REPORT,
};
pub use hid_report::{
    DEFAULT_REPORT_DESCRIPTOR, FEATURE_REPORT_ID, INPUT_REPORT_ID, OUTPUT_REPORT_ID,
};
pub use loopback::{Loopback, LOOPBACK_IN, LOOPBACK_OUT};
pub use sourcesink::{
    Pattern, SourceSink, EP0_BUFFER_LEN, REQUEST_READ_BUFFER, REQUEST_WRITE_BUFFER, SOURCESINK_IN,
    SOURCESINK_OUT,
};
