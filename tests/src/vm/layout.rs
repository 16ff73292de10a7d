//! The VM suite's gadgets and kernel modules, as data.
//!
//! This file is the single declaration of the layout. It is compiled twice: as
//! `usbdf_tests::vm` (re-exported there, for the tests) and by `xtask` through
//! `#[path]` (for the guest agent and `cargo xtask gadgets`). Keep it to plain `std`
//! data and pure functions so both crates can build it.

// The HID report descriptor and its report IDs, shared with usbdf's simulated HID (plain
// `const`s, so xtask can build this file without usbdf).
#[path = "../../../framework/src/sim/models/hid_report.rs"]
mod hid_report;

/// Where configfs puts USB gadgets.
pub const CONFIGFS_GADGETS: &str = "/sys/kernel/config/usb_gadget";

/// Where the VM image keeps its kernel modules (flat, one `.ko` per module).
pub const MODULE_DIR: &str = "/lib/modules/usbdf";

/// How many `dummy_hcd` instances (UDC + host controller pairs) the agent creates: one
/// per gadget of [`GADGETS`] (`dummy_hcd`'s `num` parameter, see [`BOOT_MODULES`]).
pub const UDC_COUNT: u32 = 5;

/// A kernel module and the parameters to load it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// File stem of the `.ko` (dashes as the kernel package spells them).
    pub file: &'static str,
    /// Parameters passed to `finit_module`, e.g. `num=4`.
    pub params: &'static str,
}

impl Module {
    const fn new(file: &'static str) -> Module {
        Module { file, params: "" }
    }
}

/// Modules the agent loads at boot, in dependency order (the image has no `modules.dep`).
pub const BOOT_MODULES: &[Module] = &[
    Module::new("configfs"),
    Module::new("usb-common"),
    Module::new("usbcore"),
    Module::new("udc-core"),
    Module {
        file: "dummy_hcd",
        // UDC_COUNT: one UDC per gadget.
        params: "num=5",
    },
    Module::new("libcomposite"),
    Module::new("usb_f_ss_lb"),
    Module::new("u_serial"),
    Module::new("usb_f_acm"),
    Module::new("usb_f_hid"),
];

/// Modules packed into the image but not loaded: tests load them when they need a
/// kernel class driver or the kernel's own test driver (see `usbdf_tests::vm::load_module`).
/// Listed in a working load order.
pub const EXTRA_MODULES: &[Module] = &[
    Module::new("usbtest"),
    CDC_ACM_MODULE,
    Module::new("hid"),
    Module::new("usbhid"),
    Module::new("hid-generic"),
];

/// The kernel's CDC-ACM host driver (`cdc_acm`; depends only on `usbcore`). Loaded, it
/// binds the ACM functions of [`ACM`] and [`COMPOSITE`] (`/dev/ttyACM*`).
pub const CDC_ACM_MODULE: Module = Module::new("cdc-acm");

/// One configfs gadget: a device with one configuration holding [`function`](Self::function)
/// and then [`more_functions`](Self::more_functions), bound to its own UDC.
///
/// Most gadgets have one function each: Loopback, SourceSink, ACM and HID together on one
/// dummy UDC collided on endpoint addresses. [`COMPOSITE`] is the measured exception: ACM
/// and HID share a configuration without colliding (docs/testing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gadget {
    /// Directory name under [`CONFIGFS_GADGETS`].
    pub name: &'static str,
    /// The UDC it binds to (`dummy_udc.N`).
    pub udc: &'static str,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// `bDeviceClass`, `bDeviceSubClass`, `bDeviceProtocol`.
    pub device_class: [u8; 3],
    /// Manufacturer string.
    pub manufacturer: &'static str,
    /// Product string.
    pub product: &'static str,
    /// Serial number string: unique per gadget, so tests can tell them apart.
    pub serial: &'static str,
    /// The first function in configuration 1 (interface 0 onwards).
    pub function: Function,
    /// Further functions in the same configuration, in link order: their interfaces
    /// follow the first function's. Empty for single-function gadgets.
    pub more_functions: &'static [Function],
}

impl Gadget {
    /// Every function of the configuration, in interface order.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        std::iter::once(&self.function).chain(self.more_functions)
    }
}

