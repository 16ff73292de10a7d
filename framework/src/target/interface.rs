//! Interfaces and their alternate settings.

use std::sync::{Arc, Mutex};

use crate::backend::BackendInterface;
use crate::descriptor::{Direction, InterfaceDescriptor, InterfaceSettings, TransferType};
use crate::error::Error;
use crate::options::PipePolicy;
use crate::target::pipe::{Pipe, PipeDirection, PipeType};
use crate::target::Device;

/// What to do when a kernel driver holds the interface being claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceClaim {
    /// Fail with [`Error::Busy`].
    Normal,
    /// Detach the kernel driver first (Linux), then claim.
    DetachKernelDriver,
}

/// A claimed interface: its alternate settings and the pipes of the
/// current one.
///
/// KMDF: `WDFUSBINTERFACE`.
#[derive(Clone)]
pub struct Interface {
    pub(crate) device: Device,
    pub(crate) backend: Arc<dyn BackendInterface>,
    settings: InterfaceSettings,
    pub(crate) shared: Arc<InterfaceShared>,
}

pub(crate) struct InterfaceShared {
    number: u8,
    /// Open pipes by endpoint address (bit = address & 0x0f, +16 for IN).
    pub(crate) open_pipes: Mutex<u32>,
    claimed: Arc<Mutex<u64>>,
}

impl Drop for InterfaceShared {
    fn drop(&mut self) {
        let mut c = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        *c &= !(1u64 << (self.number & 63));
    }
}

impl Interface {
    pub(crate) fn claim(
        device: &Device,
        number: u8,
        claim: InterfaceClaim,
    ) -> Result<Interface, Error> {
        device.check_connected()?;
        let config = device.active_configuration()?;
        let settings = config
            .interfaces
            .iter()
            .find(|i| i.number == number)
            .cloned()
            .ok_or(Error::NoSuchInterface(number))?;
        {
            let c = device.claimed.lock().unwrap_or_else(|e| e.into_inner());
            if *c & (1u64 << (number & 63)) != 0 {
                return Err(Error::Busy {
                    interface: number,
                    source: crate::backend::BackendError::new(
                        crate::backend::BackendErrorKind::Busy,
                        "interface already claimed through this device handle",
                    ),
                });
            }
        }
        let backend = device
            .core
            .backend
            .claim_interface(number, claim == InterfaceClaim::DetachKernelDriver)
            .map_err(|e| match Error::from_backend(e, Some(number)) {
                Error::Disconnected => {
                    device.core.mark_gone();
                    Error::Disconnected
                }
                other => other,
            })?;
        let claimed = device.claimed.clone();
        *claimed.lock().unwrap_or_else(|e| e.into_inner()) |= 1u64 << (number & 63);
        Ok(Interface {
            device: device.clone(),
            backend: Arc::from(backend),
            settings,
            shared: Arc::new(InterfaceShared {
                number,
                open_pipes: Mutex::new(0),
                claimed,
            }),
        })
    }

    /// `bInterfaceNumber`.
    ///
    /// KMDF: `WdfUsbInterfaceGetInterfaceNumber`.
    pub fn number(&self) -> u8 {
        self.shared.number
    }

    /// Every alternate setting of the interface.
    ///
    /// KMDF: `WdfUsbInterfaceGetNumSettings` + `WdfUsbInterfaceGetDescriptor`.
    pub fn settings(&self) -> &[InterfaceDescriptor] {
        &self.settings.alt_settings
    }

    /// The index of the alternate setting in use.
    ///
    /// KMDF: `WdfUsbInterfaceGetConfiguredSettingIndex`.
    pub fn current_setting(&self) -> u8 {
        self.backend.alt_setting()
    }

    /// The descriptor of the alternate setting in use.
    pub fn descriptor(&self) -> Option<&InterfaceDescriptor> {
        self.settings.alt(self.current_setting())
    }

