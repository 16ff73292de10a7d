//! Where devices come from: the OS (nusb) or the simulator.

use std::sync::Arc;

use crate::backend::{BackendBus, BackendDeviceInfo};
use crate::error::Error;
use crate::target::Device;

/// A USB host: the system's (real devices through nusb) or a simulated one.
///
/// KMDF: the bus driver stack below `WdfUsbTargetDeviceCreateWithParameters`.
#[derive(Clone)]
pub struct Host {
    pub(crate) bus: Arc<dyn BackendBus>,
    name: &'static str,
}

impl Host {
    /// The operating system's USB stack, through nusb.
    pub fn system() -> Host {
        Host {
            bus: Arc::new(crate::backend::nusb_host::NusbBus),
            name: "system",
        }
    }

    pub(crate) fn from_bus(bus: Arc<dyn BackendBus>, name: &'static str) -> Host {
        Host { bus, name }
    }

    /// `"system"` or `"simulator"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The devices attached now.
    ///
    /// # Errors
    /// [`Error::Backend`] when the OS cannot enumerate (for instance no USB
    /// subsystem at all).
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, Error> {
        let list = self.bus.list().map_err(|e| Error::from_backend(e, None))?;
        Ok(list
            .into_iter()
            .map(|info| DeviceInfo {
                info,
                host: self.clone(),
            })
            .collect())
    }

    /// Open the first device that matches.
    ///
    /// # Errors
    /// [`Error::DeviceNotFound`] when none matches, or the open error.
    pub fn open(&self, m: &DeviceSelector) -> Result<Device, Error> {
        self.devices()?
            .into_iter()
            .find(|d| m.matches(d))
            .ok_or(Error::DeviceNotFound)?
            .open()
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("name", &self.name).finish()
    }
}

/// A device found on a [`Host`], not yet opened.
#[derive(Clone)]
pub struct DeviceInfo {
    pub(crate) info: BackendDeviceInfo,
    pub(crate) host: Host,
}

impl DeviceInfo {
    /// `idVendor`.
    pub fn vendor_id(&self) -> u16 {
        self.info.vendor_id
    }
    /// `idProduct`.
    pub fn product_id(&self) -> u16 {
        self.info.product_id
    }
    /// The serial number string, if the device has one.
    pub fn serial(&self) -> Option<&str> {
        self.info.serial.as_deref()
    }
    /// The manufacturer string, if any.
    pub fn manufacturer(&self) -> Option<&str> {
        self.info.manufacturer.as_deref()
    }
    /// The product string, if any.
    pub fn product(&self) -> Option<&str> {
        self.info.product.as_deref()
    }
    /// Device class, subclass and protocol.
    pub fn class(&self) -> (u8, u8, u8) {
        (self.info.class, self.info.subclass, self.info.protocol)
    }
    /// Interfaces of the active configuration as (number, class, subclass,
    /// protocol).
    pub fn interfaces(&self) -> &[(u8, u8, u8, u8)] {
        &self.info.interfaces
    }
    /// The bus the device is on.
    pub fn bus_id(&self) -> &str {
        &self.info.bus_id
    }
    /// The device's address on its bus.
    pub fn address(&self) -> u8 {
        self.info.address
    }

    /// Open the device.
    ///
    /// # Errors
    /// [`Error::Disconnected`], [`Error::PermissionDenied`], or a malformed
    /// descriptor.
    pub fn open(&self) -> Result<Device, Error> {
        let backend = self
            .host
            .bus
            .open(&self.info)
            .map_err(|e| Error::from_backend(e, None))?;
        Device::from_backend(backend)
    }
}

impl std::fmt::Debug for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceInfo({:04x}:{:04x} bus {} addr {}",
            self.info.vendor_id, self.info.product_id, self.info.bus_id, self.info.address
        )?;
        if let Some(s) = &self.info.serial {
            write!(f, " serial {s:?}")?;
        }
        write!(f, ")")
    }
}

/// Which device to open: vendor/product and optionally a serial number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceSelector {
    /// `idVendor` to match, if any.
    pub vendor_id: Option<u16>,
    /// `idProduct` to match, if any.
    pub product_id: Option<u16>,
    /// Serial number to match, if any.
    pub serial: Option<String>,
}

impl DeviceSelector {
    /// Match vendor and product.
    pub fn id(vendor_id: u16, product_id: u16) -> DeviceSelector {
        DeviceSelector {
            vendor_id: Some(vendor_id),
            product_id: Some(product_id),
            serial: None,
        }
    }

    /// Also match the serial number.
    pub fn serial(mut self, serial: impl Into<String>) -> DeviceSelector {
        self.serial = Some(serial.into());
        self
    }

    /// Whether `d` matches.
    pub fn matches(&self, d: &DeviceInfo) -> bool {
        self.vendor_id.is_none_or(|v| v == d.vendor_id())
            && self.product_id.is_none_or(|p| p == d.product_id())
            && self.serial.as_deref().is_none_or(|s| d.serial() == Some(s))
    }
}
