//! [`Hid`]: a HID function (Linux's `f_hid`) with input, output and
//! feature reports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::hid_report::DEFAULT_REPORT_DESCRIPTOR;
use crate::control::{standard, SetupPacket};
use crate::descriptor::{class, ConfigBuilder, HidDescriptor, HID, HID_REPORT};
use crate::sim::model::{
    device_descriptor, interrupt_endpoint, ControlReply, DeviceModel, InReply, ModelDescriptors,
    Notifier, OutReply,
};
use crate::target::Speed;

/// HID class request GET_REPORT.
pub const GET_REPORT: u8 = 0x01;
/// HID class request GET_IDLE.
pub const GET_IDLE: u8 = 0x02;
/// HID class request GET_PROTOCOL.
pub const GET_PROTOCOL: u8 = 0x03;
/// HID class request SET_REPORT.
pub const SET_REPORT: u8 = 0x09;
/// HID class request SET_IDLE.
pub const SET_IDLE: u8 = 0x0A;
/// HID class request SET_PROTOCOL.
pub const SET_PROTOCOL: u8 = 0x0B;

/// Report type in the high byte of `wValue` of GET/SET_REPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportType {
    /// Input (1).
    Input,
    /// Output (2).
    Output,
    /// Feature (3).
    Feature,
}

impl ReportType {
    fn from_u8(v: u8) -> Option<ReportType> {
        match v {
            1 => Some(ReportType::Input),
            2 => Some(ReportType::Output),
            3 => Some(ReportType::Feature),
            _ => None,
        }
    }
}

/// Where the function's interface and endpoints are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HidLayout {
    /// Interface number.
    pub interface: u8,
    /// Interrupt IN endpoint.
    pub report_in: u8,
    /// Interrupt OUT endpoint, if any (otherwise output reports go by SET_REPORT).
    pub report_out: Option<u8>,
}

impl Default for HidLayout {
    /// Interface 0, interrupt IN `0x81`, interrupt OUT `0x01`.
    fn default() -> Self {
        HidLayout {
            interface: 0,
            report_in: 0x81,
            report_out: Some(0x01),
        }
    }
}

#[derive(Debug, Default)]
struct HidShared {
    input: VecDeque<(Vec<u8>, usize)>,
    /// Last input report per ID, for GET_REPORT(input).
    last_input: Vec<(u8, Vec<u8>)>,
    output: Vec<Vec<u8>>,
    features: Vec<(u8, Vec<u8>)>,
    features_set: Vec<(u8, Vec<u8>)>,
    idle: u8,
    protocol: u8,
    notifier: Option<Notifier>,
}

fn put(list: &mut Vec<(u8, Vec<u8>)>, id: u8, data: &[u8]) {
    match list.iter_mut().find(|(i, _)| *i == id) {
        Some((_, v)) => {
            v.clear();
            v.extend_from_slice(data);
        }
        None => list.push((id, data.to_vec())),
    }
}

/// A HID function (IDs `0525:a4ac`, Linux's HID gadget): interface 0 class
/// 3 with a HID descriptor (0x21), interrupt IN `0x81` and interrupt OUT
/// `0x01`, the report descriptor given at construction
/// ([`DEFAULT_REPORT_DESCRIPTOR`] by default).
///
/// Answers `GET_DESCRIPTOR` of the HID and report descriptors (to the
/// interface), `GET_REPORT`/`SET_REPORT` (input, output, feature),
/// `GET_IDLE`/`SET_IDLE` and `GET_PROTOCOL`/`SET_PROTOCOL`. The device side
/// is a [`HidDevice`] (the test's `/dev/hidg0`).
#[derive(Debug)]
pub struct Hid {
    report_descriptor: Vec<u8>,
    report_length: u16,
    layout: HidLayout,
    ids: (u16, u16),
    shared: Arc<Mutex<HidShared>>,
}

impl Default for Hid {
    fn default() -> Self {
        Self::new(DEFAULT_REPORT_DESCRIPTOR.to_vec(), 9)
    }
}

impl Hid {
    /// A HID function with `report_descriptor` whose largest report
    /// (report ID included) is `report_length` bytes: the interrupt
    /// endpoints' max packet size, as `f_hid` does it.
    pub fn new(report_descriptor: Vec<u8>, report_length: u16) -> Self {
        Hid {
            report_descriptor,
            report_length: report_length.clamp(1, 1024),
            layout: HidLayout::default(),
            ids: (0x0525, 0xa4ac),
            shared: Arc::new(Mutex::new(HidShared {
                protocol: 1,
                ..HidShared::default()
            })),
        }
    }

