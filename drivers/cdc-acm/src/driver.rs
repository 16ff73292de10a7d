//! [`CdcAcmDriver`]: the [`Driver`] plugin: ID table, probe, start/stop, removal.

use usbdf::descriptor::class;
use usbdf::driver::{DeviceMatch, Driver, Probe, ProbeContext};
use usbdf::Timeout;

use crate::acm::{AcmConfig, CdcAcm};
use crate::descriptors::{find_cdc_acm_at, FindError, FunctionalError, SUBCLASS_ACM};
use crate::error::{to_usbdf, AcmError};

/// The ID table: the Linux serial gadget's CDC-ACM ID (`0525:a4a7`, as the VM gadget and
/// `usbdf::sim::CdcAcm` use it) on its communication interface, then every CDC abstract
/// control model interface (class 2, subclass 2, any protocol).
///
/// Only communication interfaces match: the data interface is claimed by the probe of its
/// communication interface, never offered on its own.
pub static ID_TABLE: &[DeviceMatch] = &[
    DeviceMatch::id_and_interface_class(0x0525, 0xa4a7, class::CDC, SUBCLASS_ACM, 0x01),
    DeviceMatch {
        interface_class: Some(class::CDC),
        interface_subclass: Some(SUBCLASS_ACM),
        ..DeviceMatch::ANY
    },
];

/// How long `stop` waits for the I/O it cancels.
const STOP_TIMEOUT: Timeout = Timeout::millis(2000);

/// The CDC-ACM driver.
///
/// # Probe
/// Offered a communication interface, `probe` reads its functional descriptors and:
/// * returns [`Probe::NotMine`] (nothing claimed) when the interface is not class 2/2 or
///   has no header or union functional descriptor: without a union the data interface is
///   unknown, and another (vendor) driver may know better;
/// * fails with a typed [`usbdf::Error`] when the descriptors say "ACM" but cannot be
///   driven: a truncated functional descriptor (`Error::Descriptor`), a union naming a
///   missing interface (`Error::NoSuchInterface`), a data interface without bulk pipes, or
///   claiming either interface failing (`Error::Busy`, `Error::Disconnected`);
/// * otherwise claims both interfaces and returns a [`CdcAcm`] whose data pipes already
///   work; `start` starts the notification reader, `stop` stops it and cancels data
///   transfers in flight, `removed` drops the instance.
#[derive(Debug, Clone, Default)]
pub struct CdcAcmDriver {
    config: AcmConfig,
}

impl CdcAcmDriver {
    /// The driver with the default [`AcmConfig`].
    pub fn new() -> CdcAcmDriver {
        CdcAcmDriver::default()
    }

    /// The driver opening every port with `config`.
    pub fn with_config(config: AcmConfig) -> CdcAcmDriver {
        CdcAcmDriver { config }
    }
}

impl Driver for CdcAcmDriver {
    type Instance = CdcAcm;

    fn name(&self) -> &'static str {
        "cdc-acm"
    }

    fn id_table(&self) -> &'static [DeviceMatch] {
        ID_TABLE
    }

    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<CdcAcm>, usbdf::Error> {
        let iface = ctx.interface;
        if iface.class != class::CDC || iface.subclass != SUBCLASS_ACM {
            return Ok(Probe::NotMine);
        }
        let config = ctx.device.active_configuration()?;
        let info = match find_cdc_acm_at(config, iface.number) {
            Ok(info) => info,
            Err(
                e @ (FindError::NotAcm { .. }
                | FindError::Functional {
                    source: FunctionalError::MissingHeader | FunctionalError::MissingUnion,
                    ..
                }),
            ) => {
                tracing::debug!(interface = iface.number, error = %e, "cdc-acm: not mine");
                return Ok(Probe::NotMine);
            }
            Err(e) => {
                tracing::warn!(interface = iface.number, error = ?e, "cdc-acm: cannot drive");
                return Err(to_usbdf(AcmError::NotAcm(e)));
            }
        };
        let mut config = self.config.clone();
        if ctx.claim_mode() == usbdf::InterfaceClaim::DetachKernelDriver {
            // The registry's detach policy applies to this attempt.
            config.claim = usbdf::InterfaceClaim::DetachKernelDriver;
        }
        match CdcAcm::with_info(ctx.device, info, config) {
            Ok(acm) => Ok(Probe::Bound(acm)),
            Err(e) => {
                tracing::warn!(interface = iface.number, error = ?e, "cdc-acm: probe failed");
                Err(to_usbdf(e))
            }
        }
    }

    fn start(&self, instance: &mut CdcAcm) -> Result<(), usbdf::Error> {
        instance.start().map_err(to_usbdf)
    }

    fn stop(&self, instance: &mut CdcAcm) {
        instance.stop(STOP_TIMEOUT);
    }

    fn removed(&self, instance: CdcAcm) {
        tracing::debug!(acm = ?instance, "cdc-acm: device removed");
        drop(instance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use usbdf::descriptor::{DeviceDescriptor, InterfaceDescriptor};

    #[test]
    fn id_table_matches_communication_interfaces_only() {
        let gadget = DeviceDescriptor::new(0x0525, 0xa4a7);
        let other = DeviceDescriptor::new(0x1234, 0x5678);
        let comm = InterfaceDescriptor::new(0, 0, class::CDC, 2, 1);
        let comm_no_protocol = InterfaceDescriptor::new(2, 0, class::CDC, 2, 0);
        let data = InterfaceDescriptor::new(1, 0, class::CDC_DATA, 0, 0);
        let ecm = InterfaceDescriptor::new(0, 0, class::CDC, 6, 0);
        let hits = |d: &DeviceDescriptor, i: &InterfaceDescriptor| {
            ID_TABLE.iter().filter(|m| m.matches(d, i)).count()
        };
        assert_eq!(hits(&gadget, &comm), 2);
        assert_eq!(hits(&other, &comm_no_protocol), 1);
        assert_eq!(hits(&gadget, &data), 0);
        assert_eq!(hits(&other, &ecm), 0);
    }
}
