//! The checked model a report descriptor parses into: reports, fields,
//! usages, collections.

use std::fmt;

/// A usage: a usage page (high 16 bits) and a usage ID (low 16 bits).
///
/// Short `Usage` items are completed with the usage page in effect (as
/// Linux does it); 4-byte ("extended") usages carry their own page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Usage(pub u32);

impl Usage {
    /// The usage `id` on `page`.
    pub const fn new(page: u16, id: u16) -> Usage {
        Usage(((page as u32) << 16) | id as u32)
    }

    /// The usage page.
    pub const fn page(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The usage ID within its page.
    pub const fn id(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Debug for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Usage({:#06x}:{:#06x})", self.page(), self.id())
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match page::name(self.page()) {
            Some(name) => write!(f, "{name}:{:#06x}", self.id()),
            None => write!(f, "{:#06x}:{:#06x}", self.page(), self.id()),
        }
    }
}

/// Usage pages (HID Usage Tables 1.4, section 3).
pub mod page {
    /// Generic Desktop (pointers, mice, keyboards, joysticks, axes).
    pub const GENERIC_DESKTOP: u16 = 0x01;
    /// Simulation Controls.
    pub const SIMULATION: u16 = 0x02;
    /// Game Controls.
    pub const GAME: u16 = 0x05;
    /// Generic Device Controls.
    pub const GENERIC_DEVICE: u16 = 0x06;
    /// Keyboard/Keypad.
    pub const KEYBOARD: u16 = 0x07;
    /// LED.
    pub const LED: u16 = 0x08;
    /// Button.
    pub const BUTTON: u16 = 0x09;
    /// Ordinal.
    pub const ORDINAL: u16 = 0x0A;
    /// Telephony Device.
    pub const TELEPHONY: u16 = 0x0B;
    /// Consumer.
    pub const CONSUMER: u16 = 0x0C;
    /// Digitizers.
    pub const DIGITIZER: u16 = 0x0D;
    /// Physical Input Device (force feedback).
    pub const PHYSICAL_INPUT: u16 = 0x0F;
    /// Unicode.
    pub const UNICODE: u16 = 0x10;
    /// Sensors.
    pub const SENSORS: u16 = 0x20;
    /// Power Device.
    pub const POWER: u16 = 0x84;
    /// Battery System.
    pub const BATTERY: u16 = 0x85;
    /// First vendor-defined page (0xFF00..=0xFFFF are vendor-defined).
    pub const VENDOR_FIRST: u16 = 0xFF00;

    /// The name of a usage page, if it is one of the pages listed here or
    /// vendor-defined.
    pub fn name(page: u16) -> Option<&'static str> {
        Some(match page {
            GENERIC_DESKTOP => "Generic Desktop",
            SIMULATION => "Simulation",
            GAME => "Game",
            GENERIC_DEVICE => "Generic Device",
            KEYBOARD => "Keyboard",
            LED => "LED",
            BUTTON => "Button",
            ORDINAL => "Ordinal",
            TELEPHONY => "Telephony",
            CONSUMER => "Consumer",
            DIGITIZER => "Digitizer",
            PHYSICAL_INPUT => "Physical Input",
            UNICODE => "Unicode",
            SENSORS => "Sensors",
            POWER => "Power",
            BATTERY => "Battery",
            VENDOR_FIRST..=0xFFFF => "Vendor",
            _ => return None,
        })
    }
}

/// Common Generic Desktop usages.
pub mod generic_desktop {
    use super::{page::GENERIC_DESKTOP as P, Usage};

    /// Pointer (a physical collection).
    pub const POINTER: Usage = Usage::new(P, 0x01);
    /// Mouse (an application collection).
    pub const MOUSE: Usage = Usage::new(P, 0x02);
    /// Joystick.
    pub const JOYSTICK: Usage = Usage::new(P, 0x04);
    /// Gamepad.
    pub const GAMEPAD: Usage = Usage::new(P, 0x05);
    /// Keyboard.
    pub const KEYBOARD: Usage = Usage::new(P, 0x06);
    /// X axis.
    pub const X: Usage = Usage::new(P, 0x30);
    /// Y axis.
    pub const Y: Usage = Usage::new(P, 0x31);
    /// Z axis.
    pub const Z: Usage = Usage::new(P, 0x32);
    /// Rx (rotation about X).
    pub const RX: Usage = Usage::new(P, 0x33);
    /// Ry.
    pub const RY: Usage = Usage::new(P, 0x34);
    /// Rz.
    pub const RZ: Usage = Usage::new(P, 0x35);
    /// Wheel.
    pub const WHEEL: Usage = Usage::new(P, 0x38);
    /// Hat switch.
    pub const HAT_SWITCH: Usage = Usage::new(P, 0x39);
}

/// Input, output or feature: the main item a report comes from, and the
/// report type of GET_REPORT / SET_REPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportKind {
    /// Device to host, on the interrupt IN pipe (type 1).
    Input,
    /// Host to device, on the interrupt OUT pipe or SET_REPORT (type 2).
    Output,
    /// Both ways on the control pipe, GET_REPORT / SET_REPORT (type 3).
    Feature,
}

impl ReportKind {
    /// The report type in the high byte of `wValue` of GET/SET_REPORT.
    pub const fn wire_type(self) -> u8 {
        match self {
            ReportKind::Input => 1,
            ReportKind::Output => 2,
            ReportKind::Feature => 3,
        }
    }
}

/// The data bits of an Input, Output or Feature item (HID 1.11, 6.2.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MainFlags(pub u32);

impl MainFlags {
    /// Bit 0: constant (padding or fixed), not data.
    pub const fn is_constant(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// Bit 1: variable (one value per usage) rather than array (values are
    /// indices into the usage list).
    pub const fn is_variable(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// Bit 1 clear: an array field.
    pub const fn is_array(self) -> bool {
        !self.is_variable()
    }
    /// Bit 2: relative (a change since the last report) rather than absolute.
    pub const fn is_relative(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// Bit 3: the value wraps around.
    pub const fn is_wrap(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// Bit 4: non-linear.
    pub const fn is_nonlinear(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Bit 5: no preferred state.
    pub const fn has_no_preferred_state(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// Bit 6: has a null state (values outside the logical range mean
    /// "no data").
    pub const fn has_null_state(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// Bit 7: volatile (output and feature only).
    pub const fn is_volatile(self) -> bool {
        self.0 & 0x80 != 0
    }
    /// Bit 8: buffered bytes rather than a bit field.
    pub const fn is_buffered_bytes(self) -> bool {
        self.0 & 0x100 != 0
    }
}

/// A run of consecutive usages: one `Usage` item (`first == last`) or a
/// `Usage Minimum`/`Usage Maximum` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsageRange {
    /// The first usage.
    pub first: Usage,
    /// The last usage (same page, `last.id() >= first.id()`).
    pub last: Usage,
}

impl UsageRange {
    /// How many usages the range holds (1..=65536).
    pub const fn len(&self) -> u32 {
        (self.last.id() - self.first.id()) as u32 + 1
    }

    /// Always false: a range holds at least one usage.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Whether `usage` is in the range.
    pub const fn contains(&self, usage: Usage) -> bool {
        usage.page() == self.first.page()
            && usage.id() >= self.first.id()
            && usage.id() <= self.last.id()
    }
}

/// One Input/Output/Feature item of a report: `count` elements of
/// `bit_size` bits each, starting at `bit_offset`.
///
/// Offsets count from the first data byte of the report, after the report
/// ID byte (when the descriptor uses IDs), least significant bit first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Bit offset of the first element within the report's data.
    pub bit_offset: u32,
    /// Bits per element (`Report Size`).
    pub bit_size: u32,
    /// Elements (`Report Count`).
    pub count: u32,
    /// The main item's flags.
    pub flags: MainFlags,
    /// The usages, in order. For a variable field, element `i` has the
    /// `i`-th usage (the last one repeats); for an array field, a value `v`
    /// selects usage `v - logical_min`.
    pub usages: Vec<UsageRange>,
    /// `Logical Minimum`.
    pub logical_min: i64,
    /// `Logical Maximum` (read unsigned when the minimum is not negative,
    /// as Linux does, so `0x25 0xFF` is 255 after a minimum of 0).
    pub logical_max: i64,
    /// `Physical Minimum` (the logical minimum when both physical bounds are 0).
    pub physical_min: i64,
    /// `Physical Maximum` (the logical maximum when both physical bounds are 0).
    pub physical_max: i64,
    /// `Unit`, raw (HID 1.11, 6.2.2.7); 0 is none.
    pub unit: u32,
    /// `Unit Exponent`: physical values are scaled by `10^unit_exponent`.
    pub unit_exponent: i32,
    /// The innermost collection the field is in (an index into
    /// [`ReportDescriptor::collections`]).
    pub collection: Option<usize>,
    /// Cumulative usage counts: `ends[i]` is the number of usages in
    /// `usages[..=i]`.
    pub(crate) ends: Vec<u64>,
}

impl Field {
    /// Bits the field takes: `bit_size * count`.
    pub fn bit_len(&self) -> u64 {
        u64::from(self.bit_size) * u64::from(self.count)
    }

    /// Whether values are signed (two's complement): the logical minimum is
    /// negative.
    pub fn is_signed(&self) -> bool {
        self.logical_min < 0
    }

    /// Number of usages listed.
    pub fn usage_count(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The `n`-th usage listed, if there are that many.
    pub fn nth_usage(&self, n: u64) -> Option<Usage> {
        let i = self.ends.partition_point(|&end| end <= n);
        let range = self.usages.get(i)?;
        let before = if i == 0 { 0 } else { self.ends[i - 1] };
        let id = u64::from(range.first.id()) + (n - before);
        Some(Usage::new(range.first.page(), u16::try_from(id).ok()?))
    }

    /// The usage of element `element` of a variable field: the
    /// `element`-th usage, or the last one when there are fewer usages
    /// than elements (HID 1.11, 6.2.2.8). `None` when no usage is listed.
    pub fn element_usage(&self, element: u32) -> Option<Usage> {
        let n = u64::from(element).min(self.usage_count().checked_sub(1)?);
        self.nth_usage(n)
    }

    /// The usage an array field's value selects (`value - logical_min`-th
    /// usage); `None` for a value outside the list (no selection, e.g. no
    /// key pressed).
    pub fn array_usage(&self, value: i64) -> Option<Usage> {
        if value < self.logical_min || value > self.logical_max {
            return None;
        }
        let n = u64::try_from(i128::from(value) - i128::from(self.logical_min)).ok()?;
        self.nth_usage(n)
    }

    /// The array value that selects `usage`, if the field lists it.
    pub fn array_value(&self, usage: Usage) -> Option<i64> {
        let mut before = 0u64;
        for (range, &end) in self.usages.iter().zip(&self.ends) {
            if range.contains(usage) {
                let n = before + u64::from(usage.id() - range.first.id());
                return self.logical_min.checked_add(i64::try_from(n).ok()?);
            }
            before = end;
        }
        None
    }

    /// Whether the field lists `usage`.
    pub fn has_usage(&self, usage: Usage) -> bool {
        self.usages.iter().any(|r| r.contains(usage))
    }

    /// A logical value in physical units: scaled linearly from the logical
    /// to the physical range, times `10^unit_exponent`. `None` when the
    /// logical range is empty.
    pub fn to_physical(&self, logical: i64) -> Option<f64> {
        let (lmin, lmax) = (self.logical_min as f64, self.logical_max as f64);
        let (pmin, pmax) = (self.physical_min as f64, self.physical_max as f64);
        if lmax <= lmin {
            return None;
        }
        let scaled = (logical as f64 - lmin) * (pmax - pmin) / (lmax - lmin) + pmin;
        Some(scaled * 10f64.powi(self.unit_exponent))
    }
}

/// The type of a collection (the data of the `Collection` item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionKind {
    /// 0x00: a physical group (one geometric point).
    Physical,
    /// 0x01: an application (mouse, keyboard): what a host driver binds.
    Application,
    /// 0x02: logical.
    Logical,
    /// 0x03: report.
    Report,
    /// 0x04: named array.
    NamedArray,
    /// 0x05: usage switch.
    UsageSwitch,
    /// 0x06: usage modifier.
    UsageModifier,
    /// 0x07..=0x7F reserved, 0x80..=0xFF vendor-defined.
    Other(u8),
}

impl CollectionKind {
    pub(crate) fn from_u8(v: u8) -> CollectionKind {
        match v {
            0 => CollectionKind::Physical,
            1 => CollectionKind::Application,
            2 => CollectionKind::Logical,
            3 => CollectionKind::Report,
            4 => CollectionKind::NamedArray,
            5 => CollectionKind::UsageSwitch,
            6 => CollectionKind::UsageModifier,
            other => CollectionKind::Other(other),
        }
    }
}

/// A collection: a group of fields, with its usage and its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// The collection type.
    pub kind: CollectionKind,
    /// Its usage (the first usage given before the `Collection` item).
    pub usage: Option<Usage>,
    /// The enclosing collection (an index into
    /// [`ReportDescriptor::collections`]).
    pub parent: Option<usize>,
    /// Nesting depth: 0 for a top-level collection.
    pub depth: usize,
}

/// One report: every field of one kind with one report ID, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Input, output or feature.
    pub kind: ReportKind,
    /// The report ID; 0 when the descriptor uses none.
    pub id: u8,
    /// Its fields, in descriptor order (padding included).
    pub fields: Vec<Field>,
    /// Total data bits (sum of the fields').
    pub bit_len: u32,
}

impl Report {
    /// Data bytes, the report ID byte not counted.
    pub fn data_len(&self) -> usize {
        self.bit_len.div_ceil(8) as usize
    }

    /// Bytes on the wire: the data plus the report ID byte when it has one.
    pub fn wire_len(&self) -> usize {
        self.data_len() + usize::from(self.id != 0)
    }

    /// The fields that list `usage`, with their indices.
    pub fn fields_with_usage(&self, usage: Usage) -> impl Iterator<Item = (usize, &Field)> {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.has_usage(usage))
    }
}

/// A parsed report descriptor: the layout of every input, output and
/// feature report, and the collections.
///
/// Build it with [`ReportDescriptor::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportDescriptor {
    pub(crate) reports: Vec<Report>,
    pub(crate) collections: Vec<Collection>,
    pub(crate) uses_report_ids: bool,
}

impl ReportDescriptor {
    /// Every report, sorted by kind then ID.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// The report of this kind and ID (0 when the descriptor uses no IDs).
    pub fn report(&self, kind: ReportKind, id: u8) -> Option<&Report> {
        self.reports.iter().find(|r| r.kind == kind && r.id == id)
    }

    /// The input report with this ID.
    pub fn input(&self, id: u8) -> Option<&Report> {
        self.report(ReportKind::Input, id)
    }

    /// The output report with this ID.
    pub fn output(&self, id: u8) -> Option<&Report> {
        self.report(ReportKind::Output, id)
    }

    /// The feature report with this ID.
    pub fn feature(&self, id: u8) -> Option<&Report> {
        self.report(ReportKind::Feature, id)
    }

    /// The reports of one kind.
    pub fn reports_of(&self, kind: ReportKind) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(move |r| r.kind == kind)
    }

    /// Every collection, in descriptor order.
    pub fn collections(&self) -> &[Collection] {
        &self.collections
    }

    /// Whether reports carry a report ID byte first.
    pub fn uses_report_ids(&self) -> bool {
        self.uses_report_ids
    }

    /// The longest report of `kind` on the wire (report ID included); 0
    /// when there is none.
    pub fn max_wire_len(&self, kind: ReportKind) -> usize {
        self.reports_of(kind)
            .map(Report::wire_len)
            .max()
            .unwrap_or(0)
    }
}