    /// Place the interface and endpoints elsewhere.
    pub fn with_layout(mut self, layout: HidLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Use other vendor and product IDs.
    pub fn with_ids(mut self, vendor_id: u16, product_id: u16) -> Self {
        self.ids = (vendor_id, product_id);
        self
    }

    /// The device side. Take it before plugging the model in.
    pub fn device(&self) -> HidDevice {
        HidDevice {
            shared: self.shared.clone(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> HidLayout {
        self.layout
    }

    fn lock(&self) -> MutexGuard<'_, HidShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hid_descriptor(&self) -> HidDescriptor {
        HidDescriptor::new(u16::try_from(self.report_descriptor.len()).unwrap_or(u16::MAX))
    }

    pub(crate) fn add_to(&self, b: ConfigBuilder, speed: Speed) -> ConfigBuilder {
        let l = self.layout;
        let mut b = b
            .interface(l.interface, class::HID, 0, 0)
            .raw(self.hid_descriptor().to_raw_owned())
            .endpoint(interrupt_endpoint(
                l.report_in,
                self.report_length,
                4,
                speed,
            ));
        if let Some(out) = l.report_out {
            b = b.endpoint(interrupt_endpoint(out, self.report_length, 4, speed));
        }
        b
    }
}

impl DeviceModel for Hid {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let config = self.add_to(ConfigBuilder::new(1), speed).to_bytes();
        let device = device_descriptor(self.ids.0, self.ids.1, speed);
        ModelDescriptors::new(device, vec![config]).with_standard_strings(
            "usbdf",
            "usbdf HID",
            "usbdf-hid",
        )
    }

    fn attach(&mut self, notifier: Notifier) {
        self.lock().notifier = Some(notifier);
    }

    fn detach(&mut self) {
        self.lock().notifier = None;
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        if setup.index != u16::from(self.layout.interface) {
            return ControlReply::Stall;
        }
        let [lo, hi] = setup.value.to_le_bytes();
        match (setup.request_type, setup.request) {
            // Standard GET_DESCRIPTOR to the interface.
            (0x81, standard::GET_DESCRIPTOR) => match hi {
                HID_REPORT => ControlReply::Data(self.report_descriptor.clone()),
                HID => ControlReply::Data(self.hid_descriptor().to_bytes()),
                _ => ControlReply::Stall,
            },
            (0xA1, GET_REPORT) => {
                let s = self.lock();
                let list = match ReportType::from_u8(hi) {
                    Some(ReportType::Input) => &s.last_input,
                    Some(ReportType::Feature) => &s.features,
                    _ => return ControlReply::Stall,
                };
                match list.iter().find(|(id, _)| *id == lo) {
                    Some((_, v)) => ControlReply::Data(v.clone()),
                    // Nothing set yet: the report ID and zeros.
                    None => {
                        let mut v = vec![0; usize::from(setup.length)];
                        if let Some(first) = v.first_mut() {
                            *first = lo;
                        }
                        ControlReply::Data(v)
                    }
                }
            }
            (0x21, SET_REPORT) => {
                let mut s = self.lock();
                match ReportType::from_u8(hi) {
                    Some(ReportType::Output) => s.output.push(data.to_vec()),
                    Some(ReportType::Feature) => {
                        put(&mut s.features, lo, data);
                        s.features_set.push((lo, data.to_vec()));
                    }
                    _ => return ControlReply::Stall,
                }
                ControlReply::Ack
            }
            (0xA1, GET_IDLE) => ControlReply::Data(vec![self.lock().idle]),
            (0x21, SET_IDLE) => {
                self.lock().idle = hi;
                ControlReply::Ack
            }
            (0xA1, GET_PROTOCOL) => ControlReply::Data(vec![self.lock().protocol]),
            (0x21, SET_PROTOCOL) => {
                self.lock().protocol = lo;
                ControlReply::Ack
            }
            _ => ControlReply::Stall,
        }
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        if Some(endpoint) != self.layout.report_out {
            return OutReply::Stall;
        }
        self.lock().output.push(data.to_vec());
        OutReply::Ack
    }

    fn in_packet(&mut self, endpoint: u8, packet: &mut [u8]) -> InReply {
        if endpoint != self.layout.report_in {
            return InReply::Stall;
        }
        let mps = packet.len();
        let mut s = self.lock();
        let Some((report, sent)) = s.input.front_mut() else {
            return InReply::Nak;
        };
        let n = (report.len() - *sent).min(mps);
        packet[..n].copy_from_slice(&report[*sent..*sent + n]);
        *sent += n;
        if *sent >= report.len() {
            s.input.pop_front();
        }
        InReply::Data(n)
    }
}

/// The device side of a [`Hid`] function (what a program on the gadget
/// would see as `/dev/hidg0`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct HidDevice {
    shared: Arc<Mutex<HidShared>>,
}

impl HidDevice {
    fn lock(&self) -> MutexGuard<'_, HidShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an input report (report ID first, when the descriptor uses
    /// IDs) for the interrupt IN endpoint; GET_REPORT(input) returns the
    /// last one sent with its ID.
    pub fn send_input_report(&self, report: &[u8]) {
        let mut s = self.lock();
        s.input.push_back((report.to_vec(), 0));
        if let Some(&id) = report.first() {
            put(&mut s.last_input, id, report);
        }
        if let Some(n) = &s.notifier {
            n.notify();
        }
    }

    /// Take the output reports the host sent (interrupt OUT or SET_REPORT).
    pub fn output_reports(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lock().output)
    }

    /// Set the feature report `id` that GET_REPORT(feature) returns
    /// (`bytes` with the report ID first).
    pub fn set_feature_report(&self, id: u8, bytes: &[u8]) {
        put(&mut self.lock().features, id, bytes);
    }

    /// Take the feature reports the host set with SET_REPORT, as (ID, bytes).
    pub fn feature_reports_set(&self) -> Vec<(u8, Vec<u8>)> {
        std::mem::take(&mut self.lock().features_set)
    }

    /// The idle rate the host set (SET_IDLE, units of 4 ms).
    pub fn idle(&self) -> u8 {
        self.lock().idle
    }

    /// The protocol the host set (0 boot, 1 report).
    pub fn protocol(&self) -> u8 {
        self.lock().protocol
    }
}
