//! The user-facing handle: one claimed HID interface.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use usbdf::control::{standard, ControlDirection, Recipient, RequestKind};
use usbdf::descriptor::{self, HidDescriptor, InterfaceDescriptor, TransferType};
use usbdf::{
    ContinuousReader, Device, In, Interface, Interrupt, Memory, Out, Pipe, PipePolicy,
    ReaderConfig, ReaderState, Request, SetupPacket, Status, Timeout, Zlp,
};

use crate::error::HidError;
use crate::report::decode::InputReport;
use crate::report::model::{ReportDescriptor, ReportKind};

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

/// How often a blocked [`HidDevice::read_input`] looks whether the reader
/// has stopped for good (the reader has no stop notification).
const GONE_CHECK: Duration = Duration::from_millis(20);

/// Called with every input report, from usbdf's event context: keep it
/// short and do not block.
pub type InputCallback = Arc<dyn Fn(&InputReport) + Send + Sync + 'static>;

/// Boot or report protocol (SET_PROTOCOL / GET_PROTOCOL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 0: the fixed boot keyboard/mouse reports.
    Boot,
    /// 1: the reports of the report descriptor (the default).
    Report,
}

/// How a [`HidDevice`] is opened.
#[derive(Clone)]
pub struct HidConfig {
    /// Bound for control requests and output writes (default 1 s).
    pub timeout: Timeout,
    /// Interrupt IN reads kept pending (default 2, 1..=32).
    pub pending_reads: usize,
    /// Input reports kept for [`HidDevice::read_input`] (default 64, at
    /// least 1); when full the oldest is dropped and counted.
    pub queue_len: usize,
    /// Called with every input report as it arrives, after it is queued.
    pub on_input: Option<InputCallback>,
    /// How the interface is claimed when a kernel driver (usbhid) holds it.
    pub claim: usbdf::InterfaceClaim,
}

impl Default for HidConfig {
    fn default() -> Self {
        HidConfig {
            timeout: Timeout::millis(1000),
            pending_reads: 2,
            claim: usbdf::InterfaceClaim::Normal,
            queue_len: 64,
            on_input: None,
        }
    }
}

impl HidConfig {
    /// Set the callback for input reports.
    pub fn on_input(mut self, f: impl Fn(&InputReport) + Send + Sync + 'static) -> HidConfig {
        self.on_input = Some(Arc::new(f));
        self
    }

    /// Set the input queue length.
    pub fn queue_len(mut self, n: usize) -> HidConfig {
        self.queue_len = n;
        self
    }

    /// Set the timeout of control requests and writes.
    pub fn timeout(mut self, t: Timeout) -> HidConfig {
        self.timeout = t;
        self
    }
}

impl std::fmt::Debug for HidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidConfig")
            .field("timeout", &self.timeout)
            .field("pending_reads", &self.pending_reads)
            .field("queue_len", &self.queue_len)
            .field("on_input", &self.on_input.as_ref().map(|_| ".."))
            .finish()
    }
}

/// Input reports between the reader's callback and `read_input`.
struct Inputs {
    descriptor: Arc<ReportDescriptor>,
    callback: Option<InputCallback>,
    capacity: usize,
    state: Mutex<InputState>,
    ready: Condvar,
}

#[derive(Default)]
struct InputState {
    queue: VecDeque<InputReport>,
    received: u64,
    dropped: u64,
    removed: bool,
}

impl Inputs {
    fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, wire: &[u8]) {
        if wire.is_empty() {
            // A zero-length packet, not a report: f_hid ends every report
            // that fills whole packets with one. Linux's usbhid skips them too.
            tracing::trace!("HID: zero-length input transfer skipped");
            return;
        }
        let report = self.descriptor.decode_input(wire);
        // Queue and count first, then tell the callback: whoever the
        // callback wakes sees the counters already include this report.
        let for_callback = self.callback.as_ref().map(|_| report.clone());
        let mut s = self.lock();
        if s.queue.len() >= self.capacity {
            s.queue.pop_front();
            s.dropped += 1;
        }
        s.queue.push_back(report);
        s.received += 1;
        drop(s);
        self.ready.notify_all();
        if let (Some(cb), Some(report)) = (&self.callback, for_callback) {
            cb(&report);
        }
    }
}