/// A gadget function and its configfs attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `f_sourcesink`: bulk IN sources a pattern, bulk OUT checks it (halts on mismatch);
    /// vendor requests `0x5b`/`0x5c` write and read back an ep0 buffer.
    SourceSink {
        /// 0 zeros, 1 `(i % maxpacket) % 63`, 2 unchecked.
        pattern: u8,
        /// Bytes per gadget request.
        bulk_buflen: u32,
    },
    /// `f_loopback`: every OUT request is echoed as one IN transfer. An OUT request ends on
    /// a full `bulk_buflen` or a short packet, so smaller writes that end on a full packet
    /// are not echoed until more data arrives.
    Loopback {
        /// Requests queued per direction.
        qlen: u32,
        /// Bytes per gadget request.
        bulk_buflen: u32,
    },
    /// `f_acm` (`u_serial`): CDC-ACM; the gadget side is a tty (`/dev/ttyGS<port>`, the
    /// port numbered in creation order: [`ACM_TTY`], [`COMPOSITE_ACM_TTY`]).
    Acm {
        /// The instance name after `acm.` (e.g. `GS0`).
        instance: &'static str,
    },
    /// `f_hid`: interrupt IN and OUT endpoints; the gadget side is `/dev/hidg<minor>`
    /// (numbered in creation order: [`HID_DEVICE`], [`COMPOSITE_HID_DEVICE`]).
    Hid {
        /// The instance name after `hid.` (e.g. `usb0`).
        instance: &'static str,
        /// `bInterfaceProtocol` (0 none).
        protocol: u8,
        /// `bInterfaceSubClass` (0 no boot interface).
        subclass: u8,
        /// Largest report in bytes, report ID included; also the endpoints' max packet.
        report_length: u16,
        /// The HID report descriptor.
        report_desc: &'static [u8],
    },
}

impl Function {
    /// The configfs function directory name, `<driver>.<instance>`.
    pub fn instance(&self) -> String {
        match self {
            Function::SourceSink { .. } => "SourceSink.usbdf".to_string(),
            Function::Loopback { .. } => "Loopback.usbdf".to_string(),
            Function::Acm { instance } => format!("acm.{instance}"),
            Function::Hid { instance, .. } => format!("hid.{instance}"),
        }
    }

    /// The function's configfs attributes as (file, contents), in write order.
    pub fn attributes(&self) -> Vec<(&'static str, Vec<u8>)> {
        let text = |v: &dyn std::fmt::Display| v.to_string().into_bytes();
        match *self {
            Function::SourceSink {
                pattern,
                bulk_buflen,
            } => vec![
                ("pattern", text(&pattern)),
                ("bulk_buflen", text(&bulk_buflen)),
            ],
            Function::Loopback { qlen, bulk_buflen } => {
                vec![("qlen", text(&qlen)), ("bulk_buflen", text(&bulk_buflen))]
            }
            Function::Acm { .. } => Vec::new(),
            Function::Hid {
                instance: _,
                protocol,
                subclass,
                report_length,
                report_desc,
            } => vec![
                ("protocol", text(&protocol)),
                ("subclass", text(&subclass)),
                ("report_length", text(&report_length)),
                ("report_desc", report_desc.to_vec()),
            ],
        }
    }
}

/// Gadget zero: SourceSink alone at interface 0 with gadget zero's IDs, which is what the
/// kernel's `usbtest` driver binds.
pub const SOURCE_SINK: Gadget = Gadget {
    name: "usbdf-ss",
    udc: "dummy_udc.0",
    vendor_id: 0x0525,
    product_id: 0xa4a0,
    device_class: [0xff, 0, 0],
    manufacturer: "usbdf",
    product: "usbdf SourceSink",
    serial: "usbdf-ss",
    function: Function::SourceSink {
        pattern: 1,
        bulk_buflen: 4096,
    },
    more_functions: &[],
};

/// Loopback: bulk OUT data comes back on bulk IN. No driver of the Debian 6.1 kernel lists
/// `0525:a4a9` in its ID table (checked against the modules' aliases), so none grabs it.
pub const LOOPBACK: Gadget = Gadget {
    name: "usbdf-lb",
    udc: "dummy_udc.1",
    vendor_id: 0x0525,
    product_id: 0xa4a9,
    device_class: [0xff, 0, 0],
    manufacturer: "usbdf",
    product: "usbdf Loopback",
    serial: "usbdf-lb",
    function: Function::Loopback {
        qlen: 32,
        bulk_buflen: 4096,
    },
    more_functions: &[],
};

/// CDC-ACM serial: `0525:a4a7` (the Linux serial gadget's CDC-ACM ID).
pub const ACM: Gadget = Gadget {
    name: "usbdf-acm",
    udc: "dummy_udc.2",
    vendor_id: 0x0525,
    product_id: 0xa4a7,
    // Miscellaneous / common class / interface association: f_acm uses an IAD.
    device_class: [0xef, 0x02, 0x01],
    manufacturer: "usbdf",
    product: "usbdf CDC-ACM",
    serial: "usbdf-acm",
    function: Function::Acm { instance: "GS0" },
    more_functions: &[],
};