    /// Select an alternate setting. Close this interface's pipes first.
    ///
    /// KMDF: `WdfUsbInterfaceSelectSetting`.
    ///
    /// # Errors
    /// [`Error::NoSuchAltSetting`], [`Error::PipesOpen`],
    /// [`Error::Disconnected`], or the OS error.
    pub fn select_setting(&self, alt: u8) -> Result<(), Error> {
        self.device.check_connected()?;
        if self.settings.alt(alt).is_none() {
            return Err(Error::NoSuchAltSetting {
                interface: self.number(),
                alt,
            });
        }
        if *self
            .shared
            .open_pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            != 0
        {
            return Err(Error::PipesOpen(self.number()));
        }
        self.backend
            .set_alt_setting(alt)
            .map_err(|e| self.device.backend_err(e))
    }

    /// Open a typed pipe on an endpoint of the current setting, with the
    /// default [`PipePolicy`].
    ///
    /// The endpoint's transfer type and direction are checked against the
    /// descriptor here, once: a mismatch is an error now, never at transfer
    /// time.
    ///
    /// KMDF: `WdfUsbInterfaceGetConfiguredPipe`.
    ///
    /// # Errors
    /// [`Error::NoSuchEndpoint`], [`Error::WrongPipeType`],
    /// [`Error::WrongDirection`], [`Error::PipeAlreadyOpen`],
    /// [`Error::Disconnected`].
    pub fn open_pipe<T: PipeType, D: PipeDirection>(
        &self,
        address: u8,
    ) -> Result<Pipe<T, D>, Error> {
        self.open_pipe_with(address, PipePolicy::default())
    }

    /// Open the first endpoint of the current setting with this pipe's
    /// type and direction: how a driver finds its bulk IN/OUT pair without
    /// hard-coding addresses (kmdf_fx2's `SelectInterfaces` walks the pipes
    /// the same way).
    ///
    /// # Errors
    /// [`Error::NoSuchEndpoint`] (address 0) when the setting has none;
    /// otherwise as [`open_pipe`](Self::open_pipe).
    pub fn open_first<T: PipeType, D: PipeDirection>(&self) -> Result<Pipe<T, D>, Error> {
        let address = self
            .descriptor()
            .and_then(|s| {
                s.endpoints
                    .iter()
                    .find(|e| {
                        e.transfer_type() == T::TYPE
                            && Direction::from_address(e.address) == D::DIRECTION
                    })
                    .map(|e| e.address)
            })
            .ok_or(Error::NoSuchEndpoint(0))?;
        self.open_pipe(address)
    }

    /// Open a typed pipe with an explicit policy.
    ///
    /// # Errors
    /// As [`open_pipe`](Self::open_pipe).
    pub fn open_pipe_with<T: PipeType, D: PipeDirection>(
        &self,
        address: u8,
        policy: PipePolicy,
    ) -> Result<Pipe<T, D>, Error> {
        self.device.check_connected()?;
        let found_dir = Direction::from_address(address);
        if found_dir != D::DIRECTION {
            return Err(Error::WrongDirection {
                address,
                expected: D::DIRECTION,
                found: found_dir,
            });
        }
        let setting = self.descriptor().ok_or(Error::NoSuchEndpoint(address))?;
        let ep = setting
            .endpoints
            .iter()
            .find(|e| e.address == address)
            .ok_or(Error::NoSuchEndpoint(address))?;
        let found = ep.transfer_type();
        if found != T::TYPE {
            return Err(Error::WrongPipeType {
                address,
                expected: T::TYPE,
                found,
            });
        }
        let bit = pipe_bit(address);
        {
            let mut open = self
                .shared
                .open_pipes
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *open & bit != 0 {
                return Err(Error::PipeAlreadyOpen(address));
            }
            *open |= bit;
        }
        let backend = match self.backend.open_endpoint(address, T::TYPE) {
            Ok(b) => b,
            Err(e) => {
                *self
                    .shared
                    .open_pipes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) &= !bit;
                return Err(self.device.backend_err(e));
            }
        };
        Ok(Pipe::new(self, ep.clone(), backend, policy))
    }
}

pub(crate) fn pipe_bit(address: u8) -> u32 {
    let n = u32::from(address & 0x0f);
    if address & 0x80 != 0 {
        1 << (n + 16)
    } else {
        1 << n
    }
}

/// Keep the enum in use for docs even when only one variant is matched.
const _: TransferType = TransferType::Bulk;

impl std::fmt::Debug for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface")
            .field("number", &self.number())
            .field("setting", &self.current_setting())
            .finish()
    }
}