struct Inner {
    device: Device,
    interface: Interface,
    hid: HidDescriptor,
    raw_descriptor: Vec<u8>,
    descriptor: Arc<ReportDescriptor>,
    input_pipe: Pipe<Interrupt, In>,
    output_pipe: Option<Pipe<Interrupt, Out>>,
    reader: ContinuousReader<Interrupt>,
    inputs: Arc<Inputs>,
    timeout: Timeout,
}

/// A claimed HID interface: its parsed report descriptor, decoded input
/// reports from a continuous reader, output and feature reports, idle and
/// protocol. Cloning shares it; the interface is released when the last
/// clone is dropped (the reader is stopped then).
///
/// Report IDs follow hidapi: 0 means "the descriptor uses no IDs"; data
/// passed in and returned excludes the ID byte unless a method says
/// otherwise.
#[derive(Clone)]
pub struct HidDevice {
    inner: Arc<Inner>,
}

fn class_setup(dir: ControlDirection, request: u8, value: u16, iface: u8, len: u16) -> SetupPacket {
    SetupPacket::new(
        dir,
        RequestKind::Class,
        Recipient::Interface,
        request,
        value,
        u16::from(iface),
        len,
    )
}

/// The HID descriptor of an interface: among its class-specific
/// descriptors, or (some devices) after an endpoint.
fn find_hid_descriptor(setting: &InterfaceDescriptor) -> Result<HidDescriptor, HidError> {
    let raw = setting
        .class_specific_of_type(descriptor::HID)
        .next()
        .or_else(|| {
            setting
                .endpoints
                .iter()
                .flat_map(|e| &e.extra)
                .find(|r| r.descriptor_type == descriptor::HID)
        })
        .ok_or(HidError::NoHidDescriptor(setting.number))?;
    HidDescriptor::from_raw_owned(raw).map_err(HidError::HidDescriptor)
}

impl HidDevice {
    /// Claim HID interface `number` of `device`, read and parse its report
    /// descriptor, and open its interrupt pipes. Input reports flow once
    /// [`start`](Self::start) is called.
    ///
    /// # Errors
    /// [`HidError::NotHid`], [`HidError::NoHidDescriptor`],
    /// [`HidError::HidDescriptor`], [`HidError::ReportDescriptor`] (the
    /// parser's typed error), [`HidError::NoInputEndpoint`], or the
    /// framework's error claiming the interface or reading the descriptor.
    pub fn open(device: &Device, number: u8, config: HidConfig) -> Result<HidDevice, HidError> {
        let interface = device.claim_interface_with(number, config.claim)?;
        let setting = interface
            .descriptor()
            .ok_or(usbdf::Error::NoSuchInterface(number))?
            .clone();
        if setting.class != descriptor::class::HID {
            return Err(HidError::NotHid {
                interface: number,
                class: setting.class,
            });
        }
        let hid = find_hid_descriptor(&setting)?;
        let len = hid
            .report_descriptor_length()
            .ok_or(HidError::NoHidDescriptor(number))?;
        let get = SetupPacket::new(
            ControlDirection::In,
            RequestKind::Standard,
            Recipient::Interface,
            standard::GET_DESCRIPTOR,
            u16::from(descriptor::HID_REPORT) << 8,
            u16::from(number),
            len,
        );
        let raw_descriptor = device.control_pipe().read(get, config.timeout)?;
        let descriptor =
            Arc::new(ReportDescriptor::parse(&raw_descriptor).map_err(HidError::ReportDescriptor)?);

        let interrupt = |dir| {
            setting
                .endpoints
                .iter()
                .find(|e| e.transfer_type() == TransferType::Interrupt && e.direction() == dir)
                .map(|e| e.address)
        };
        let in_addr =
            interrupt(descriptor::Direction::In).ok_or(HidError::NoInputEndpoint(number))?;
        let input_pipe = interface.open_pipe::<Interrupt, In>(in_addr)?;
        let output_pipe = match interrupt(descriptor::Direction::Out) {
            // Reports have a known length: never add a ZLP after a report
            // that fills whole packets (f_hid would take it for a report).
            Some(a) => Some(interface.open_pipe_with::<Interrupt, Out>(
                a,
                PipePolicy {
                    zlp: Zlp::Never,
                    ..PipePolicy::default()
                },
            )?),
            None => None,
        };

        let inputs = Arc::new(Inputs {
            descriptor: descriptor.clone(),
            callback: config.on_input.clone(),
            capacity: config.queue_len.max(1),
            state: Mutex::new(InputState::default()),
            ready: Condvar::new(),
        });
        let mps = input_pipe.info().max_packet_size.max(1);
        let longest = descriptor.max_wire_len(ReportKind::Input).max(1);
        let sink = inputs.clone();
        let reader = input_pipe.continuous_reader(
            ReaderConfig::new(
                longest.div_ceil(mps) * mps,
                Arc::new(move |data: &[u8]| sink.push(data)),
            )
            .pending_reads(config.pending_reads),
        )?;
        Ok(HidDevice {
            inner: Arc::new(Inner {
                device: device.clone(),
                interface,
                hid,
                raw_descriptor,
                descriptor,
                input_pipe,
                output_pipe,
                reader,
                inputs,
                timeout: config.timeout,
            }),
        })
    }