/// HID: vendor-defined reports (see [`HID_REPORT_DESCRIPTOR`]); `0525:a4ac` (the Linux HID
/// gadget's ID).
pub const HID: Gadget = Gadget {
    name: "usbdf-hid",
    udc: "dummy_udc.3",
    vendor_id: 0x0525,
    product_id: 0xa4ac,
    device_class: [0, 0, 0],
    manufacturer: "usbdf",
    product: "usbdf HID",
    serial: "usbdf-hid",
    function: Function::Hid {
        instance: "usb0",
        protocol: 0,
        subclass: 0,
        report_length: HID_REPORT_LENGTH,
        report_desc: &HID_REPORT_DESCRIPTOR,
    },
    more_functions: &[],
};

/// Composite: CDC-ACM (interfaces 0 and 1, with an IAD) and HID (interface 2) in one
/// configuration, on a UDC of its own; `0525:a4ad` is listed by no driver of the kernel
/// (matching happens per interface class: `cdc-acm.ko` and `usbhid.ko` would bind).
/// The same report descriptor as [`HID`].
pub const COMPOSITE: Gadget = Gadget {
    name: "usbdf-composite",
    udc: "dummy_udc.4",
    vendor_id: 0x0525,
    product_id: 0xa4ad,
    // Interface association descriptors (f_acm's): miscellaneous / common / IAD.
    device_class: [0xef, 0x02, 0x01],
    manufacturer: "usbdf",
    product: "usbdf Composite",
    serial: "usbdf-composite",
    function: Function::Acm { instance: "GS1" },
    more_functions: &[Function::Hid {
        instance: "usb1",
        protocol: 0,
        subclass: 0,
        report_length: HID_REPORT_LENGTH,
        report_desc: &HID_REPORT_DESCRIPTOR,
    }],
};

/// Every gadget, in UDC order (also the order the agent creates them, which numbers the
/// gadget-side ttys and hidg nodes).
pub const GADGETS: [Gadget; 5] = [SOURCE_SINK, LOOPBACK, ACM, HID, COMPOSITE];

/// The gadget side of [`ACM`]'s function (port 0: created first).
pub const ACM_TTY: &str = "/dev/ttyGS0";

/// The gadget side of [`HID`]'s function (minor 0: created first).
pub const HID_DEVICE: &str = "/dev/hidg0";

/// The gadget side of [`COMPOSITE`]'s ACM function (port 1).
pub const COMPOSITE_ACM_TTY: &str = "/dev/ttyGS1";

/// The gadget side of [`COMPOSITE`]'s HID function (minor 1).
pub const COMPOSITE_HID_DEVICE: &str = "/dev/hidg1";

/// [`COMPOSITE`]'s interface numbers: ACM communication, ACM data, HID.
pub const COMPOSITE_INTERFACES: CompositeInterfaces = CompositeInterfaces {
    acm_comm: 0,
    acm_data: 1,
    hid: 2,
};

/// Interface numbers of [`COMPOSITE`]'s functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompositeInterfaces {
    /// CDC communication interface (notification endpoint).
    pub acm_comm: u8,
    /// CDC data interface (bulk pair).
    pub acm_data: u8,
    /// HID interface.
    pub hid: u8,
}

/// HID input report ID: 8 data bytes, device to host on interrupt IN.
pub const HID_INPUT_REPORT_ID: u8 = hid_report::INPUT_REPORT_ID;
/// HID output report ID: 8 data bytes, host to device on interrupt OUT (or SET_REPORT).
pub const HID_OUTPUT_REPORT_ID: u8 = hid_report::OUTPUT_REPORT_ID;
/// HID feature report ID: 4 data bytes, GET_REPORT / SET_REPORT on ep0.
pub const HID_FEATURE_REPORT_ID: u8 = hid_report::FEATURE_REPORT_ID;
/// Data bytes in an input or output report (the report ID comes on top).
pub const HID_IO_REPORT_LEN: usize = 8;
/// Data bytes in the feature report.
pub const HID_FEATURE_REPORT_LEN: usize = 4;
/// `report_length`: the largest report on the wire, report ID byte included.
pub const HID_REPORT_LENGTH: u16 = 1 + HID_IO_REPORT_LEN as u16;

/// The HID gadget's report descriptor: one vendor-defined application collection with an
/// input, an output and a feature report, each with its own report ID. The bytes (decoded item
/// by item) are usbdf's `sim::DEFAULT_REPORT_DESCRIPTOR`, declared once in
/// `framework/src/sim/models/hid_report.rs`, so the simulated HID and this gadget describe the
/// same reports.
pub const HID_REPORT_DESCRIPTOR: [u8; 37] = hid_report::DEFAULT_REPORT_DESCRIPTOR;
