//! The report descriptor of the simulated `Hid` and of the VM suite's HID
//! gadget, with its report IDs: the one declaration of those bytes.
//!
//! Plain `const` data with no imports, so that the tests crate's VM layout
//! (`tests/src/vm/layout.rs`, which `xtask` also compiles and which writes these bytes to the
//! gadget's configfs `report_desc`) includes this file through `#[path]`.

/// Input report ID of [`DEFAULT_REPORT_DESCRIPTOR`]: 8 data bytes.
pub const INPUT_REPORT_ID: u8 = 1;
/// Output report ID of [`DEFAULT_REPORT_DESCRIPTOR`]: 8 data bytes.
pub const OUTPUT_REPORT_ID: u8 = 2;
/// Feature report ID of [`DEFAULT_REPORT_DESCRIPTOR`]: 4 data bytes.
pub const FEATURE_REPORT_ID: u8 = 3;

/// A vendor-defined (usage page 0xFF00) application collection with an input (ID 1,
/// 8 bytes), an output (ID 2, 8 bytes) and a feature report (ID 3, 4 bytes): the VM suite's
/// HID gadget. Reports on the wire carry the ID byte first.
#[rustfmt::skip]
pub const DEFAULT_REPORT_DESCRIPTOR: [u8; 37] = [
    0x06, 0x00, 0xff, // Usage Page (Vendor Defined 0xFF00)
    0x09, 0x01,       // Usage (0x01)
    0xa1, 0x01,       // Collection (Application)
    0x15, 0x00,       //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08,       //   Report Size (8 bits)
    0x85, 0x01,       //   Report ID (1)
    0x09, 0x02,       //   Usage (0x02)
    0x95, 0x08,       //   Report Count (8)
    0x81, 0x02,       //   Input (Data, Variable, Absolute): 8 bytes
    0x85, 0x02,       //   Report ID (2)
    0x09, 0x03,       //   Usage (0x03)
    0x91, 0x02,       //   Output (Data, Variable, Absolute): 8 bytes (count still 8)
    0x85, 0x03,       //   Report ID (3)
    0x09, 0x04,       //   Usage (0x04)
    0x95, 0x04,       //   Report Count (4)
    0xb1, 0x02,       //   Feature (Data, Variable, Absolute): 4 bytes
    0xc0,             // End Collection
];