    /// Start reading input reports.
    ///
    /// # Errors
    /// [`HidError::Disconnected`], or the framework's error starting the
    /// continuous reader.
    pub fn start(&self) -> Result<(), HidError> {
        Ok(self.inner.reader.start()?)
    }

    /// Stop reading input reports: cancel the pending reads and wait for
    /// them, for at most `timeout`. Queued reports stay readable.
    ///
    /// # Errors
    /// [`HidError::TimedOut`].
    pub fn stop(&self, timeout: Timeout) -> Result<(), HidError> {
        Ok(self.inner.reader.stop(timeout)?)
    }

    /// The input reader's state.
    pub fn reader_state(&self) -> ReaderState {
        self.inner.reader.state()
    }

    /// Mark the device removed (the registry's surprise removal): blocked
    /// and later reads return [`HidError::Disconnected`] once the queue is
    /// empty.
    pub(crate) fn mark_removed(&self) {
        self.inner.inputs.lock().removed = true;
        self.inner.inputs.ready.notify_all();
    }

    /// The next input report, waiting for at most `timeout`. Reports
    /// queued before an unplug are returned first.
    ///
    /// # Errors
    /// [`HidError::TimedOut`]; [`HidError::Disconnected`] once the device
    /// is gone and the queue is empty; [`HidError::NotRunning`] when the
    /// reader is stopped and the queue is empty.
    pub fn read_input(&self, timeout: Timeout) -> Result<InputReport, HidError> {
        let deadline = timeout
            .duration()
            .and_then(|d| Instant::now().checked_add(d));
        let inputs = &self.inner.inputs;
        let mut s = inputs.lock();
        loop {
            if let Some(r) = s.queue.pop_front() {
                return Ok(r);
            }
            match self.inner.reader.state() {
                _ if s.removed => return Err(HidError::Disconnected),
                ReaderState::Gone => return Err(HidError::Disconnected),
                ReaderState::Stopped => return Err(HidError::NotRunning),
                _ => {}
            }
            let mut wait = GONE_CHECK;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HidError::TimedOut);
                }
                wait = wait.min(left);
            }
            s = inputs
                .ready
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The next queued input report, without waiting.
    pub fn try_read_input(&self) -> Option<InputReport> {
        self.inner.inputs.lock().queue.pop_front()
    }

    /// Input reports received so far (queued, read or dropped); zero-length
    /// transfers are not reports and are not counted.
    pub fn inputs_received(&self) -> u64 {
        self.inner.inputs.lock().received
    }

    /// Input reports dropped because the queue was full.
    pub fn inputs_dropped(&self) -> u64 {
        self.inner.inputs.lock().dropped
    }

    /// The parsed report descriptor.
    pub fn descriptor(&self) -> &ReportDescriptor {
        &self.inner.descriptor
    }

    /// The report descriptor bytes as the device sent them.
    pub fn raw_report_descriptor(&self) -> &[u8] {
        &self.inner.raw_descriptor
    }

    /// The HID descriptor (0x21).
    pub fn hid_descriptor(&self) -> &HidDescriptor {
        &self.inner.hid
    }

    /// The interface number.
    pub fn interface_number(&self) -> u8 {
        self.inner.interface.number()
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// Whether output reports go on an interrupt OUT pipe (else SET_REPORT).
    pub fn has_output_endpoint(&self) -> bool {
        self.inner.output_pipe.is_some()
    }

    /// The interrupt IN pipe's address.
    pub fn input_endpoint(&self) -> u8 {
        self.inner.input_pipe.info().address
    }

    /// `id` (when IDs are used), then `data`, zero-padded to the report's
    /// length.
    fn wire(&self, kind: ReportKind, id: u8, data: &[u8]) -> Result<Vec<u8>, HidError> {
        let report = self
            .descriptor()
            .report(kind, id)
            .ok_or(HidError::UnknownReport { kind, id })?;
        let max = report.data_len();
        if data.len() > max {
            return Err(HidError::ReportTooLong {
                kind,
                id,
                len: data.len(),
                max,
            });
        }
        let mut wire = Vec::with_capacity(report.wire_len());
        if self.descriptor().uses_report_ids() {
            wire.push(id);
        }
        wire.extend_from_slice(data);
        wire.resize(report.wire_len(), 0);
        Ok(wire)
    }

    /// Send output report `id` (0: no IDs) with `data` (without the ID
    /// byte; zero-padded to the report's length): on the interrupt OUT
    /// pipe when the interface has one, else with SET_REPORT(Output).
    ///
    /// # Errors
    /// [`HidError::UnknownReport`], [`HidError::ReportTooLong`],
    /// [`HidError::TimedOut`], [`HidError::Disconnected`], a transfer
    /// status (e.g. a stall) as [`HidError::Usb`].
    pub fn write_output(&self, id: u8, data: &[u8]) -> Result<(), HidError> {
        let wire = self.wire(ReportKind::Output, id, data)?;
        let Some(pipe) = &self.inner.output_pipe else {
            return self.set_report_wire(ReportKind::Output, id, &wire);
        };
        let done = pipe
            .write_sync(Request::new(Memory::from_slice(&wire)), self.inner.timeout)
            .map_err(|e| match e.kind() {
                usbdf::SendErrorKind::Disconnected => HidError::Disconnected,
                usbdf::SendErrorKind::Halted(s) => s.into(),
                _ => HidError::Usb(usbdf::Error::InvalidArgument(
                    "the output report could not be sent",
                )),
            })?;
        match done.status() {
            Status::Success => Ok(()),
            s => Err(s.into()),
        }
    }

    /// GET_REPORT: report `id` of `kind` exactly as the device answered
    /// (report ID first when the descriptor uses IDs), asking for the
    /// report's wire length.
    ///
    /// # Errors
    /// [`HidError::UnknownReport`], or the control request's error (a
    /// stall as [`HidError::Usb`]).
    pub fn get_report(&self, kind: ReportKind, id: u8) -> Result<Vec<u8>, HidError> {
        let report = self
            .descriptor()
            .report(kind, id)
            .ok_or(HidError::UnknownReport { kind, id })?;
        let len = u16::try_from(report.wire_len()).unwrap_or(u16::MAX);
        let value = u16::from(kind.wire_type()) << 8 | u16::from(id);
        let setup = class_setup(
            ControlDirection::In,
            GET_REPORT,
            value,
            self.interface_number(),
            len,
        );
        Ok(self
            .device()
            .control_pipe()
            .read(setup, self.inner.timeout)?)
    }

    /// SET_REPORT of `kind` (output or feature) report `id` with `data`
    /// (without the ID byte; zero-padded).
    ///
    /// # Errors
    /// As [`write_output`](Self::write_output).
    pub fn set_report(&self, kind: ReportKind, id: u8, data: &[u8]) -> Result<(), HidError> {
        let wire = self.wire(kind, id, data)?;
        self.set_report_wire(kind, id, &wire)
    }

    fn set_report_wire(&self, kind: ReportKind, id: u8, wire: &[u8]) -> Result<(), HidError> {
        let value = u16::from(kind.wire_type()) << 8 | u16::from(id);
        let setup = class_setup(
            ControlDirection::Out,
            SET_REPORT,
            value,
            self.interface_number(),
            0,
        );
        self.device()
            .control_pipe()
            .write(setup, wire, self.inner.timeout)?;
        Ok(())
    }

    /// Feature report `id`'s data (GET_REPORT(Feature)), without the ID
    /// byte, which is checked.
    ///
    /// # Errors
    /// [`HidError::ReportIdMismatch`] when the answer does not start with
    /// `id`; as [`get_report`](Self::get_report).
    pub fn get_feature(&self, id: u8) -> Result<Vec<u8>, HidError> {
        let mut raw = self.get_report(ReportKind::Feature, id)?;
        if self.descriptor().uses_report_ids() {
            match raw.first() {
                Some(&first) if first == id => {
                    raw.remove(0);
                }
                got => {
                    return Err(HidError::ReportIdMismatch {
                        expected: id,
                        got: got.copied(),
                    })
                }
            }
        }
        Ok(raw)
    }

    /// Set feature report `id` (SET_REPORT(Feature)) to `data` (without
    /// the ID byte; zero-padded).
    ///
    /// # Errors
    /// As [`write_output`](Self::write_output).
    pub fn set_feature(&self, id: u8, data: &[u8]) -> Result<(), HidError> {
        self.set_report(ReportKind::Feature, id, data)
    }

    /// SET_IDLE: report `id` (0: all reports) only when it changes, or
    /// also every `duration` (`None`: only on change). The duration is a
    /// multiple of 4 ms up to 1020 ms.
    ///
    /// # Errors
    /// [`HidError::InvalidIdle`]; the control request's error.
    pub fn set_idle(&self, id: u8, duration: Option<Duration>) -> Result<(), HidError> {
        let rate = match duration {
            None => 0,
            Some(d) => {
                let ms = d.as_millis();
                if ms == 0 || ms % 4 != 0 || ms > 1020 || d.subsec_nanos() % 1_000_000 != 0 {
                    return Err(HidError::InvalidIdle(d));
                }
                (ms / 4) as u16
            }
        };
        let setup = class_setup(
            ControlDirection::Out,
            SET_IDLE,
            rate << 8 | u16::from(id),
            self.interface_number(),
            0,
        );
        self.device()
            .control_pipe()
            .write(setup, &[], self.inner.timeout)?;
        Ok(())
    }

    /// GET_IDLE for report `id`: `None` means reports only on change.
    ///
    /// # Errors
    /// The control request's error; an empty answer as
    /// [`HidError::Usb`] (`Status::ShortPacket`).
    pub fn get_idle(&self, id: u8) -> Result<Option<Duration>, HidError> {
        let setup = class_setup(
            ControlDirection::In,
            GET_IDLE,
            u16::from(id),
            self.interface_number(),
            1,
        );
        let got = self
            .device()
            .control_pipe()
            .read(setup, self.inner.timeout)?;
        let rate = *got.first().ok_or(HidError::from(Status::ShortPacket))?;
        Ok((rate != 0).then(|| Duration::from_millis(u64::from(rate) * 4)))
    }

    /// SET_PROTOCOL.
    ///
    /// # Errors
    /// The control request's error (devices without a boot interface may
    /// stall it).
    pub fn set_protocol(&self, protocol: Protocol) -> Result<(), HidError> {
        let value = match protocol {
            Protocol::Boot => 0,
            Protocol::Report => 1,
        };
        let setup = class_setup(
            ControlDirection::Out,
            SET_PROTOCOL,
            value,
            self.interface_number(),
            0,
        );
        self.device()
            .control_pipe()
            .write(setup, &[], self.inner.timeout)?;
        Ok(())
    }

    /// GET_PROTOCOL.
    ///
    /// # Errors
    /// [`HidError::BadProtocol`] for an answer other than 0 or 1; the
    /// control request's error.
    pub fn get_protocol(&self) -> Result<Protocol, HidError> {
        let setup = class_setup(
            ControlDirection::In,
            GET_PROTOCOL,
            0,
            self.interface_number(),
            1,
        );
        let got = self
            .device()
            .control_pipe()
            .read(setup, self.inner.timeout)?;
        match got.first() {
            Some(0) => Ok(Protocol::Boot),
            Some(1) => Ok(Protocol::Report),
            Some(&other) => Err(HidError::BadProtocol(other)),
            None => Err(Status::ShortPacket.into()),
        }
    }
}

impl std::fmt::Debug for HidDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidDevice")
            .field("device", &self.inner.device)
            .field("interface", &self.interface_number())
            .field("reports", &self.descriptor().reports().len())
            .finish()
    }
}
