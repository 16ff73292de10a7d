//! The built-in simulated devices: gadget zero's Loopback and SourceSink, a CDC-ACM port
//! whose far end echoes, and a HID function, each plugged into a [`SimHost`], with their
//! device sides as [`Peers`].

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use usbdf::sim::{
    self, AcmPort, ControlReply, DeviceModel, InReply, ModelDescriptors, Notifier, OutReply,
    SimDeviceHandle, SimHost,
};
use usbdf::{Host, SetupPacket, Speed};
use usbdf_cdc_acm::{SerialState, SET_CONTROL_LINE_STATE};

use crate::peer::{HidPeer, Peers, SerialPeer};

/// The simulated devices, plugged in for as long as this lives.
#[derive(Debug)]
pub struct SimBench {
    sim: SimHost,
    hid: sim::HidDevice,
    // Kept so the devices stay plugged (unplugged when the SimHost drops).
    _plugged: Vec<SimDeviceHandle>,
}

impl SimBench {
    /// Plug the four sample devices into a new simulated host.
    pub fn new() -> SimBench {
        let sim = SimHost::new();
        let hid = sim::Hid::default();
        let hid_side = hid.device();
        let plugged = vec![
            sim.plug(sim::Loopback::default()),
            sim.plug(sim::SourceSink::default()),
            sim.plug(EchoingAcm::new()),
            sim.plug(hid),
        ];
        SimBench {
            sim,
            hid: hid_side,
            _plugged: plugged,
        }
    }

    /// The simulated host the devices are on.
    pub fn host(&self) -> Host {
        self.sim.host()
    }

    /// The device sides: the port echoes by itself (see [`EchoingAcm`]); the HID function
    /// sends the input reports it is given.
    pub fn peers(&self) -> Peers {
        Peers {
            serial: Some(Box::new(ModelEchoes)),
            hid: Some(Box::new(SimHid {
                device: self.hid.clone(),
                outputs: VecDeque::new(),
            })),
        }
    }
}

impl Default for SimBench {
    fn default() -> Self {
        Self::new()
    }
}

/// `usbdf::sim::CdcAcm` with a far end that behaves like a modem: it sends every byte
/// the host writes straight back, and answers DTR with DCD and DSR (a `SERIAL_STATE`
/// notification), so the port works as a terminal with no program on the device side.
///
/// The echo happens in the model, as each packet arrives: no thread, no polling.
#[derive(Debug)]
pub struct EchoingAcm {
    inner: sim::CdcAcm,
    port: AcmPort,
}

impl EchoingAcm {
    /// The default `0525:a4a7` port.
    pub fn new() -> EchoingAcm {
        let inner = sim::CdcAcm::new();
        let port = inner.port();
        EchoingAcm { inner, port }
    }
}

impl Default for EchoingAcm {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceModel for EchoingAcm {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        self.inner.descriptors(speed)
    }

    fn attach(&mut self, notifier: Notifier) {
        self.inner.attach(notifier);
    }

    fn detach(&mut self) {
        self.inner.detach();
    }

    fn set_configuration(&mut self, value: u8) {
        self.inner.set_configuration(value);
    }

    fn set_interface(&mut self, interface: u8, alt_setting: u8) {
        self.inner.set_interface(interface, alt_setting);
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        let reply = self.inner.control(setup, data);
        if setup.request == SET_CONTROL_LINE_STATE && reply == ControlReply::Ack {
            let dtr = setup.value & 1 != 0;
            let bits = if dtr {
                SerialState::DCD | SerialState::DSR
            } else {
                0
            };
            self.port.notify_serial_state(bits);
        }
        reply
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        let reply = self.inner.out_packet(endpoint, data);
        if reply == OutReply::Ack && endpoint == self.inner.layout().data_out {
            let received = self.port.read();
            if !received.is_empty() {
                self.port.write(&received);
            }
        }
        reply
    }

    fn in_packet(&mut self, endpoint: u8, buf: &mut [u8]) -> InReply {
        self.inner.in_packet(endpoint, buf)
    }

    fn clear_halt(&mut self, endpoint: u8) {
        self.inner.clear_halt(endpoint);
    }
}

/// The simulated port's far end: [`EchoingAcm`] has already sent the bytes back.
struct ModelEchoes;

impl SerialPeer for ModelEchoes {
    fn echo(&mut self, _len: usize, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// The simulated HID function's device side.
struct SimHid {
    device: sim::HidDevice,
    /// Output reports taken from the model and not handed out yet.
    outputs: VecDeque<Vec<u8>>,
}

impl HidPeer for SimHid {
    fn send_input_report(&mut self, report: &[u8]) -> io::Result<()> {
        self.device.send_input_report(report);
        Ok(())
    }

    /// The model has an output report as soon as the host's write completed, so there is
    /// nothing to wait for: none is an error at once.
    fn take_output_report(&mut self, _timeout: Duration) -> io::Result<Vec<u8>> {
        self.outputs.extend(self.device.output_reports());
        self.outputs.pop_front().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the simulated HID function received no output report",
            )
        })
    }
}
