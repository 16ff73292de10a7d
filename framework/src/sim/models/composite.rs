//! [`Composite`]: several functions on one device.

use crate::control::{Recipient, SetupPacket};
use crate::descriptor::{class, ConfigurationDescriptor};
use crate::sim::model::{
    device_descriptor, ControlReply, DeviceModel, InReply, ModelDescriptors, Notifier, OutReply,
};
use crate::target::Speed;

/// A composite device: the functions' interfaces side by side in one
/// configuration (device class 0xEF/2/1, interface associations kept).
///
/// Each function is a [`DeviceModel`] whose first configuration supplies
/// its interfaces; their interface numbers and endpoint addresses must not
/// collide (place them with [`CdcAcm::with_layout`](super::CdcAcm::with_layout)
/// and [`Hid::with_layout`](super::Hid::with_layout)). Requests to an
/// interface or endpoint go to the function that owns it; device requests
/// the simulator does not answer go to each function in turn until one
/// does not stall.
///
/// ```
/// use usbdf::sim::{AcmLayout, CdcAcm, Composite, Hid, HidLayout, SimHost};
///
/// let acm = CdcAcm::new(); // interfaces 0-1, endpoints 0x83, 0x02, 0x82
/// let hid = Hid::default().with_layout(HidLayout {
///     interface: 2,
///     report_in: 0x81,
///     report_out: Some(0x01),
/// });
/// let (port, keys) = (acm.port(), hid.device());
/// let sim = SimHost::new();
/// let _dev = sim.plug(Composite::new(0x1209, 0x0001).function(acm).function(hid));
/// # let _ = (port, keys, AcmLayout::default());
/// ```
pub struct Composite {
    ids: (u16, u16),
    functions: Vec<Function>,
}

struct Function {
    model: Box<dyn DeviceModel>,
    interfaces: Vec<u8>,
    endpoints: Vec<u8>,
}

impl std::fmt::Debug for Composite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composite")
            .field("ids", &self.ids)
            .field("functions", &self.functions.len())
            .finish()
    }
}

impl Composite {
    /// An empty composite device with these IDs.
    pub fn new(vendor_id: u16, product_id: u16) -> Self {
        Composite {
            ids: (vendor_id, product_id),
            functions: Vec::new(),
        }
    }

    /// Add a function.
    pub fn function(mut self, model: impl DeviceModel) -> Self {
        self.functions.push(Function {
            model: Box::new(model),
            interfaces: Vec::new(),
            endpoints: Vec::new(),
        });
        self
    }

    fn owner_of_interface(&mut self, n: u8) -> Option<&mut Function> {
        self.functions
            .iter_mut()
            .find(|f| f.interfaces.contains(&n))
    }

    fn owner_of_endpoint(&mut self, ep: u8) -> Option<&mut Function> {
        self.functions
            .iter_mut()
            .find(|f| f.endpoints.contains(&ep))
    }

    /// The functions' first configurations, parsed.
    fn parts(&self, speed: Speed) -> Vec<ConfigurationDescriptor> {
        self.functions
            .iter()
            .filter_map(|f| {
                let d = f.model.descriptors(speed);
                d.configurations
                    .first()
                    .and_then(|raw| ConfigurationDescriptor::parse(raw).ok())
            })
            .collect()
    }
}

impl DeviceModel for Composite {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let mut config = crate::descriptor::ConfigBuilder::new(1).build();
        for part in self.parts(speed) {
            config.interfaces.extend(part.interfaces);
            config.associations.extend(part.associations);
        }
        config.interfaces.sort_by_key(|i| i.number);
        let mut device = device_descriptor(self.ids.0, self.ids.1, speed);
        (device.class, device.subclass, device.protocol) = (class::MISCELLANEOUS, 0x02, 0x01);
        ModelDescriptors::new(device, vec![config.to_bytes()]).with_standard_strings(
            "usbdf",
            "usbdf composite",
            "usbdf-composite",
        )
    }

    fn attach(&mut self, notifier: Notifier) {
        let speed = notifier.speed();
        let parts = self.parts(speed);
        for (f, part) in self.functions.iter_mut().zip(parts) {
            f.interfaces = part.interfaces.iter().map(|i| i.number).collect();
            f.endpoints = part
                .interfaces
                .iter()
                .flat_map(|i| &i.alt_settings)
                .flat_map(|s| &s.endpoints)
                .map(|e| e.address)
                .collect();
            f.model.attach(notifier.clone());
        }
    }

    fn detach(&mut self) {
        for f in &mut self.functions {
            f.model.detach();
        }
    }

    fn set_configuration(&mut self, value: u8) {
        for f in &mut self.functions {
            f.model.set_configuration(value);
        }
    }

    fn set_interface(&mut self, interface: u8, alt_setting: u8) {
        if let Some(f) = self.owner_of_interface(interface) {
            f.model.set_interface(interface, alt_setting);
        }
    }

    fn control(&mut self, setup: &SetupPacket, data: &[u8]) -> ControlReply {
        let index = setup.index as u8;
        let owner = match setup.recipient() {
            Some(Recipient::Interface) => self.owner_of_interface(index),
            Some(Recipient::Endpoint) => self.owner_of_endpoint(index),
            _ => None,
        };
        if let Some(f) = owner {
            return f.model.control(setup, data);
        }
        for f in &mut self.functions {
            match f.model.control(setup, data) {
                ControlReply::Stall => continue,
                other => return other,
            }
        }
        ControlReply::Stall
    }

    fn out_packet(&mut self, endpoint: u8, data: &[u8]) -> OutReply {
        match self.owner_of_endpoint(endpoint) {
            Some(f) => f.model.out_packet(endpoint, data),
            None => OutReply::Stall,
        }
    }

    fn in_packet(&mut self, endpoint: u8, buf: &mut [u8]) -> InReply {
        match self.owner_of_endpoint(endpoint) {
            Some(f) => f.model.in_packet(endpoint, buf),
            None => InReply::Stall,
        }
    }

    fn clear_halt(&mut self, endpoint: u8) {
        if let Some(f) = self.owner_of_endpoint(endpoint) {
            f.model.clear_halt(endpoint);
        }
    }
}
