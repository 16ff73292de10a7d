//! The device target.

use std::sync::{Arc, Mutex};

use crate::control::{ControlPipe, Recipient, SetupPacket};
use crate::descriptor::{self, ConfigurationDescriptor, DeviceDescriptor};
use crate::engine::DeviceCore;
use crate::error::Error;
use crate::options::Timeout;
use crate::target::{Interface, InterfaceClaim, Speed};

/// An opened USB device: its descriptors, configuration, control pipe and
/// interfaces.
///
/// Cloning is cheap and shares the device.
///
/// KMDF: `WDFUSBDEVICE`.
#[derive(Clone)]
pub struct Device {
    pub(crate) core: Arc<DeviceCore>,
    descriptor: DeviceDescriptor,
    configurations: Arc<Vec<ConfigurationDescriptor>>,
    /// Interface numbers claimed through this device, so one is not claimed twice.
    pub(crate) claimed: Arc<Mutex<u64>>,
}

impl Device {
    pub(crate) fn from_backend(
        backend: Box<dyn crate::backend::BackendDevice>,
    ) -> Result<Device, Error> {
        let descriptor = DeviceDescriptor::parse(&backend.device_descriptor())?;
        let configurations = backend
            .configuration_descriptors()
            .iter()
            .map(|raw| ConfigurationDescriptor::parse_lenient(raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Device {
            core: DeviceCore::new(backend),
            descriptor,
            configurations: Arc::new(configurations),
            claimed: Arc::new(Mutex::new(0)),
        })
    }

    /// The device descriptor.
    ///
    /// KMDF: `WdfUsbTargetDeviceGetDeviceDescriptor`.
    pub fn device_descriptor(&self) -> &DeviceDescriptor {
        &self.descriptor
    }

    /// Every configuration descriptor the device reported, parsed.
    ///
    /// KMDF: `WdfUsbTargetDeviceRetrieveConfigDescriptor`.
    pub fn configurations(&self) -> &[ConfigurationDescriptor] {
        &self.configurations
    }

    /// The configuration with this `bConfigurationValue`.
    pub fn configuration(&self, value: u8) -> Option<&ConfigurationDescriptor> {
        self.configurations.iter().find(|c| c.value == value)
    }

    /// The active configuration.
    ///
    /// # Errors
    /// [`Error::Disconnected`]; [`Error::NoSuchConfiguration`] when the
    /// device is unconfigured (value 0) or reports a value it did not
    /// describe.
    pub fn active_configuration(&self) -> Result<&ConfigurationDescriptor, Error> {
        self.check_connected()?;
        let v = self
            .core
            .backend
            .active_configuration()
            .map_err(|e| self.backend_err(e))?;
        self.configuration(v).ok_or(Error::NoSuchConfiguration(v))
    }

    /// Select a configuration by `bConfigurationValue` (0 deconfigures).
    ///
    /// KMDF: `WdfUsbTargetDeviceSelectConfig`.
    ///
    /// # Errors
    /// [`Error::NoSuchConfiguration`], [`Error::InterfacesClaimed`], [`Error::Disconnected`], or the OS error.
    pub fn select_configuration(&self, value: u8) -> Result<(), Error> {
        self.check_connected()?;
        if value != 0 && self.configuration(value).is_none() {
            return Err(Error::NoSuchConfiguration(value));
        }
        if *self.claimed.lock().unwrap_or_else(|e| e.into_inner()) != 0 {
            return Err(Error::InterfacesClaimed);
        }
        self.core
            .backend
            .set_configuration(value)
            .map_err(|e| self.backend_err(e))
    }

    /// The speed the device is connected at, if the OS says.
    pub fn speed(&self) -> Option<Speed> {
        self.core.backend.speed()
    }

    /// The default control pipe.
    pub fn control_pipe(&self) -> ControlPipe {
        ControlPipe::new(self.core.clone())
    }

    /// Read a string descriptor and decode it.
    ///
    /// KMDF: `WdfUsbTargetDeviceQueryString`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for index 0, a transfer error (a device
    /// without that string stalls), or [`Error::Descriptor`] when the bytes
    /// are not a valid string descriptor.
    pub fn string(&self, index: u8, language: u16, timeout: Timeout) -> Result<String, Error> {
        if index == 0 {
            return Err(Error::InvalidArgument(
                "string index 0 is the language table",
            ));
        }
        let raw = self.control_pipe().read(
            SetupPacket::get_descriptor(descriptor::STRING, index, language, 255),
            timeout,
        )?;
        Ok(descriptor::parse_string(&raw)?)
    }

    /// The languages the device's strings are in.
    ///
    /// # Errors
    /// As [`string`](Self::string).
    pub fn languages(&self, timeout: Timeout) -> Result<Vec<u16>, Error> {
        let raw = self.control_pipe().read(
            SetupPacket::get_descriptor(descriptor::STRING, 0, 0, 255),
            timeout,
        )?;
        Ok(descriptor::parse_language_ids(&raw)?)
    }

    /// Claim an interface of the active configuration.
    ///
    /// # Errors
    /// [`Error::NoSuchInterface`], [`Error::Busy`] (held by a kernel
    /// driver or another process; see [`InterfaceClaim`]), [`Error::Disconnected`].
    pub fn claim_interface(&self, number: u8) -> Result<Interface, Error> {
        Interface::claim(self, number, InterfaceClaim::Normal)
    }

    /// Claim an interface with an explicit policy towards a kernel driver
    /// that holds it.
    ///
    /// # Errors
    /// As [`claim_interface`](Self::claim_interface).
    pub fn claim_interface_with(
        &self,
        number: u8,
        claim: InterfaceClaim,
    ) -> Result<Interface, Error> {
        Interface::claim(self, number, claim)
    }

    /// Whether the device still answers: a GET_STATUS on the default pipe.
    ///
    /// KMDF: `WdfUsbTargetDeviceIsConnectedSynchronous`.
    pub fn is_connected(&self) -> bool {
        if self.core.is_gone() {
            return false;
        }
        match self.control_pipe().read(
            SetupPacket::get_status(Recipient::Device, 0),
            Timeout::millis(500),
        ) {
            Err(Error::Disconnected) => {
                self.core.mark_gone();
                false
            }
            _ => true,
        }
    }

    /// Reset the port; the device re-enumerates and this handle is gone.
    ///
    /// KMDF: `WdfUsbTargetDeviceResetPortSynchronously`.
    ///
    /// # Errors
    /// The OS error, or [`Error::Disconnected`].
    pub fn reset_port(&self) -> Result<(), Error> {
        self.check_connected()?;
        self.core.backend.reset().map_err(|e| self.backend_err(e))
    }

    pub(crate) fn check_connected(&self) -> Result<(), Error> {
        if self.core.is_gone() {
            Err(Error::Disconnected)
        } else {
            Ok(())
        }
    }

    pub(crate) fn backend_err(&self, e: crate::backend::BackendError) -> Error {
        let err = Error::from_backend(e, None);
        if matches!(err, Error::Disconnected) {
            self.core.mark_gone();
        }
        err
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Device({:04x}:{:04x})",
            self.descriptor.vendor_id, self.descriptor.product_id
        )
    }
}
